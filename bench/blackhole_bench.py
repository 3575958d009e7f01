"""A dead Logux server and the request path
------------------------------------------

    python bench/blackhole_bench.py          # 50 saves per variant, 5 repetitions

The Logux URL points at a listener that accepts connections and never answers (READ_TIMEOUT 5 s). Each
save is one transaction (autocommit, as in a request) of a synced model with the default DELIVERY
"thread", against the same saves with DELIVERY "worker" (nothing sent by the process) and against a
plain model. Prints the median time per save and what the dead server adds to a save (budget: <= 100 ms).
A fault test checks that another process's write is not delayed meanwhile
(tests/e2e/test_delivery_core.py).
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH)]

import sync_bench  # noqa: E402

SAVES, REPS = 50, 5
BUDGET_MS = 100


def blackhole() -> tuple[socket.socket, list[socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, held


def per_save_ms(model: Any, delivery: str, group: Any, tag: str) -> float:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(LOGUX_SYNC={**settings.LOGUX_SYNC, "DELIVERY": delivery}):
        start = time.perf_counter()
        for i in range(SAVES):
            model.objects.create(id=f"{tag}-{i}", title=f"title {i}", group=group)
        return (time.perf_counter() - start) * 1000 / SAVES


def main() -> None:
    listener, held = blackhole()
    with tempfile.TemporaryDirectory(prefix="logux-sync-blackhole-") as tmp:
        sync_bench.setup_django(os.path.join(tmp, "db.sqlite3"), listener.getsockname()[1], str(BENCH.parent))
        from syncapp.models import Group, PlainItem, SyncedItem

        group = Group.objects.create(name="g")
        runs: dict[str, list[float]] = {"plain": [], "synced, worker": [], "synced, thread, Logux dead": []}
        for rep in range(REPS):
            runs["plain"].append(per_save_ms(PlainItem, "worker", group, f"p{rep}"))
            runs["synced, worker"].append(per_save_ms(SyncedItem, "worker", group, f"w{rep}"))
            runs["synced, thread, Logux dead"].append(per_save_ms(SyncedItem, "thread", group, f"t{rep}"))
        medians = {name: statistics.median(values) for name, values in runs.items()}
        added = medians["synced, thread, Logux dead"] - medians["synced, worker"]
        print(f"{SAVES} saves per variant, one transaction each, median of {REPS} (ms per save)")
        for name, value in medians.items():
            print(f"  {name:<28}{value:8.2f}")
        verdict = "met" if added <= BUDGET_MS else "MISSED"
        print(f"a dead Logux server adds {added:.2f} ms to a save (budget <= {BUDGET_MS} ms: {verdict})")
        from logux_sync.sync.tables import LoguxOutbox

        print(f"actions waiting in the outbox for logux_deliver: {LoguxOutbox.objects.count()}")
    listener.close()
    for conn in held:
        conn.close()
    os._exit(0)  # the sender thread may still wait for the dead server; nothing more to measure


if __name__ == "__main__":
    main()
