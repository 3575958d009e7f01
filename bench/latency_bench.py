"""Latency of a SyncMap change: from one client's `changeSyncMap` to another client's store showing it,
through each Logux stack in front of Django, against a native @logux/server `addSyncMap` in the same run.

    python bench/latency_bench.py                        # 3 rounds of 200 changes per stack
    python bench/latency_bench.py --quick                # a smoke run
    python bench/latency_bench.py --before-tree /tmp/b   # also "ours" from another copy of logux_sync:
        mkdir /tmp/b && git archive <commit> logux_sync example_project | tar -x -C /tmp/b
        (with only logux_sync in it, the example project of this checkout runs it)

Stacks, each with its own servers on 127.0.0.1 (and its own gunicorn and SQLite file, so that Django
sends each change to one Logux server only):
  native  @logux/server 0.14 with addSyncMap for `tasks`, rows in memory (bench/latency/native_server.mjs)
          + @logux/client 0.23: the baseline
  bridge  gunicorn (2 sync workers) serving the example project + our bridge (`bridge.mjs`, what
          `manage.py logux_server` runs) + @logux/client 0.23
  proxy   the same gunicorn set-up + @logux/server 0.13.1's back-end proxy + @logux/client 0.21
  before  (with --before-tree) the bridge stack with Django and the bridge from that tree
  bridge-wal, proxy-wal, before-wal  the same with SQLite in WAL mode, synchronous=NORMAL
          (bench/latency/sqlite_wal_settings.py): a commit then waits for no fsync

Alice changes the title of a card she created; bob holds that card's store (a `tasks/<id>`
subscription); a round is the time until bob's store shows the new title, and the next round starts
once alice's change is processed and bob saw it (bench/latency/clients.mjs). Rounds of every stack are
interleaved (native, bridge, proxy, before, native, ...), so a slow spell of the machine hits them all;
p50/p99 are over all the changes of a stack. Every server is stopped on exit; logs in test-artifacts/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.servers import (  # noqa: E402
    EXAMPLE,
    NODE,
    SQLITE_IMMEDIATE,
    example_env,
    free_port,
    last_json,
    logux_server,
    node_env,
    started,
)

HERE = Path(__file__).resolve().parent / "latency"
BRIDGE_MODULES = ROOT / "logux_sync" / "bridge" / "node_modules"
PROXY_MODULES = ROOT / "node_modules"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextmanager
def native(name: str) -> Iterator[str]:
    port = free_port()
    with started([NODE, str(HERE / "native_server.mjs"), str(port)], node_env(), port, f"{name}.log", ROOT):
        yield f"ws://127.0.0.1:{port}/"


@contextmanager
def django_stack(
    tmp: Path, kind: str, name: str, tree: Path = ROOT, wal: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """gunicorn (2 sync workers) serving the example project with logux_sync from `tree` (and the
    example project from there too, if it has one), and in front of it our bridge (from `tree`) or the
    0.13.1 proxy; yields the WebSocket URL and the demo users."""
    port = free_port()
    tmp.mkdir()
    example = tree / "example_project" if (tree / "example_project").is_dir() else EXAMPLE
    settings = "sqlite_wal_settings" if wal else SQLITE_IMMEDIATE
    env = example_env(tmp, LOGUX_URL=f"http://127.0.0.1:{port}/", DJANGO_SETTINGS_MODULE=settings)
    env["PYTHONPATH"] = ":".join(dict.fromkeys([str(tree), str(ROOT), str(HERE)]))

    def python(*args: str) -> str:
        run = subprocess.run([sys.executable, *args], env=env, cwd=example, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"{name}: {' '.join(args)} failed:\n{run.stderr[-3000:]}")
        return run.stdout

    python("manage.py", "migrate", "--noinput", "-v0")
    where = python("-c", "import logux_sync; print(logux_sync.__file__)").strip()
    if not where.startswith(str(tree / "logux_sync")):
        raise RuntimeError(f"{name}: logux_sync imported from {where}, not from {tree}")
    users = last_json(python("manage.py", "demo_users", "--tokens"))
    with ExitStack() as servers:
        gunicorn_port = free_port()
        args = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{gunicorn_port}"]
        args += ["--access-logfile", "-", "example.wsgi"]
        servers.enter_context(started(args, env, gunicorn_port, f"{name}-gunicorn.log", example))
        backend = f"http://127.0.0.1:{gunicorn_port}/logux/"
        if kind == "proxy":
            servers.enter_context(logux_server(backend, port=port, name=f"{name}-logux"))
        else:
            bridge = tree / "logux_sync" / "bridge"
            if not (bridge / "node_modules").exists():  # a `git archive` copy: the packages of this tree
                (bridge / "node_modules").symlink_to(BRIDGE_MODULES)
            args = [NODE, str(bridge / "bridge.mjs"), f"--backend={backend}", f"--port={port}", "--secret=parole"]
            servers.enter_context(started(args, node_env(), port, f"{name}-bridge.log", ROOT))
        yield f"ws://127.0.0.1:{port}/", users


def run_clients(url: str, modules: Path, subprotocol: Any, users: dict[str, Any], rounds: int, warmup: int) -> dict:
    config = {
        "modules": str(modules),
        "rounds": rounds,
        "subprotocol": subprotocol,
        "url": url,
        "users": users,
        "warmup": warmup,
    }
    run = subprocess.run([NODE, str(HERE / "clients.mjs"), json.dumps(config)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"clients.mjs failed on {url}:\n{run.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    if result["count"] != rounds:
        raise RuntimeError(f"{result['count']} of {rounds} changes seen on {url}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200, help="timed changes per stack and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every stack once")
    parser.add_argument("--warmup", type=int, default=20, help="untimed changes before each run")
    parser.add_argument("--stacks", default="native,bridge,proxy,bridge-wal,proxy-wal", help="comma-separated")
    parser.add_argument("--before-tree", type=Path, help="also run the bridge stacks with logux_sync from DIR")
    parser.add_argument("--quick", action="store_true", help="1 round of 30 changes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.changes, args.warmup = 1, 30, 5
    names = args.stacks.split(",")
    if args.before_tree:
        args.before_tree = args.before_tree.resolve()
        names += ["before-wal" if name == "bridge-wal" else "before" for name in names if name.startswith("bridge")]

    latencies: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="logux-latency-") as tmp, ExitStack() as servers:
        targets: dict[str, tuple[str, Path, Any, dict[str, Any]]] = {}
        fake_users = {"alice": {"id": "1", "token": "-"}, "bob": {"id": "2", "token": "-"}}
        for name in names:
            if name == "native":
                targets[name] = (servers.enter_context(native("latency-native")), BRIDGE_MODULES, 1, fake_users)
            elif name.removesuffix("-wal") in ("bridge", "before", "proxy"):
                kind = "proxy" if name.startswith("proxy") else "bridge"
                tree = args.before_tree if name.startswith("before") else ROOT
                wal = name.endswith("-wal")
                stack = django_stack(Path(tmp) / name, kind, f"latency-{name}", tree, wal)
                url, users = servers.enter_context(stack)
                if kind == "proxy":
                    targets[name] = (url, PROXY_MODULES, "1.0.0", users)
                else:
                    targets[name] = (url, BRIDGE_MODULES, 1, users)
            else:
                parser.error(f"unknown stack {name}")
        for round_ in range(args.rounds):
            for name, (url, modules, subprotocol, users) in targets.items():
                result = run_clients(url, modules, subprotocol, users, args.changes, args.warmup)
                latencies[name].extend(result["latencies"])
                p50, p99 = result["p50"], result["p99"]
                print(f"round {round_ + 1} {name:7} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms", flush=True)

    summary = {
        name: {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "mean": statistics.fmean(values),
            "count": len(values),
        }
        for name, values in latencies.items()
    }
    print(f"\n{args.rounds} round(s) of {args.changes} changes per stack\n")
    print("| stack | p50 ms | p99 ms | p50 / native |")
    print("|---|---:|---:|---:|")
    for name, cell in summary.items():
        ratio = f"{cell['p50'] / summary['native']['p50']:.1f}x" if "native" in summary else "-"
        print(f"| {name} | {cell['p50']:.2f} | {cell['p99']:.2f} | {ratio} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "latencies": latencies}
    args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
