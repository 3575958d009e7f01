"""End-to-end throughput: the logux-sync bridge (@logux/server 0.14 + @logux/client 0.23) vs
@logux/server 0.13.1's built-in back-end proxy (+ @logux/client 0.21), in front of the same Django.

    python bench/bridge_bench.py                 # 20 clients, writes bench/results/bridge.json
    python bench/bridge_bench.py --quick         # a smoke run

One gunicorn (2 sync workers) serves the example project (SQLite, IMMEDIATE transactions); both Logux
servers run at once in front of it and LOGUX_SYNC['URLS'] lists both, so add() costs the same for each.
Workloads, each client sending its actions one after another with `client.sync()` (resolved on
`logux/processed`), all clients at once:
  noop  `test/slow {seconds: 0}`: access True, process does nothing (no I/O)
  rows  `changeSyncMapById` on the client's own card: a model-sync edit that writes a row
Cells run proxy, bridge, proxy, bridge… so a slow spell of the machine hits both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.servers import (  # noqa: E402
    NODE,
    SQLITE_IMMEDIATE,
    bridge_server,
    demo_users,
    free_port,
    gunicorn,
    logux_server,
    prepared_env,
)

LOAD = ROOT / "tests" / "bridge" / "js" / "load.mjs"
BRIDGE_MODULES = ROOT / "logux_sync" / "bridge" / "node_modules"
STACKS: dict[str, dict[str, Any]] = {
    "proxy 0.13.1 + client 0.21": {"modules": ROOT / "node_modules", "subprotocol": "1.0.0", "bridge": None},
    "bridge 0.14.0 + client 0.23": {"modules": BRIDGE_MODULES, "subprotocol": 1, "bridge": ()},
    "bridge, --log-level=warn": {"modules": BRIDGE_MODULES, "subprotocol": 1, "bridge": ("--log-level=warn",)},
}


def run_load(url: str, stack: dict[str, Any], users: dict[str, Any], kind: str, clients: int, actions: int) -> dict:
    config = {
        "actions": actions,
        "clients": clients,
        "kind": kind,
        "modules": str(stack["modules"]),
        "subprotocol": stack["subprotocol"],
        "url": url,
        "users": users,
        "warmup": max(2, actions // 10),
    }
    run = subprocess.run([NODE, str(LOAD), json.dumps(config)], capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{run.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    expected = clients * actions
    if result["count"] != expected or result["errors"]:
        raise RuntimeError(f"{kind}: {result['count']} of {expected} actions processed; errors {result['errors']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--actions", type=int, default=100, help="noop actions per client")
    parser.add_argument("--row-actions", type=int, default=30, help="row edits per client")
    parser.add_argument("--rounds", type=int, default=3, help="cells per stack and workload; the median is kept")
    parser.add_argument("--quick", action="store_true", help="1 round, 10 noop and 5 row actions per client")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bridge.json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.actions, args.row_actions = 1, 10, 5

    import tempfile

    results: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"noop": [], "rows": []} for name in STACKS}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        ports = {name: free_port() for name in STACKS}
        env = prepared_env(
            Path(tmp), list(ports.values()), DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE, EXAMPLE_TEST_SUPPORT="1"
        )
        users = demo_users(env)
        backend = stack.enter_context(gunicorn(env, workers=2, name="bench-gunicorn"))
        for index, (name, spec) in enumerate(STACKS.items()):
            if spec["bridge"] is None:
                stack.enter_context(logux_server(backend, port=ports[name], name=f"bench-{index}-proxy"))
            else:
                server = bridge_server(backend, port=ports[name], name=f"bench-{index}-bridge", extra=spec["bridge"])
                stack.enter_context(server)
        urls = dict(zip(STACKS, [f"ws://127.0.0.1:{port}/" for port in ports.values()], strict=True))
        for round_ in range(args.rounds):
            for kind, actions in (("noop", args.actions), ("rows", args.row_actions)):
                for name, spec in STACKS.items():
                    result = run_load(urls[name], spec, users, kind, args.clients, actions)
                    results[name][kind].append(result)
                    print(
                        f"round {round_ + 1} {kind:4} {name:28} {result['perSecond']:8.1f} actions/s  "
                        f"p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms",
                        flush=True,
                    )

    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name, kinds in results.items():
        summary[name] = {}
        for kind, cells in kinds.items():
            summary[name][kind] = {
                key: statistics.median(cell[key] for cell in cells) for key in ("perSecond", "p50", "p99")
            }
    print(f"\n{args.clients} clients; median of {args.rounds} round(s); gunicorn 2 workers, SQLite\n")
    print("| workload | stack | actions/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for kind in ("noop", "rows"):
        for name in STACKS:
            cell = summary[name][kind]
            print(f"| {kind} | {name} | {cell['perSecond']:.0f} | {cell['p50']:.1f} | {cell['p99']:.1f} |")
    proxy, *bridges = list(STACKS)
    for kind in ("noop", "rows"):
        for name in bridges:
            ratio = summary[name][kind]["perSecond"] / summary[proxy][kind]["perSecond"]
            print(f"{kind}: {name} / proxy = {ratio:.2f}x actions/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "summary": summary, "cells": results}))


if __name__ == "__main__":
    main()
