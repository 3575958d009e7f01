"""Where the time goes: each back end's WSGI app called in-process, without gunicorn or sockets.

    python bench/inprocess.py                       # µs per request, every back end and workload
    python bench/inprocess.py --profile ours:auth   # plus cProfile of one back end on one workload
    python bench/inprocess.py --instructions        # instructions per request (valgrind), load-proof

Each back end runs in its own interpreter (the seed in bench/.venvs/seed) on a fresh SQLite file and
file cache, with the same settings as in `run.py`; the whole middleware stack and the response iterator
run as gunicorn would run them, so (gunicorn figure - this figure) is what serving costs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import run
from run import BACKENDS, PATH, PROJECTS, WORKLOADS, Server, seed_python


def environ_for(body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


BATCHES = 10


def child(requests: int, profile: str | None, workloads: list[str], instructions: bool) -> None:
    """Inside the back end's interpreter: time every workload, print JSON, maybe a profile.

    The timed requests run in BATCHES batches and the fastest batch counts: on a shared machine a
    burst of other work slows some batches, never speeds one up. With `instructions` (under valgrind)
    callgrind counts only the timed requests."""
    import subprocess

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    status_line: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status_line[:] = [status]
        return lambda data: None

    def call(body: bytes) -> bytes:
        result = app(environ_for(body), start_response)
        try:
            return b"".join(result)
        finally:
            result.close()

    def callgrind(switch: str) -> None:
        subprocess.run(["callgrind_control", "--instr=" + switch, str(os.getpid())], check=True, capture_output=True)

    timings: dict[str, float] = {}
    batch = max(1, requests // BATCHES)
    for workload in (WORKLOADS[name] for name in workloads):
        bodies = [workload.body(i) for i in range(batch * BATCHES + 100)]
        for body in bodies[:100]:
            data = call(body)
            if not workload.accept(int(status_line[0].split()[0]), data):
                raise SystemExit(f"{workload.name}: {status_line} {data[:300]!r}")
        if instructions:
            callgrind("on")
            for body in bodies[100 : 100 + batch]:
                call(body)
            callgrind("off")
            print(json.dumps({"workload": workload.name, "requests": batch}), flush=True)
            continue
        walls, cpus = [], []
        for start in range(100, len(bodies), batch):
            began, cpu = time.perf_counter(), time.process_time()
            for body in bodies[start : start + batch]:
                call(body)
            walls.append((time.perf_counter() - began) / batch * 1e6)
            cpus.append((time.process_time() - cpu) / batch * 1e6)
        timings[workload.name] = min(walls)
        timings[f"{workload.name} cpu"] = min(cpus)
        if profile == workload.name:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(requests):
                call(workload.body(10**8 + i))
            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
    if not instructions:
        print(json.dumps(timings))


def count_instructions(python: Path, env: dict[str, str], workloads: list[str], requests: int) -> dict[str, float]:
    """Instructions per request, counted by callgrind: the same on a busy machine as on an idle one."""
    counts = {}
    for workload in workloads:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]
        command += [str(python), __file__, "--child", "--instructions", "--requests", str(requests)]
        out = subprocess.run(
            [*command, "--workloads", workload], cwd=PROJECTS, env=env, check=True, capture_output=True, text=True
        )
        collected = re.findall(r"Collected : (\d+)", out.stderr)
        counts[workload] = int(collected[-1]) / json.loads(out.stdout)["requests"]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", metavar="BACKEND:WORKLOAD", help="cProfile one cell (printed on stderr)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default all)")
    parser.add_argument("--ours-tree", type=Path, help="import ours' logux_sync from this folder instead")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request with valgrind's callgrind"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    profile = args.profile.split(":") if args.profile else None
    if args.ours_tree:
        run.OURS_TREE = args.ours_tree.resolve()
    if args.child:
        child(args.requests, profile[1] if profile else None, args.workloads.split(","), args.instructions)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="logux-bench-inprocess-"))
    workloads = args.workloads.split(",")
    rows: dict[str, dict[str, float]] = {}
    try:
        for name in (b for b in BACKENDS if b in args.backends.split(",")):
            python = seed_python() if name == "seed" else Path(sys.executable)
            server = Server(name, python, tmp / name)
            server.prepare()
            if args.instructions:
                rows[name] = count_instructions(python, server.env(), workloads, args.requests)
                continue
            command = [str(python), __file__, "--child", "--requests", str(args.requests)]
            command += ["--workloads", args.workloads]
            if profile and profile[0] == name:
                command += ["--profile", args.profile]
            out = subprocess.run(command, cwd=PROJECTS, env=server.env(), check=True, capture_output=True, text=True)
            if profile and profile[0] == name:
                print(out.stderr)
            rows[name] = json.loads(out.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    both = {"ours", "bare"} <= set(rows)
    if args.instructions:
        print(f"thousand instructions per request in-process (callgrind, {args.requests // BATCHES} requests)")
        print(f"{'workload':<10} " + " ".join(f"{name:>8}" for name in rows) + ("  ours/bare" if both else ""))
        for workload in workloads:
            line = " ".join(f"{rows[name][workload] / 1000:8.0f}" for name in rows)
            extra = f"  {rows['ours'][workload] / rows['bare'][workload]:8.2f}x" if both else ""
            print(f"{workload:<10} {line}{extra}")
        return 0
    print(f"µs per request in-process, wall / CPU (fastest of {BATCHES} batches of {args.requests // BATCHES})")
    print(f"{'workload':<10} " + " ".join(f"{name:>12}" for name in rows) + ("  ours-bare" if both else ""))
    for workload in workloads:
        line = " ".join(f"{rows[name][workload]:6.0f}/{rows[name][workload + ' cpu']:<5.0f}" for name in rows)
        extra = f"  {rows['ours'][workload] - rows['bare'][workload]:8.0f}" if both else ""
        print(f"{workload:<10} {line}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
