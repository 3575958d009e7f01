"""No lost updates: conflicting edits from real clients through 4 gunicorn workers on PostgreSQL.

Four real @logux/client 0.21.1 clients (tests/e2e/js/conflicts.mjs) each send CONC_EDITS (default 500)
changeSyncMap edits of the title and column of the same three rows, several in flight at once, at
random moments, through @logux/server 0.13.1 and 4 gunicorn workers (generic commands lock the row
with select_for_update). Afterwards, per row and field, the database holds the value of the edit with
the greatest Logux meta (isFirstOlder order of the metas the server got: each client's time minus its
time fix), and every client holds the database's rows. Also: no deadlock in pg_stat_database, none in
the logs, and the outbox is empty. A throw-away database `logux_test_<random>` per run.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import pytest

from logux_sync.protocol import is_first_older
from logux_sync.sync.clocks import field_clock
from tests import pg

from .servers import (
    ARTIFACTS,
    ROOT,
    demo_users,
    finished,
    free_port,
    gunicorn,
    logux_server,
    plain_users,
    prepared_env,
    run_python,
    spawn_driver,
    stop,
    wait_for_file,
)

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "e2e" / "js" / "conflicts.mjs"
EDITS = int(os.environ.get("CONC_EDITS", "500"))
ROWS = ["c1", "c2", "c3"]
FIELDS = ("column", "title")


def lww(edits: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row and field, the edit with the greatest meta: {row: {field: edit}}."""

    def order(a: dict[str, Any], b: dict[str, Any]) -> int:
        if is_first_older(a["meta"], b["meta"]):
            return -1
        return 1 if is_first_older(b["meta"], a["meta"]) else 0

    winners: dict[str, dict[str, Any]] = {row: {} for row in ROWS}
    for edit in sorted(edits, key=cmp_to_key(order)):
        for name in edit["fields"]:
            winners[edit["rowId"]][name] = edit
    return winners


def test_conflicting_edits_converge_to_last_write_wins(workdir: Path, pg_db: str) -> None:
    logux_port = free_port()
    env = prepared_env(workdir, [logux_port], **pg.example_env(pg_db))
    users = demo_users(env)
    users.update(plain_users(env, "carol", "dave"))
    run = secrets.token_hex(2)
    files = {name: workdir / f"{name}.json" for name in ("done", "expected")}
    files["out"] = ARTIFACTS / f"conflicts-clients-{run}.json"
    config = {
        "url": f"ws://127.0.0.1:{logux_port}/",
        "users": users,
        "rows": ROWS,
        "edits": EDITS,
        "inFlight": 8,
        **{name: str(path) for name, path in files.items()},
    }
    started = time.monotonic()
    with gunicorn(env, workers=4, name=f"gunicorn-conc-{run}") as backend:
        with logux_server(backend, port=logux_port, name=f"logux-conc-{run}"):
            run_python(
                env,
                "from board.models import Task\n"
                f"for pk in {ROWS!r}:\n"
                f"    Task.objects.create(id=pk, title='start', column='todo', owner_id={users['alice']['id']})\n",
            )
            driver_log = ARTIFACTS / f"conflicts-driver-{run}.log"
            driver = spawn_driver(DRIVER, config, env, driver_log)
            try:
                wait_for_file(files["done"], driver, driver_log, 150, "edits did not finish")
                time.sleep(0.5)  # the last edits' broadcasts
                db_rows = {
                    pk: {"column": column, "title": title, "clocks": clocks}
                    for pk, column, title, clocks in pg.query(
                        pg_db, 'SELECT id, "column", title, logux_clocks FROM board_task ORDER BY id'
                    )
                }
                expected = {pk: {"column": r["column"], "title": r["title"]} for pk, r in db_rows.items()}
                files["expected"].write_text(json.dumps(expected))
                finished(driver, driver_log)
            finally:
                stop(driver)
                left = pg.query(pg_db, "SELECT attempts, last_error, payload FROM logux_sync_loguxoutbox")
                outbox = len(left)
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # backends have exited: their statistics are flushed
    deadlocks = pg.query(pg_db, "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", pg_db)[0][0]
    logs = "".join(
        (ARTIFACTS / f"{name}-{run}.log").read_text(errors="replace") for name in ("gunicorn-conc", "logux-conc")
    )

    sent = json.loads(files["done"].read_text())
    seen = json.loads(files["out"].read_text())
    # The metas as the server got them: a client sends its local time minus its time fix.
    edits = [
        {**edit, "meta": {"id": edit["id"], "time": edit["time"] - (client["timeFix"] or 0)}}
        for client in sent
        for edit in client["sent"]
    ]
    winners = lww(edits)
    lost = []
    for pk in ROWS:
        for name in FIELDS:
            winner = winners[pk].get(name)
            if winner is None:
                continue
            clock = field_clock(db_rows[pk]["clocks"], name)
            if db_rows[pk][name] != winner["fields"][name] or clock[1] != winner["id"]:
                lost.append({"row": pk, "field": name, "db": db_rows[pk][name], "clock": clock, "winner": winner})
    disagree = {c["name"]: seen[c["name"]]["rows"] for c in sent if seen[c["name"]]["rows"] != expected}
    report = {
        "edits sent": len(edits),
        "outcomes": {c["name"]: seen[c["name"]]["outcomes"] for c in sent},
        "time fixes": {c["name"]: c["timeFix"] for c in sent},
        "edit phase ms": seen["editMs"],
        "clients converged after ms": seen["convergedAfter"],
        "lost updates": len(lost),
        "clients that disagree with the database": sorted(disagree),
        "deadlocks": deadlocks,
        "outbox left": outbox,
        "seconds": round(elapsed, 1),
    }
    print("concurrency:", json.dumps(report, indent=1))
    assert len(edits) == EDITS * len(users), report
    assert all(o == {"fulfilled": EDITS, "rejected": 0} for o in report["outcomes"].values()), report
    assert not lost, lost[:5]
    assert not disagree, (disagree, expected)
    assert deadlocks == 0 and "deadlock" not in logs.lower(), report
    assert outbox == 0, (report, left)
