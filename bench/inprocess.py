"""Where the time goes: each back end's WSGI app called in-process, without gunicorn or sockets.

    python bench/inprocess.py                       # µs per request, every back end and workload
    python bench/inprocess.py --profile ours:auth   # plus cProfile of one back end on one workload

Each back end runs in its own interpreter (the seed in bench/.venvs/seed) on a fresh SQLite file and
file cache, with the same settings as in `run.py`; the whole middleware stack and the response iterator
run as gunicorn would run them, so (gunicorn figure - this figure) is what serving costs.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def child(requests: int, profile: str | None, workloads: list[str]) -> None:
    """Inside the back end's interpreter: time every workload, print JSON, maybe a profile."""
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

    timings = {}
    for workload in (WORKLOADS[name] for name in workloads):
        bodies = [workload.body(i) for i in range(requests + 100)]
        for body in bodies[:100]:
            data = call(body)
            if not workload.accept(int(status_line[0].split()[0]), data):
                raise SystemExit(f"{workload.name}: {status_line} {data[:300]!r}")
        began, cpu = time.perf_counter(), time.process_time()
        for body in bodies[100:]:
            call(body)
        timings[workload.name] = (time.perf_counter() - began) / requests * 1e6
        timings[f"{workload.name} cpu"] = (time.process_time() - cpu) / requests * 1e6
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
    print(json.dumps(timings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", metavar="BACKEND:WORKLOAD", help="cProfile one cell (printed on stderr)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default all)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    profile = args.profile.split(":") if args.profile else None
    if args.child:
        child(args.requests, profile[1] if profile else None, args.workloads.split(","))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="logux-bench-inprocess-"))
    rows: dict[str, dict[str, float]] = {}
    try:
        for name in (b for b in BACKENDS if b in args.backends.split(",")):
            python = seed_python() if name == "seed" else Path(sys.executable)
            server = Server(name, python, tmp / name)
            server.prepare()
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
    print(f"µs per request in-process, wall / CPU ({args.requests} requests)")
    print(f"{'workload':<10} " + " ".join(f"{name:>12}" for name in rows) + "  ours-bare")
    for workload in args.workloads.split(","):
        line = " ".join(f"{rows[name][workload]:6.0f}/{rows[name][workload + ' cpu']:<5.0f}" for name in rows)
        extra = f"  {rows['ours'][workload] - rows['bare'][workload]:8.0f}" if {"ours", "bare"} <= set(rows) else ""
        print(f"{workload:<10} {line}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
