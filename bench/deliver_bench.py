"""Durable delivery
----------------

    python bench/deliver_bench.py            # 10,000 changes backlog, 2,000 autocommit saves
    python bench/deliver_bench.py --quick    # a smoke run

Measures, against a real Logux server (@logux/server 0.13.1, example_project/logux_server.mjs):

- `autocommit`: N single saves outside any transaction, LoguxSynced (each writes its outbox row and
  is delivered at once, one request per save) vs a plain model with the same fields, in one process.
  Reported as the ratio synced/plain; the delivery requests are part of the synced figure.
- `backlog`: 10,000 changes committed while the Logux server is down (every save still succeeds; the
  changes wait in the outbox), then the server starts and `deliver()` drains the outbox the way
  `manage.py logux_deliver` does (500 actions per request): drain time and actions/s.

Django is configured in-process like bench/sync_bench.py (DEBUG=False, SQLite in a temp file, the
models of bench/syncapp). Results go to bench/results/deliver.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import sync_bench  # noqa: E402  (configures Django the same way)

sys.path.insert(0, str(ROOT))
from tests.e2e.servers import EXAMPLE, NODE, free_port, node_env, spawn, stop  # noqa: E402


def start_logux(port: int) -> subprocess.Popen[bytes]:
    """@logux/server 0.13.1 with the benchmark's secret; only its control port is used."""
    env = node_env(LOGUX_PORT=str(port), LOGUX_CONTROL_SECRET="secret", NODE_ENV="production")
    env["LOGUX_BACKEND"] = "http://127.0.0.1:9/logux/"  # never called
    return spawn([NODE, str(EXAMPLE / "logux_server.mjs")], env, port, "bench-deliver-logux.log", ROOT, append=False)


def bench_autocommit(n: int) -> dict[str, Any]:
    from syncapp.models import PlainItem, SyncedItem

    times = {}
    for name, model in (("plain", PlainItem), ("synced", SyncedItem)):
        began = time.perf_counter()
        for i in range(n):
            model.objects.create(id=f"auto-{i}", title=str(i))
        times[name] = (time.perf_counter() - began) * 1000
    return {"n": n, **{f"{k}_ms": v for k, v in times.items()}, "ratio": times["synced"] / times["plain"]}


def bench_backlog(n: int, port: int) -> dict[str, Any]:
    from django.db import transaction
    from syncapp.models import SyncedItem

    from logux_sync.sync.changes import payload_entries
    from logux_sync.sync.delivery import deliver
    from logux_sync.sync.tables import LoguxOutbox

    began = time.perf_counter()
    for start in range(0, n, 100):  # the Logux server is down: commits succeed, changes wait
        with transaction.atomic():
            for i in range(start, min(start + 100, n)):
                SyncedItem.objects.create(id=f"backlog-{i}", title=str(i))
    commit_ms = (time.perf_counter() - began) * 1000
    waiting = sum(len(payload_entries(row.payload)) for row in LoguxOutbox.objects.all())
    assert waiting == n, f"{waiting} actions in the outbox, {n} expected"

    logux = start_logux(port)
    try:
        began = time.perf_counter()
        sent = 0
        while True:
            count = deliver(limit=500, ignore_backoff=True, raise_errors=True)
            if not count:
                break
            sent += count
        drain_s = time.perf_counter() - began
    finally:
        stop(logux)
    assert sent == n and not LoguxOutbox.objects.exists(), (sent, LoguxOutbox.objects.count())
    return {"n": n, "commit_ms_while_down": commit_ms, "drain_s": drain_s, "actions_per_s": n / drain_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    backlog_n, autocommit_n = (1000, 200) if args.quick else (10_000, 2000)

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="logux-sync-deliver-") as tmp:
        # The URL names the Logux server's port; nothing listens there until the backlog phase.
        sync_bench.setup_django(os.path.join(tmp, "db.sqlite3"), port, str(ROOT))
        from logux_sync.testing import capture

        with capture():  # autocommit: deliveries captured, so only the saving code is compared
            autocommit = bench_autocommit(autocommit_n)
        backlog = bench_backlog(backlog_n, port)

    print("Durable delivery")
    print(
        f"  autocommit saves (N={autocommit['n']}): plain {autocommit['plain_ms']:.0f} ms, "
        f"synced {autocommit['synced_ms']:.0f} ms, ratio {autocommit['ratio']:.2f}x"
    )
    print(
        f"  backlog of {backlog['n']} changes committed while Logux was down in "
        f"{backlog['commit_ms_while_down']:.0f} ms; drained by deliver() in {backlog['drain_s']:.2f} s "
        f"= {backlog['actions_per_s']:.0f} actions/s"
    )
    sync_bench.RESULTS.mkdir(exist_ok=True)
    out = sync_bench.RESULTS / ("deliver-quick.json" if args.quick else "deliver.json")
    out.write_text(json.dumps({"autocommit": autocommit, "backlog": backlog}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
