"""No change lost to repeated action ids: gunicorn --preload forks 4 workers after Django (and our id
clock) is imported, and they all save synced rows in the same milliseconds.

A real @logux/client 0.21.1 client (alice, tests/e2e/js/rows.mjs) subscribes to the channels of
WORKERS x FORKED_ROWS tasks through @logux/server 0.13.1. In each of FORKED_ROUNDS rounds, WORKERS
concurrent requests to a test view (tests/e2e/forked_urls.py), all starting at the same moment, each
save() their own FORKED_ROWS tasks with a new title in one transaction. Afterwards every save has an edit
id of its own, the client's log accepted every one of those changes, and its rows show the database's
titles. With ids fixed at import the workers share one node id and counter: saves in the same
millisecond get the same id, and the client's log drops the second as one it already holds. Runs on
PostgreSQL (concurrent writers, unlike SQLite).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import pg

from .servers import (
    ARTIFACTS,
    ROOT,
    demo_users,
    finished,
    free_port,
    gunicorn,
    logux_server,
    prepared_env,
    run_python,
    spawn_driver,
    stop,
    wait_for_file,
)

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "e2e" / "js" / "rows.mjs"
WORKERS = 4
ROUNDS = int(os.environ.get("FORKED_ROUNDS", "8"))
ROWS = int(os.environ.get("FORKED_ROWS", "40"))  # per request


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_preforked_workers_saving_at_once_lose_no_change(workdir: Path, pg_db: str) -> None:
    logux_port = free_port()
    env = prepared_env(
        workdir, [logux_port], **pg.example_env(pg_db), DJANGO_SETTINGS_MODULE="tests.e2e.forked_settings"
    )
    alice = demo_users(env)["alice"]
    slots = [[f"s{slot}-{n}" for n in range(ROWS)] for slot in range(WORKERS)]
    rows = [pk for ids in slots for pk in ids]
    run = secrets.token_hex(2)
    files = {"ready": workdir / "ready", "expected": workdir / "expected.json"}
    files["out"] = ARTIFACTS / f"forked-client-{run}.json"
    config = {
        "url": f"ws://127.0.0.1:{logux_port}/",
        "user": alice,
        "rows": rows,
        **{k: str(v) for k, v in files.items()},
    }
    pids: set[int] = set()
    started = time.monotonic()
    with gunicorn(env, workers=WORKERS, name=f"gunicorn-forked-{run}", extra=("--preload",)) as backend:
        url = backend.removesuffix("logux/") + "forked/change/"
        with logux_server(backend, port=logux_port, name=f"logux-forked-{run}"):
            run_python(
                env,
                "from board.models import Task\n"
                f"for pk in {rows!r}:\n"
                f"    Task.objects.create(id=pk, title='start', owner_id={alice['id']})\n",
            )
            driver_log = ARTIFACTS / f"forked-driver-{run}.log"
            driver = spawn_driver(DRIVER, config, env, driver_log)
            try:
                wait_for_file(files["ready"], driver, driver_log, 30, "the client did not subscribe")
                with ThreadPoolExecutor(WORKERS) as pool:
                    for round_ in range(ROUNDS):
                        at = int(time.time() * 1000) + 300  # every request of the round waits for it
                        bodies = [{"ids": ids, "title": f"r{round_}", "at": at} for ids in slots]
                        pids.update(answer["pid"] for answer in pool.map(lambda body: post(url, body), bodies))
                titles = dict(pg.query(pg_db, "SELECT id, title FROM board_task"))
                files["expected"].write_text(json.dumps({pk: titles[pk] for pk in rows}))
                finished(driver, driver_log)
            finally:
                stop(driver)
            outbox = pg.query(pg_db, "SELECT count(*) FROM logux_sync_loguxoutbox")[0][0]
            edit_ids = [clocks["title"][1] for (clocks,) in pg.query(pg_db, "SELECT logux_clocks FROM board_task")]

    seen = json.loads(files["out"].read_text())
    saved = {(pk, f"r{round_} {pk}") for round_ in range(ROUNDS) for pk in rows}
    received = {(pk, title) for pk, title in seen["received"]}
    report = {
        "saves": len(saved),
        "workers that saved": len(pids),
        "repeated edit ids in the last round": len(edit_ids) - len(set(edit_ids)),
        "changes the client never got": len(saved - received),
        "rows showing another title": sum(seen["rows"][pk] != titles[pk] for pk in rows),
        "outbox left": outbox,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("forked workers:", json.dumps(report, indent=1))
    assert len(pids) > 1, report  # the saves did run in several forked workers
    assert report["changes the client never got"] == 0, (report, sorted(saved - received)[:5])
    assert report["repeated edit ids in the last round"] == 0, report
    assert report["rows showing another title"] == 0, report
    assert outbox == 0, report
