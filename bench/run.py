"""Endpoint throughput of Django back ends speaking Logux back-end protocol v4.

Three back ends, each served by gunicorn (2 sync workers, DEBUG=False, Django's default middleware, a
fresh SQLite file and file cache per run): `ours` (logux_sync from this tree), `seed` (logux-django 2.0
from PyPI, in its own venv under bench/.venvs/seed) and `bare` (a plain view, the ceiling). Four
workloads, each one command per POST, at concurrency 1 and 4. Prints a table and writes
bench/results/engine.json. See bench/README.md.

    python bench/run.py            # the full run (2000 timed requests per cell)
    python bench/run.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen import BadAnswer, CellResult, measure, post

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECTS = BENCH / "projects"
RESULTS = BENCH / "results"
SEED_VENV = BENCH / ".venvs" / "seed"

SECRET = "bench-secret"
PATH = "/logux/"
USER = "10"
NODE = f"{USER}:bench:tab"
T0 = 1_700_000_000_000

BACKENDS = ("ours", "seed", "bare")
# Where ours imports logux_sync from (--ours-tree): this working tree, or e.g. an older commit's files
# (`git archive <commit> logux_sync | tar -x -C /tmp/old`) to compare before and after on one machine.
OURS_TREE = ROOT
WORKERS = 2

# Targets from the issue: the workload, the ratio that is checked, and its threshold.
TARGETS = {
    "auth": ("ours/bare", 0.90),
    "noop": ("ours/bare", 0.90),
    "write": ("ours/seed", 1.00),
    "subscribe": ("ours/seed", 1.00),
}


# ---- workloads -------------------------------------------------------------------------------


def _action(action: dict[str, Any], i: int) -> dict[str, Any]:
    return {"command": "action", "action": action, "meta": {"id": f"{T0 + i} {NODE} {i}", "time": T0 + i}}


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    command: Callable[[int], dict[str, Any]]
    # Answer kinds that must all be there (a back end may add `resend`, the seed always does).
    answers: tuple[str, ...]

    def body(self, i: int) -> bytes:
        return json.dumps({"version": 4, "secret": SECRET, "commands": [self.command(i)]}).encode()

    def accept(self, status: int, data: bytes) -> bool:
        """The cheap check done on every timed response."""
        return status == 200 and all(b'"' + kind.encode() + b'"' in data for kind in self.answers)


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "auth",
            "auth command, token checked without I/O",
            lambda i: {
                "command": "auth",
                "authId": f"auth{i}",
                "userId": USER,
                "token": f"{USER}:good",
                "subprotocol": "1.0.0",
                "cookie": {},
                "headers": {},
            },
            ("authenticated",),
        ),
        Workload(
            "noop",
            "action: access True, process does nothing",
            lambda i: _action({"type": "bench/noop"}, i),
            ("approved", "processed"),
        ),
        Workload(
            "write",
            "action: process inserts one row (SQLite)",
            lambda i: _action({"type": "bench/write", "text": f"row {i}"}, i),
            ("approved", "processed"),
        ),
        Workload(
            "subscribe",
            "logux/subscribe: load returns one action",
            lambda i: _action({"type": "logux/subscribe", "channel": "bench/1"}, i),
            ("approved", "action", "processed"),
        ),
    )
}


def check_answer(backend: str, workload: Workload, status: int, data: bytes) -> list[dict[str, Any]]:
    """The thorough check before timing: HTTP 200, a JSON array, exactly the expected answers."""
    if status != 200:
        raise BadAnswer(f"{backend} answered {workload.name} with HTTP {status}: {data[:500]!r}")
    try:
        answers = json.loads(data)
    except ValueError as exc:
        raise BadAnswer(f"{backend} answered {workload.name} with no JSON ({exc}): {data[:500]!r}") from None
    kinds = [a.get("answer") for a in answers if isinstance(a, dict)]
    if not isinstance(answers, list) or [k for k in kinds if k != "resend"] != list(workload.answers):
        raise BadAnswer(f"{backend} answered {workload.name} with {answers!r}; expected {workload.answers}")
    if workload.name == "subscribe":
        loaded = next(a for a in answers if a["answer"] == "action")["action"]
        if loaded.get("type") != "bench/item":
            raise BadAnswer(f"{backend} loaded {loaded!r}")
    return answers


# ---- the seed's venv -------------------------------------------------------------------------


def seed_python() -> Path:
    """bench/.venvs/seed with logux-django 2.0 and the same Django, gunicorn and requests as ours."""
    same = [f"{name}=={importlib.metadata.version(name)}" for name in ("Django", "gunicorn", "requests")]
    # logux-django's metadata pins Django<4; installed without its pins it runs on 5.2.
    unpinned = ["logux-django==2.0", "semantic_version==2.8.5"]
    stamp = SEED_VENV / "bench-requirements.txt"
    wanted = "\n".join([*unpinned, *same]) + "\n"
    python = SEED_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"building {SEED_VENV.relative_to(ROOT)}: {' '.join(unpinned + same)}", flush=True)
    shutil.rmtree(SEED_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(SEED_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", *unpinned], check=True)
    subprocess.run([*pip, *same], check=True)
    stamp.write_text(wanted)
    return python


# ---- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    python: Path
    home: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.home / "gunicorn.log"

    @property
    def db(self) -> Path:
        return self.home / "db.sqlite3"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON", "LOGUX_"))}
        # Ours and bare run this tree's logux_sync whatever the venv holds; the seed runs only its venv.
        paths = [str(PROJECTS)] if self.name == "seed" else [str(PROJECTS), str(OURS_TREE)]
        env.update(
            PYTHONPATH=os.pathsep.join(paths),
            DJANGO_SETTINGS_MODULE=f"{self.name}.settings",
            BENCH_DB=str(self.db),
            BENCH_CACHE_DIR=str(self.home / "cache"),
            BENCH_LOGUX_SECRET=SECRET,
        )
        return env

    def prepare(self) -> None:
        self.home.mkdir(parents=True)
        python, env = str(self.python), self.env()
        subprocess.run([python, "-m", "django", "migrate", "--noinput", "-v0"], cwd=PROJECTS, env=env, check=True)
        probe = "import django, gunicorn, sys; print(django.__version__, gunicorn.__version__, sys.version.split()[0])"
        out = subprocess.run([python, "-c", probe], cwd=PROJECTS, env=env, check=True, capture_output=True, text=True)
        django, gunicorn, python = out.stdout.split()
        self.versions = {"django": django, "gunicorn": gunicorn, "python": python}
        if self.name == "seed":
            self.versions["logux-django"] = "2.0"

    def start(self) -> None:
        self.port = free_port()
        args = [str(self.python), "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync"]
        args += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", f"{self.name}.wsgi:application"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args, cwd=PROJECTS, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn for {self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise TimeoutError(f"gunicorn for {self.name} does not listen after 30 s; see {self.log}")

    def stop(self) -> None:
        """Stop gunicorn's whole process group: the arbiter and its workers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by gunicorn's workers (the arbiter's children)."""
        if self.process is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:  # ppid
                    total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def rows(self) -> int:
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            return int(db.execute("SELECT COUNT(*) FROM benchrows_row").fetchone()[0])


@contextlib.contextmanager
def servers(names: list[str], tmp: Path) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for name in names:
            python = seed_python() if name == "seed" else Path(sys.executable)
            server = Server(name, python, tmp / name)
            server.prepare()
            started[name] = server
            server.start()
        yield started
    finally:
        for server in started.values():
            server.stop()


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class Cell:
    workload: str
    concurrency: int
    backend: str
    results: list[CellResult] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # server CPU seconds per timed request, per round

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.results)

    @property
    def rps(self) -> float:
        """The median round: a burst of other load on the machine spoils one round, not the figure."""
        return statistics.median(r.rps for r in self.results)

    def percentile_ms(self, q: float) -> float:
        pooled = CellResult(self.requests, 0, [x for r in self.results for x in r.latencies])
        return pooled.percentile(q) * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "concurrency": self.concurrency,
            "backend": self.backend,
            "requests": self.requests,
            "seconds": round(sum(r.seconds for r in self.results), 4),
            "rps": round(self.rps, 1),
            "rps_rounds": [round(r.rps, 1) for r in self.results],
            "p50_ms": round(self.percentile_ms(0.50), 3),
            "p99_ms": round(self.percentile_ms(0.99), 3),
            "server_cpu_us": round(self.cpu_us, 1),
        }

    @property
    def cpu_us(self) -> float:
        """Workers' CPU per request (median round): less sensitive to other load than req/s."""
        return statistics.median(self.cpu) * 1e6 if self.cpu else float("nan")


def verify(server: Server, workloads: list[Workload]) -> int:
    """Send each workload once and check the answers; returns the number of rows written."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for workload in workloads:
            status, data = post(conn, PATH, workload.body(10**9))
            check_answer(server.name, workload, status, data)
    finally:
        conn.close()
    return 1 if any(w.name == "write" for w in workloads) else 0


def ratio(cells: dict[tuple[str, int, str], Cell], workload: str, concurrency: int, pair: str) -> float | None:
    """The median over rounds of the round's req/s ratio. The back ends of one round run back to back,
    so a round's ratio compares them under the same machine load; a ratio of the back ends' median
    rounds could pair a quiet round of one with a busy round of the other."""
    top, bottom = pair.split("/")
    a, b = cells.get((workload, concurrency, top)), cells.get((workload, concurrency, bottom))
    if not a or not b:
        return None
    return statistics.median(x.rps / y.rps for x, y in zip(a.results, b.results, strict=True))


def report(cells: dict[tuple[str, int, str], Cell], workloads: list[str], levels: list[int]) -> list[dict[str, Any]]:
    print()
    print(f"{'workload':<10} {'conc':>4}  {'back end':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs':>8}")
    for workload in workloads:
        for concurrency in levels:
            for backend in BACKENDS:
                cell = cells.get((workload, concurrency, backend))
                if cell:
                    row = cell.as_json()
                    print(
                        f"{workload:<10} {concurrency:>4}  {backend:<8} {row['rps']:>8.1f} "
                        f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['server_cpu_us']:>8.0f}"
                    )
        print()
    print(f"{'workload':<10} {'conc':>4}  {'ours/bare':>9} {'ours/seed':>9}  target")
    rows = []
    for workload in workloads:
        for concurrency in levels:
            vs_bare = ratio(cells, workload, concurrency, "ours/bare")
            vs_seed = ratio(cells, workload, concurrency, "ours/seed")
            pair, threshold = TARGETS[workload]
            checked = vs_bare if pair == "ours/bare" else vs_seed
            met = None if checked is None else checked >= threshold
            verdict = "n/a" if met is None else ("met" if met else "NOT met")
            print(
                f"{workload:<10} {concurrency:>4}  {_x(vs_bare):>9} {_x(vs_seed):>9}  "
                f"{pair} >= {threshold:.2f}: {verdict}"
            )
            rows.append(
                {
                    "workload": workload,
                    "concurrency": concurrency,
                    "ours/bare": None if vs_bare is None else round(vs_bare, 3),
                    "ours/seed": None if vs_seed is None else round(vs_seed, 3),
                    "target": f"{pair} >= {threshold:.2f}",
                    "met": met,
                }
            )
    return rows


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": model, "platform": platform.platform()}


def tree_state() -> dict[str, Any]:
    """The commit ours was measured at, and whether logux_sync/ had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        status = subprocess.run([*git, "status", "--porcelain", "--", "logux_sync"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit.strip(), "logux_sync_dirty": bool(status.stdout.strip())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per cell (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests before each cell (default 200)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each cell; req/s: median round (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 requests, 20 warm-up")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated levels (default 1,4)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default all)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default all)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/engine.json)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (databases, gunicorn logs)")
    parser.add_argument("--ours-tree", type=Path, help="import ours' logux_sync from this folder instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = 200, 20
    args.output = args.output or RESULTS / ("engine-quick.json" if args.quick else "engine.json")
    args.levels = [int(c) for c in args.concurrency.split(",")]
    args.workload_names = [w for w in args.workloads.split(",") if w]
    args.backend_names = [b for b in BACKENDS if b in args.backends.split(",")]
    unknown = set(args.workload_names) - set(WORKLOADS)
    if unknown or not args.backend_names:
        parser.error(f"unknown workloads {sorted(unknown)} or no known back end in {args.backends!r}")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop every gunicorn


def main(argv: list[str] | None = None) -> int:
    global OURS_TREE
    args = parse_args(argv)
    if args.ours_tree:
        OURS_TREE = args.ours_tree.resolve()
    signal.signal(signal.SIGTERM, _terminate)
    workloads = [WORKLOADS[name] for name in args.workload_names]
    tmp = Path(tempfile.mkdtemp(prefix="logux-bench-"))
    ok = False
    cells: dict[tuple[str, int, str], Cell] = {}
    try:
        with servers(args.backend_names, tmp) as running:
            expected_rows = {}
            for server in running.values():
                expected_rows[server.name] = verify(server, workloads)
                print(f"{server.name:<5} answers correctly on :{server.port}  {server.versions}", flush=True)
            print(
                f"{args.requests} timed requests per cell after {args.warmup} warm-up, {args.rounds} round(s); "
                f"gunicorn {WORKERS} sync workers; {os.cpu_count()} CPUs shared with the load generator",
                flush=True,
            )
            per_cell = args.warmup + args.requests
            for workload in workloads:
                bodies = [workload.body(i) for i in range(per_cell)]
                for concurrency in args.levels:
                    for _ in range(args.rounds):
                        # Back ends interleaved cell by cell, so a slow spell of the machine hits all.
                        for name, server in running.items():
                            if args.warmup:
                                measure(server.port, PATH, bodies[: args.warmup], 0, concurrency, workload.accept)
                            cpu = server.cpu_seconds()
                            result = measure(server.port, PATH, bodies[args.warmup :], 0, concurrency, workload.accept)
                            cpu = server.cpu_seconds() - cpu
                            cell = cells.setdefault(
                                (workload.name, concurrency, name), Cell(workload.name, concurrency, name)
                            )
                            cell.results.append(result)
                            cell.cpu.append(cpu / result.requests)
                            if workload.name == "write":
                                expected_rows[name] += per_cell
                            print(
                                f"  {workload.name:<10} c={concurrency} {name:<5} {result.rps:8.1f} req/s "
                                f"{cpu / result.requests * 1e6:6.0f} µs server CPU/req",
                                flush=True,
                            )
            for name, server in running.items():
                if name != "bare" and "write" in args.workload_names and server.rows() != expected_rows[name]:
                    raise BadAnswer(f"{name} wrote {server.rows()} rows, expected {expected_rows[name]}")
            versions = {name: server.versions for name, server in running.items()}
        ratios = report(cells, args.workload_names, args.levels)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "command": " ".join(["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "versions": versions,
            "ours_tree": tree_state() if OURS_TREE == ROOT else {"folder": str(OURS_TREE)},
            "setup": {
                "requests_per_cell": args.requests,
                "warmup_per_cell": args.warmup,
                "rounds": args.rounds,
                "gunicorn_workers": WORKERS,
                "worker_class": "sync",
                "workloads": {w.name: w.what for w in workloads},
            },
            "cells": [cell.as_json() for cell in cells.values()],
            "ratios": ratios,
        }
        args.output.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
        ok = True
    finally:
        if args.keep or not ok:
            print(f"databases and gunicorn logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
