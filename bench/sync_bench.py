"""Model sync
----------

    python bench/sync_bench.py            # the full run (N = 2000 saves, 10k-row subscribe, 5 repetitions)
    python bench/sync_bench.py --quick    # a smoke run (smaller, fewer repetitions)
    python bench/sync_bench.py --rev HEAD # measure logux_sync as committed at a revision, not the work tree
    python bench/sync_bench.py --instructions  # instructions per save (valgrind's callgrind): load-proof

Prints a table and writes bench/results/sync.json. Django is configured in-process (DEBUG=False, SQLite
in a temporary file, the models of bench/syncapp). Every figure is the median of the repetitions; the
synced and plain variants alternate inside each repetition.

How to read it:

- `save`: N creates, then N single-field changes, each in one `transaction.atomic()`, of `SyncedItem`
  (LoguxSynced) and `PlainItem` (same fields, plain model). "in tx + commit" is the saving code's own
  time; the ratio synced/plain of it is the target (<= 1.3x). Sending is intercepted with
  `logux_sync.testing.capture()`; "after commit" is the on_commit work (address the changes to their
  channels and one filter-subscribed node, then capture), reported apart, and "total" includes it.
- `send`: the same N changes in one transaction with the real client posting to a local HTTP server
  (one request); "commit + send" is the time from the end of the block to the end of the send.
- `subscribe`: a `logux/subscribe` to the plural channel with filter {} over the Django test client,
  the whole streamed answer read, against `json.dumps(list(SyncedItem.objects.values()))` (target
  <= 1.5x); its query count at 1k and 10k rows must be equal.

A missed target is followed by the top cProfile costs of the synced side.
"""

from __future__ import annotations

import argparse
import cProfile
import http.server
import io
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SAVE_TARGET = 1.3
SUBSCRIBE_TARGET = 1.5


# ---- a local stand-in for the Logux server --------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    """Answers 200 to every POST and counts requests and commands."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pooled session expects
    requests: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(len(json.loads(body)["commands"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_sink() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- Django --------------------------------------------------------------------------------------


def export_rev(rev: str, into: str) -> str:
    """`logux_sync` as committed at `rev`, extracted under `into`; returns the directory to import from."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "logux_sync"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def setup_django(db_path: str, sink_port: int, source: str, postgres: str | None = None) -> None:
    """Django in-process: SQLite at `db_path`, or the PostgreSQL database named `postgres`."""
    # Ahead of the editable install's finder, so `--rev` measures the exported tree.
    sys.path[:0] = [source, str(BENCH)]
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        USE_TZ=True,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "logux_sync",
            "logux_sync.sync",
            "syncapp",
        ],
        MIDDLEWARE=[],
        ROOT_URLCONF="syncapp.urls",
        DATABASES={"default": pg_database(postgres) if postgres else sqlite_database(db_path)},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGUX_SYNC={"SECRET": "secret", "URLS": [f"http://127.0.0.1:{sink_port}/"]},
    )
    django.setup()
    from django.core.management import call_command

    # The bench app has no migrations: syncdb creates its tables before any migration runs, so the
    # tables its foreign keys point at (auth's) come first; PostgreSQL checks them at once.
    call_command("migrate", "auth", verbosity=0)
    call_command("migrate", run_syncdb=True, verbosity=0)


def sqlite_database(path: str) -> dict[str, Any]:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}


def pg_database(name: str) -> dict[str, Any]:
    from tests import pg

    return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "HOST": pg.HOST, "PORT": pg.PORT, "USER": pg.USER}


@contextmanager
def database(postgres: bool) -> Iterator[str | None]:
    """A throw-away PostgreSQL database's name (dropped afterwards), or None for SQLite."""
    if not postgres:
        yield None
        return
    sys.path.insert(0, str(ROOT))
    from tests import pg

    with pg.temp_database("logux_bench") as name:
        yield name


def clear(*models: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"DELETE FROM {model._meta.db_table}")


def timed_transaction(body: Callable[[], None]) -> dict[str, float]:
    """Seconds spent in the block, in the commit, and in the on_commit callbacks after ours."""
    from django.db import transaction

    marks: dict[str, float] = {}
    began = time.perf_counter()
    with transaction.atomic():
        # Registered before any save, so it runs first after the commit and splits commit from the rest.
        transaction.on_commit(lambda: marks.setdefault("committed", time.perf_counter()))
        body()
        marks["block"] = time.perf_counter()
    ended = time.perf_counter()
    return {
        "in_tx": marks["block"] - began,
        "commit": marks["committed"] - marks["block"],
        "after_commit": ended - marks["committed"],
    }


@contextmanager
def profiled(enabled: bool) -> Iterator[cProfile.Profile | None]:
    profile = cProfile.Profile() if enabled else None
    if profile:
        profile.enable()
    try:
        yield profile
    finally:
        if profile:
            profile.disable()


def top_costs(profile: cProfile.Profile, limit: int = 18) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(line.replace(str(ROOT) + "/", "") for line in lines[start:] if line.strip())


# ---- 1. saves -------------------------------------------------------------------------------------


def save_phases(model: Any, n: int, groups: list[Any], rep: int) -> dict[str, dict[str, float]]:
    """N creates in one transaction, then N single-field changes in another."""
    objs: list[Any] = []

    def creates() -> None:
        for i in range(n):
            objs.append(model.objects.create(id=f"r{rep}-{i}", title=f"title {i}", group=groups[i % len(groups)]))

    def changes() -> None:
        for i, obj in enumerate(objs):
            obj.title = f"changed {i}"
            obj.save()

    return {"create": timed_transaction(creates), "change": timed_transaction(changes)}


def bench_saves(n: int, reps: int, user: Any) -> dict[str, Any]:
    from syncapp.models import Group, PlainItem, SyncedItem

    from logux_sync.sync.subscriptions import remember
    from logux_sync.testing import capture

    groups = list(Group.objects.all())
    # One filter-subscribed node, so the after-commit work addresses every change to it.
    remember("items", f"{user.pk}:c:t", str(user.pk), {}, 3600)
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"plain": [], "synced": []}
    sent: list[int] = []
    for rep in range(reps + 1):  # repetition 0 warms up and is dropped
        for name, model in (("plain", PlainItem), ("synced", SyncedItem)):
            clear(model)
            with capture() as captured:
                phases = save_phases(model, n, groups, rep)
            if rep:
                runs[name].append(phases)
            if name == "synced":
                sent.append(len(captured.requests))
                # Each save's action (a create also tells the list node its row is subscribed first).
                got = [sum(a["type"].startswith("items/") for a, _ in r) for r in captured.requests]
                assert sum(got) == 2 * n, f"{2 * n} saves, but {sum(got)} item actions sent, by request: {got}"
    assert set(sent) == {2}, f"one request per transaction expected, got {sent}"

    def med(name: str, phase: str, part: str) -> float:
        return statistics.median(run[phase][part] for run in runs[name]) * 1000

    result: dict[str, Any] = {"n": n, "repetitions": reps, "phases": {}}
    for phase in ("create", "change"):
        row: dict[str, Any] = {}
        for name in ("plain", "synced"):
            row[name] = {part: med(name, phase, part) for part in ("in_tx", "commit", "after_commit")}
            row[name]["saving"] = statistics.median(
                (run[phase]["in_tx"] + run[phase]["commit"]) * 1000 for run in runs[name]
            )
            row[name]["total"] = statistics.median(sum(run[phase].values()) * 1000 for run in runs[name])
        row["ratio"] = row["synced"]["saving"] / row["plain"]["saving"]
        row["ratio_total"] = row["synced"]["total"] / row["plain"]["total"]
        result["phases"][phase] = row
    result["ratio"] = max(row["ratio"] for row in result["phases"].values())
    result["met"] = result["ratio"] <= SAVE_TARGET
    return result


def profile_saves(n: int) -> str:
    from syncapp.models import Group, SyncedItem

    from logux_sync.testing import capture

    clear(SyncedItem)
    groups = list(Group.objects.all())
    with capture(), profiled(True) as profile:
        save_phases(SyncedItem, n, groups, rep=999)
    assert profile is not None
    return top_costs(profile)


def bench_send(n: int, reps: int, sink: type[_Sink]) -> dict[str, Any]:
    from syncapp.models import SyncedItem

    objs = list(SyncedItem.objects.order_by("pk")[:n])
    assert len(objs) == n
    timings = []
    for rep in range(reps + 1):
        sink.requests.clear()

        def changes(rep: int = rep) -> None:
            for i, obj in enumerate(objs):
                obj.title = f"sent {rep} {i}"
                obj.save()

        phases = timed_transaction(changes)
        assert sink.requests == [n], f"one request of {n} actions expected, got {sink.requests}"
        if rep:
            timings.append(phases)
    return {
        "n": n,
        "repetitions": reps,
        "commit_ms": statistics.median(t["commit"] for t in timings) * 1000,
        "send_ms": statistics.median(t["after_commit"] for t in timings) * 1000,
        "commit_send_ms": statistics.median(t["commit"] + t["after_commit"] for t in timings) * 1000,
        "requests_per_transaction": 1,
    }


def count_child(model_name: str, phase: str, n: int) -> None:
    """Under valgrind: N saves of one phase in one transaction with callgrind counting only them."""
    from django.db import transaction
    from syncapp import models

    from logux_sync.testing import capture

    def callgrind(switch: str) -> None:
        subprocess.run(["callgrind_control", "--instr=" + switch, str(os.getpid())], check=True, capture_output=True)

    model = getattr(models, model_name)
    group = models.Group.objects.first()
    if phase.endswith("1"):
        count_one_save_child(model, phase[:-1], n, group, callgrind)
        return
    with capture():
        for rep in range(2):  # the first repetition warms up
            objs: list[Any] = []
            # Counted from the first save to the end of the commit (where the outbox rows are written):
            # the first on_commit callback stops the count, before the delivery's callbacks run.
            with transaction.atomic():
                if rep and phase == "create":
                    transaction.on_commit(lambda: callgrind("off"))
                    callgrind("on")
                objs += [model.objects.create(id=f"{rep}-{i}", title=f"title {i}", group=group) for i in range(n)]
            with transaction.atomic():
                if rep and phase == "change":
                    transaction.on_commit(lambda: callgrind("off"))
                    callgrind("on")
                for i, obj in enumerate(objs):
                    obj.title = f"changed {i}"
                    obj.save()
    print(n)


def count_one_save_child(model: Any, phase: str, n: int, group: Any, callgrind: Callable[[str], None]) -> None:
    """Under valgrind: N saves, each its own transaction (autocommit, as in a request), counted with
    their commits. Delivery is left to logux_deliver (DELIVERY "worker"): what the request itself runs.
    With the default "thread", the request adds a hand-over to the sender thread, which then sends."""
    from django.conf import settings
    from django.test import override_settings

    from logux_sync import conf

    delivery = {"DELIVERY": "worker"} if "DELIVERY" in conf.DEFAULTS else {}
    with override_settings(LOGUX_SYNC={**settings.LOGUX_SYNC, **delivery}):
        for rep in range(2):  # the first repetition warms up
            counting = rep and phase == "create"
            if counting:
                callgrind("on")
            objs = [model.objects.create(id=f"{rep}-{i}", title=f"title {i}", group=group) for i in range(n)]
            if counting:
                callgrind("off")
            if rep and phase == "change":
                callgrind("on")
            for i, obj in enumerate(objs):
                obj.title = f"changed {i}"
                obj.save()
            if rep and phase == "change":
                callgrind("off")
    print(n)


def one_save_queries() -> dict[str, int]:
    """Queries of one synced create and one change in autocommit, DELIVERY "worker" (the request's own)."""
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext
    from syncapp.models import Group, SyncedItem

    group = Group.objects.first()
    counts = {}
    with override_settings(LOGUX_SYNC={**settings.LOGUX_SYNC, "DELIVERY": "worker"}):
        with CaptureQueriesContext(connection) as create:
            item = SyncedItem.objects.create(id="q-1", title="t", group=group)
        item.title = "u"
        with CaptureQueriesContext(connection) as change:
            item.save()
    counts["create"], counts["change"] = len(create), len(change)
    return counts


def count_subscribe_child(part: str, rows: int) -> None:
    """Under valgrind: one subscribe to `rows` rows (or its baseline) with callgrind counting only it."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client
    from syncapp.models import Group, SyncedItem

    def callgrind(switch: str) -> None:
        subprocess.run(["callgrind_control", "--instr=" + switch, str(os.getpid())], check=True, capture_output=True)

    user = User.objects.create_user("reader")
    user.user_permissions.add(Permission.objects.get(codename="view_synceditem"))
    user = User.objects.get(pk=user.pk)
    add_rows(0, rows, list(Group.objects.all()))
    client, body = Client(), subscribe_body(user)
    for rep in range(2):  # the first repetition warms up (and remembers the subscription)
        if rep:
            callgrind("on")
        size = len(subscribe(client, body) if part == "subscribe" else json.dumps(list(SyncedItem.objects.values())))
        if rep:
            callgrind("off")
    print(size)


def count_subscribe(rev: str | None, rows: int) -> dict[str, float]:
    """Million instructions of one subscribe to `rows` rows and of its baseline (values() + json.dumps)."""
    counts: dict[str, float] = {}
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__] + (["--rev", rev] if rev else [])
    for part in ("subscribe", "baseline"):
        out = subprocess.run(
            [*command, "--count-subscribe", part, str(rows)], check=True, capture_output=True, text=True
        )
        counts[part] = int(re.findall(r"Collected : (\d+)", out.stderr)[-1]) / 1e6
    counts["ratio"] = counts["subscribe"] / counts["baseline"]
    return counts


def count_instructions(rev: str | None, n: int) -> dict[str, dict[str, float]]:
    """Thousand instructions per save (create, change) of PlainItem and SyncedItem: no load moves them.
    The saving code and the commit (where the outbox rows are written) are counted; after-commit work
    is not (sending is captured)."""
    counts: dict[str, dict[str, float]] = {}
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--n", str(n)] + (["--rev", rev] if rev else [])
    for model in ("PlainItem", "SyncedItem"):
        for phase in ("create", "change", "create1", "change1"):
            out = subprocess.run([*command, "--count-child", model, phase], check=True, capture_output=True, text=True)
            collected = int(re.findall(r"Collected : (\d+)", out.stderr)[-1])
            counts.setdefault(phase, {})[model] = collected / n / 1000
    for row in counts.values():
        row["ratio"] = row["SyncedItem"] / row["PlainItem"]
    return counts


# ---- 2. subscribe ---------------------------------------------------------------------------------


def subscribe_body(user: Any) -> bytes:
    action = {"type": "logux/subscribe", "channel": "items", "filter": {}}
    meta = {"id": f"1 {user.pk}:c:t 0", "time": 1}
    command = {"command": "action", "action": action, "meta": meta}
    return json.dumps({"version": 4, "secret": "secret", "commands": [command]}).encode()


def subscribe(client: Any, body: bytes) -> bytes:
    response = client.post("/logux/", body, content_type="application/json")
    assert response.status_code == 200 and response.streaming, response
    return b"".join(response.streaming_content)


def add_rows(start: int, stop: int, groups: list[Any]) -> None:
    from syncapp.models import SyncedItem

    from logux_sync.sync.changes import muted

    with muted():
        SyncedItem.objects.bulk_create(
            SyncedItem(id=f"s{i:06}", title=f"title {i}", done=bool(i % 3), group=groups[i % len(groups)])
            for i in range(start, stop)
        )


def bench_subscribe(rows: int, small: int, reps: int, user: Any) -> tuple[dict[str, Any], Callable[[], str]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from syncapp.models import Group, SyncedItem

    clear(SyncedItem)
    groups = list(Group.objects.all())
    client = Client()
    body = subscribe_body(user)
    subscribe(client, body)  # the first one inserts the remembered subscription

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            subscribe(client, body)
        return len(captured)

    add_rows(0, small, groups)
    small_queries = queries()
    add_rows(small, rows, groups)
    large_queries = queries()

    answers = json.loads(subscribe(client, body))
    loaded = [a["action"] for a in answers if a["answer"] == "action"]
    assert [a["answer"] for a in answers[:1] + answers[-1:]] == ["approved", "processed"], answers[:2]
    assert sum(a["type"] == "items/created" for a in loaded) == rows, "one created action per row expected"

    sub_times, base_times, sizes = [], [], {}
    for rep in range(reps + 1):
        began = time.perf_counter()
        data = subscribe(client, body)
        middle = time.perf_counter()
        baseline = json.dumps(list(SyncedItem.objects.values()))
        ended = time.perf_counter()
        sizes = {"subscribe_bytes": len(data), "baseline_bytes": len(baseline)}
        if rep:
            sub_times.append(middle - began)
            base_times.append(ended - middle)
    sub_ms = statistics.median(sub_times) * 1000
    base_ms = statistics.median(base_times) * 1000
    result = {
        "rows": rows,
        "repetitions": reps,
        "subscribe_ms": sub_ms,
        "baseline_ms": base_ms,
        "ratio": sub_ms / base_ms,
        "queries": {str(small): small_queries, str(rows): large_queries},
        **sizes,
    }
    result["met"] = result["ratio"] <= SUBSCRIBE_TARGET
    result["queries_met"] = small_queries == large_queries

    def profile() -> str:
        with profiled(True) as prof:
            subscribe(client, body)
        assert prof is not None
        return top_costs(prof)

    return result, profile


# ---- report ---------------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def table(saves: dict[str, Any] | None, send: dict[str, Any] | None, sub: dict[str, Any] | None) -> str:
    lines = []
    if saves and send:
        lines += save_table(saves, send)
    if sub:
        lines += subscribe_table(sub)
    return "\n".join(lines)


def save_table(saves: dict[str, Any], send: dict[str, Any]) -> list[str]:
    n = saves["n"]
    lines = [
        f"Model sync: saves (N={n} per transaction, median of {saves['repetitions']}; ms)",
        f"{'phase':<8}{'variant':<8}{'in tx':>10}{'commit':>10}{'saving':>10}{'after commit':>14}{'total':>10}",
    ]
    for phase, row in saves["phases"].items():
        for name in ("plain", "synced"):
            v = row[name]
            lines.append(
                f"{phase:<8}{name:<8}{v['in_tx']:>10.1f}{v['commit']:>10.1f}{v['saving']:>10.1f}"
                f"{v['after_commit']:>14.1f}{v['total']:>10.1f}"
            )
        lines.append(
            f"{phase:<8}{'ratio':<8}{'':>20}{row['ratio']:>9.2f}x{'':>14}{row['ratio_total']:>9.2f}x"
            f"   ({row['synced']['saving'] / n * 1000:.0f} µs/synced save)"
        )
    lines += [
        f"save ratio synced/plain (worst phase): {saves['ratio']:.2f}x, target <= {SAVE_TARGET}x: "
        f"{verdict(saves['met'])}",
        "",
        f"Model sync: real send ({send['n']} changes in one transaction, one request to a local HTTP server; "
        f"median of {send['repetitions']})",
        f"  commit {send['commit_ms']:.1f} ms + send {send['send_ms']:.1f} ms = commit+send "
        f"{send['commit_send_ms']:.1f} ms",
        "",
    ]
    return lines


def subscribe_table(sub: dict[str, Any]) -> list[str]:
    return [
        f"Model sync: subscribe to 'items' with filter {{}} ({sub['rows']} rows, median of {sub['repetitions']})",
        f"  subscribe {sub['subscribe_ms']:.1f} ms ({sub['subscribe_bytes'] / 1e6:.1f} MB)  vs  "
        f"values()+json.dumps {sub['baseline_ms']:.1f} ms ({sub['baseline_bytes'] / 1e6:.1f} MB)",
        f"  ratio {sub['ratio']:.2f}x, target <= {SUBSCRIBE_TARGET}x: {verdict(sub['met'])}",
        "  queries per subscribe: "
        + ", ".join(f"{rows} rows: {count}" for rows, count in sub["queries"].items())
        + f" -> equal: {verdict(sub['queries_met'])}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: smaller and fewer repetitions")
    parser.add_argument("--profile", action="store_true", help="print cProfile top costs even if targets are met")
    parser.add_argument("--rev", help="measure logux_sync as committed at this git revision (default: work tree)")
    parser.add_argument("--only", choices=["saves", "subscribe"], help="run one part (the other is not measured)")
    parser.add_argument(
        "--postgres", action="store_true", help="on a throw-away database of the PostgreSQL at 127.0.0.1:5432"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (saves, a subscribe) with callgrind instead"
    )
    parser.add_argument("--n", type=int, default=400, help=argparse.SUPPRESS)
    parser.add_argument("--count-child", nargs=2, metavar=("MODEL", "PHASE"), help=argparse.SUPPRESS)
    parser.add_argument("--count-subscribe", nargs=2, metavar=("PART", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, reps, rows, small = (200, 2, 2000, 200) if args.quick else (2000, 5, 10_000, 1000)
    if args.count_child or args.count_subscribe:
        with tempfile.TemporaryDirectory(prefix="logux-sync-bench-") as tmp:
            source = export_rev(args.rev, os.path.join(tmp, "src")) if args.rev else str(ROOT)
            setup_django(os.path.join(tmp, "db.sqlite3"), 9, source)
            from syncapp.models import Group

            Group.objects.create(name="g")
            if args.count_child:
                count_child(*args.count_child, args.n)
            else:
                count_subscribe_child(args.count_subscribe[0], int(args.count_subscribe[1]))
        return
    if args.instructions:
        print(f"logux_sync from: {args.rev or 'the work tree'}")
        if args.only != "subscribe":
            counts = count_instructions(args.rev, args.n)
            print(f"thousand instructions per save (callgrind), commit included, {args.n} saves")
            print("  create, change: all in one transaction; create1, change1: one save per transaction (autocommit)")
            print(f"{'phase':<9}{'plain':>10}{'synced':>10}{'ratio':>9}")
            for phase, row in counts.items():
                print(f"{phase:<9}{row['PlainItem']:>10.1f}{row['SyncedItem']:>10.1f}{row['ratio']:>8.2f}x")
        if args.only != "saves":
            sub = count_subscribe(args.rev, rows)
            print(f"million instructions, subscribe to {rows} rows (callgrind)")
            print(f"subscribe {sub['subscribe']:.1f}, values()+json.dumps {sub['baseline']:.1f}: {sub['ratio']:.2f}x")
        return

    server = start_sink()
    with tempfile.TemporaryDirectory(prefix="logux-sync-bench-") as tmp, database(args.postgres) as pg_name:
        source = export_rev(args.rev, os.path.join(tmp, "src")) if args.rev else str(ROOT)
        setup_django(os.path.join(tmp, "db.sqlite3"), server.server_address[1], source, pg_name)
        import logux_sync

        assert Path(logux_sync.__file__).is_relative_to(source), logux_sync.__file__
        from django.contrib.auth.models import Permission, User

        user = User.objects.create_user("reader")
        user.user_permissions.add(Permission.objects.get(codename="view_synceditem"))
        user = User.objects.get(pk=user.pk)
        from syncapp.models import Group

        Group.objects.bulk_create(Group(name=f"g{i}") for i in range(10))

        saves = send = sub = None
        if args.only != "subscribe":
            saves = bench_saves(n, reps, user)
            send = bench_send(n, reps, _Sink)
        if args.only != "saves":
            sub, profile_subscribe = bench_subscribe(rows, small, reps, user)
        print(f"logux_sync from: {args.rev or 'the work tree'} ({Path(logux_sync.__file__).parent})\n")
        print(table(saves, send, sub))
        if saves:
            queries = one_save_queries()
            print(f"\nqueries of one synced save in autocommit (DELIVERY worker): {queries}")
        profiles = {}
        if sub and (args.profile or not sub["met"]):
            profiles["subscribe"] = profile_subscribe()  # first: profile_saves() replaces the rows
        if saves and (args.profile or not saves["met"]):
            profiles["saves"] = profile_saves(n)
        for name, text in profiles.items():
            print(f"\ncProfile, synced {name} (top by own time):\n{text}")
    server.shutdown()

    import django

    RESULTS.mkdir(exist_ok=True)
    name = "sync" + (f"-rev-{args.rev}" if args.rev else "") + (f"-{args.only}" if args.only else "")
    name += "-postgres" if args.postgres else ""
    name += "-quick" if args.quick else ""
    out = RESULTS / f"{name.replace('/', '_')}.json"
    meta = {
        "logux_sync": args.rev or "work tree",
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out.write_text(json.dumps({"meta": meta, "saves": saves, "send": send, "subscribe": sub}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
