"""Nothing lost: committed changes reach every subscribed client although the Logux server crashes.

Real @logux/client 0.21.1 clients (alice, bob; tests/e2e/js/faults.mjs) hold createFilter lists of tasks
while a separate Python process commits FAULT_CHANGES (default 1000) ORM changes in many small
transactions, and the test SIGKILLs the Logux server and starts it again on the same port, twice.
The test crashes the server again only once both clients are back on the restarted one (@logux/client's
Reconnect retries 1-5 s apart), and the writer keeps its last changes until after the second restart.
Afterwards `manage.py logux_deliver --once --ignore-backoff` drains the outbox, and every client's
lists must equal the database (the rows each user may read). Runs on PostgreSQL with 2 gunicorn workers.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import pg

from .servers import (
    ARTIFACTS,
    EXAMPLE,
    ROOT,
    demo_users,
    finished,
    free_port,
    gunicorn,
    kill,
    prepared_env,
    run_python,
    spawn_driver,
    spawn_logux,
    stop,
    task_rows,
    wait_for_file,
)

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "e2e" / "js" / "faults.mjs"
CHANGES = int(os.environ.get("FAULT_CHANGES", "1000"))
FILTERS = {"all": {}, "doing": {"column": "doing"}}
# How long the clients may take to get back to a restarted server (Reconnect waits up to 5 s between
# attempts, each refused while the server is down doubling the wait).
RECONNECT_S = 60

# Commits `changes` ORM edits (creates, changes, deletes) in transactions of 1-8 edits, printing progress.
# From change `hold_at` on it waits for the file `hold` to exist: its last changes come after the crashes.
WRITER = """
import json, os, random, sys, time
import django
django.setup()
from django.db import transaction
from board.models import Task

cfg = json.loads(sys.argv[1])
rng = random.Random(cfg["seed"])
alive = list(cfg["ids"])
made = 0
while made < cfg["changes"]:
    while made >= cfg["hold_at"] and not os.path.exists(cfg["hold"]):
        time.sleep(0.05)
    with transaction.atomic():
        for _ in range(min(rng.randint(1, 8), cfg["changes"] - made)):
            roll = rng.random()
            if roll < 0.1:
                owner = rng.choice(cfg["owners"])
                private = rng.random() < 0.3
                row = Task.objects.create(
                    id=f"new-{made}", title=f"created {made}", column="todo", private=private, owner_id=owner
                )
                alive.append(row.pk)
            elif roll < 0.15 and len(alive) > 20:
                Task.objects.filter(pk=alive.pop(rng.randrange(len(alive)))).first().delete()
            else:
                task = Task.objects.get(pk=rng.choice(alive))
                task.title = f"edit {made}"
                task.column = rng.choice(["todo", "doing", "done"])
                task.save()
            made += 1
    print(made, flush=True)
    time.sleep(cfg["pause"])
"""


def expected_lists(rows: dict[str, dict[str, Any]], user_id: int) -> dict[str, dict[str, Any]]:
    readable = {i: r for i, r in rows.items() if not r["private"] or r["owner"] == user_id}
    return {
        label: {i: r for i, r in readable.items() if all(r[k] == v for k, v in wire_filter.items())}
        for label, wire_filter in FILTERS.items()
    }


def not_delivered(wire: list[Any], got_lists: dict[str, Any], want_lists: dict[str, Any]) -> list[str]:
    """List entries whose final state never reached this client's wire: a delivery loss, as opposed to
    a client that received the right actions and still shows something else."""
    actions = [action for message in wire if message[0] == "sync" for action in message[2::2]]
    deleted = {a["id"] for a in actions if a["type"] == "tasks/deleted"}
    sent: dict[str, list[dict[str, Any]]] = {}
    for action in actions:
        if action["type"] in ("tasks/created", "tasks/changed"):
            sent.setdefault(action["id"], []).append(action["fields"])

    def reached(row_id: str, field: str, value: Any) -> bool:
        return any(field in fields and fields[field] == value for fields in sent.get(row_id, []))

    lost = []
    for label, wire_filter in FILTERS.items():
        got, want = got_lists[label], want_lists[label]
        for row_id, row in want.items():
            fields = row.keys() if row_id not in got else [k for k in row if got[row_id].get(k) != row[k]]
            lost += [f"{label}: {row_id}.{k}" for k in fields if not reached(row_id, k, row[k])]
        for row_id in set(got) - set(want):
            left = any(k in f and f[k] != v for f in sent.get(row_id, []) for k, v in wire_filter.items())
            if row_id not in deleted and not left:
                lost.append(f"{label}: {row_id} (no deleted)")
    return sorted(lost)


def wait_for_reconnects(
    status: Path, names: list[str], driver: subprocess.Popen[bytes], log: Path, connects: int
) -> str:
    """Wait until the driver reports each of `names` synchronized `connects` times (the first connection
    and once after each restart so far); how many times each got there."""
    deadline = time.monotonic() + RECONNECT_S
    while True:
        assert driver.poll() is None, f"the driver exited with {driver.returncode}:\n{log.read_text()[-4000:]}"
        try:
            seen = json.loads(status.read_text())
        except (OSError, ValueError):  # not written yet, or caught between truncation and write
            seen = {}
        if all(seen.get(name, 0) >= connects for name in names):
            return json.dumps(seen)
        assert time.monotonic() < deadline, f"clients not back on the restarted Logux server: {seen}"
        time.sleep(0.05)


def test_clients_reach_the_final_state_through_two_logux_crashes(workdir: Path, pg_db: str) -> None:
    logux_port = free_port()
    env = prepared_env(workdir, [logux_port], **pg.example_env(pg_db))
    users = demo_users(env)
    ids = {name: int(users[name]["id"]) for name in ("alice", "bob")}
    seed_ids = [f"seed-{i}" for i in range(60)]
    run = secrets.token_hex(2)
    files = {name: workdir / f"{name}.json" for name in ("ready", "status", "hold")}
    # Kept for a look after a failure: what the clients held and received, and what the database holds.
    files["out"] = ARTIFACTS / f"faults-clients-{run}.json"
    files["expected"] = ARTIFACTS / f"faults-expected-{run}.json"
    config = {
        "url": f"ws://127.0.0.1:{logux_port}/",
        "users": users,
        "filters": FILTERS,
        "ready": str(files["ready"]),
        "status": str(files["status"]),
        "expected": str(files["expected"]),
        "out": str(files["out"]),
        "timeout": 180000,
        "convergeMs": 20000,
    }
    progress: list[int] = [0]
    events: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []
    with gunicorn(env, workers=2, name=f"gunicorn-faults-{run}") as backend:
        logux = spawn_logux(backend, logux_port, name=f"logux-faults-{run}")
        processes.append(logux)
        try:
            run_python(
                env,
                "from board.models import Task\n"
                f"for i in range(60):\n"
                f"    Task.objects.create(id=f'seed-{{i}}', title=f'seed {{i}}', private=i % 4 == 0, "
                f"owner_id=({ids['alice']}, {ids['bob']})[i % 2])\n",
            )
            driver_log = ARTIFACTS / f"faults-driver-{run}.log"
            driver = spawn_driver(DRIVER, config, env, driver_log)
            processes.append(driver)
            wait_for_file(files["ready"], driver, driver_log, 30, "clients did not subscribe")

            writer_config = {
                "seed": 7,
                "ids": seed_ids,
                "owners": list(ids.values()),
                "changes": CHANGES,
                "pause": 0.04,
                "hold_at": CHANGES * 9 // 10,
                "hold": str(files["hold"]),
            }
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, json.dumps(writer_config)],
                cwd=EXAMPLE,
                env=env,
                stdout=subprocess.PIPE,
                stderr=(ARTIFACTS / f"faults-writer-{run}.log").open("wb"),
            )
            processes.append(writer)  # type: ignore[arg-type]

            def follow() -> None:
                assert writer.stdout is not None
                for line in writer.stdout:
                    progress[0] = int(line)

            threading.Thread(target=follow, daemon=True).start()
            for crash in (1, 2):
                time.sleep(2.5)
                kill(logux)
                events.append(f"crash {crash} at change {progress[0]}")
                time.sleep(1.5)
                logux = spawn_logux(backend, logux_port, name=f"logux-faults-{run}")
                processes.append(logux)
                events.append(f"restart {crash} at change {progress[0]}")
                back = wait_for_reconnects(files["status"], list(ids), driver, driver_log, crash + 1)
                events.append(f"clients back after restart {crash} at change {progress[0]} ({back})")
            files["hold"].write_text("go")
            assert writer.wait(120) == 0, (ARTIFACTS / f"faults-writer-{run}.log").read_text()[-3000:]
            events.append(f"writer done: {progress[0]} changes")

            waiting_before = pg.query(pg_db, "SELECT count(*) FROM logux_sync_loguxoutbox")[0][0]
            for _ in range(20):
                subprocess.run(
                    [sys.executable, "manage.py", "logux_deliver", "--once", "--ignore-backoff"],
                    cwd=EXAMPLE,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                if pg.query(pg_db, "SELECT count(*) FROM logux_sync_loguxoutbox")[0][0] == 0:
                    break
            events.append(f"outbox: {waiting_before} waited for logux_deliver, now empty")
            assert pg.query(pg_db, "SELECT count(*) FROM logux_sync_loguxoutbox")[0][0] == 0

            rows = task_rows(env)
            expected = {name: expected_lists(rows, ids[name]) for name in ids}
            files["expected"].write_text(json.dumps(expected))
            finished(driver, driver_log)
        finally:
            for process in reversed(processes):
                stop(process)

    seen = json.loads(files["out"].read_text())
    mismatches: dict[str, dict[str, Any]] = {}
    for name in ids:
        for label in FILTERS:
            got, want = seen[name]["lists"][label], expected[name][label]
            wrong = {
                "missing": sorted(set(want) - set(got)),
                "extra (deleted or left the list)": sorted(i for i in set(got) - set(want)),
                "stale": sorted(i for i in set(got) & set(want) if got[i] != want[i]),
            }
            mismatches[f"{name}/{label}"] = {k: v for k, v in wrong.items() if v}
    # bob never received alice's private rows, crashes or not.
    secret = [i for i, r in rows.items() if r["private"] and r["owner"] == ids["alice"]]
    bob_wire = json.dumps(seen["bob"]["wire"])
    leaked = [i for i in secret if f'"{i}"' in bob_wire]
    lost = sum(len(v) for m in mismatches.values() for v in m.values())
    report = {
        "events": events,
        "rows": len(rows),
        "reconnects": {name: seen[name]["connects"] - 1 for name in ids},
        "resubscribes": {name: len(seen[name]["resubscribes"]) for name in ids},
        "converged after ms": seen["convergedAfter"],
        "lost": lost,
        "mismatches": mismatches,
        "leaked": leaked,
    }
    # A row still listed although its `tasks/deleted` reached the client is a resurrection (a bug);
    # one whose `tasks/deleted` never arrived was deleted while the client was offline.
    deleted_seen = {
        name: {
            action["id"]
            for message in seen[name]["wire"]
            if message[0] == "sync"
            for action in message[2::2]
            if action["type"] == "tasks/deleted"
        }
        for name in ids
    }
    kept = {name: {i for i in seen[name]["lists"]["all"] if i not in rows} for name in ids}
    report["deleted while offline, still listed"] = {n: len(kept[n] - deleted_seen[n]) for n in ids}
    report["resurrected after their tasks/deleted"] = {n: sorted(kept[n] & deleted_seen[n]) for n in ids}
    report["put back after their tasks/deleted, until its second sending"] = {n: seen[n]["putBack"] for n in ids}
    print("faults:", json.dumps(report, indent=1))
    assert not leaked
    assert all(seen[name]["connects"] >= 3 for name in ids), report  # connected, and back after each crash
    # What Django owes every client: each final value of each row it may read, and each deletion, was
    # sent to it (on its wire). Required with no exception: fixed since this test was written are
    # deletions missed while offline (tombstones), rows loaded as several `changed` (now `created`
    # first), changes delivered after their row's deletion, and late deliveries (LoguxLateDelivery).
    undelivered = {name: not_delivered(seen[name]["wire"], seen[name]["lists"], expected[name]) for name in ids}
    report["not delivered"] = undelivered
    assert not any(undelivered.values()), report
    # And each client shows it: everything that reached it adds up to the database's state. Seen before
    # this held (see README, "What is not promised"): a late change setting back a field the client held
    # under too old a clock (now only fields no newer edit overwrote are sent), a row whose `deleted` ran
    # before a list load's `changed` read at the same time (deletions are now sent twice), and lists that
    # never heard of a change again after Logux 0.13.1 undid their resubscribes behind a per-row
    # subscribe answered `notFound` (new rows now reach lists after `logux/subscribed`).
    assert lost == 0, report
