"""Start and stop the real servers end-to-end tests talk to: gunicorn serving the example project,
and the Logux server. Every process logs to a file under test-artifacts/ and is stopped by its test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"
ARTIFACTS = ROOT / "test-artifacts"
NODE = shutil.which("node") or "node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}; log {log}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s; log {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@contextmanager
def started(args: list[str], env: dict[str, str], port: int, log_name: str, cwd: Path) -> Iterator[None]:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / log_name
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        stop(process)


def example_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="example.settings",
        DJANGO_DEBUG="0",
        EXAMPLE_DB=str(tmp / "db.sqlite3"),
        EXAMPLE_CACHE_DIR=str(tmp / "cache"),
        LOGUX_CONTROL_SECRET="parole",
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=EXAMPLE, env=env, check=True)


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, name: str = "gunicorn") -> Iterator[str]:
    """Serve the example project; yields its Logux endpoint URL."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    args += ["--access-logfile", "-", "example.wsgi"]
    with started(args, env, port, f"{name}.log", EXAMPLE):
        yield f"http://127.0.0.1:{port}/logux/"


@contextmanager
def logux_server(backend: str, port: int | None = None, name: str = "logux") -> Iterator[int]:
    """Run @logux/server 0.13.1 in proxy mode in front of `backend`; yields its port."""
    port = port or free_port()
    # The Logux server refuses LOGUX_* variables it does not know (such as our LOGUX_URL).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGUX_")}
    env.update(LOGUX_BACKEND=backend, LOGUX_CONTROL_SECRET="parole", LOGUX_PORT=str(port))
    with started([NODE, str(EXAMPLE / "logux_server.mjs")], env, port, f"{name}.log", ROOT):
        yield port


def spawn(args: list[str], env: dict[str, str], port: int, log_name: str, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session, logging to test-artifacts/<log_name> (appended), and wait for
    its port. The caller stops it with stop() or kill()."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / log_name
    with log.open("ab") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        stop(process)
        raise
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group: a crash, not a shutdown."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def spawn_logux(backend: str, port: int, name: str = "logux") -> subprocess.Popen[bytes]:
    """@logux/server 0.13.1 in proxy mode on `port`, as a process the caller may kill and start again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGUX_")}
    env.update(LOGUX_BACKEND=backend, LOGUX_CONTROL_SECRET="parole", LOGUX_PORT=str(port))
    return spawn([NODE, str(EXAMPLE / "logux_server.mjs")], env, port, f"{name}.log", ROOT)


@contextmanager
def gunicorn_args(env: dict[str, str], extra: list[str], workers: int = 2, name: str = "gunicorn") -> Iterator[str]:
    """Like gunicorn(), with extra command-line options (e.g. an access log format with the worker pid)."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    args += ["--access-logfile", "-", *extra, "example.wsgi"]
    with started(args, env, port, f"{name}.log", EXAMPLE):
        yield f"http://127.0.0.1:{port}/logux/"


def demo_users(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Create the example's demo users; {username: {id, token}}."""
    import json

    run = subprocess.run(
        [sys.executable, "manage.py", "demo_users", "--tokens"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_python(env: dict[str, str], code: str, timeout: float = 120) -> str:
    """Run `code` in a fresh Python with the example's settings (django.setup() done first); its stdout."""
    prelude = "import django\ndjango.setup()\n"
    run = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if run.returncode != 0:
        raise RuntimeError(f"python failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return run.stdout


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory of our own: pytest's tmp_path is pruned when other pytest sessions start
    (it keeps the last three), which removes files under a long test's feet when several run at once."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


BRIDGE = ROOT / "logux_sync" / "bridge" / "bridge.mjs"


def bridge_args(backend: str, port: int, *extra: str) -> list[str]:
    """The command line of the logux-sync bridge (@logux/server 0.14) on `port` in front of `backend`."""
    return [NODE, str(BRIDGE), f"--backend={backend}", f"--port={port}", "--secret=parole", *extra]


@contextmanager
def bridge_server(
    backend: str, port: int | None = None, name: str = "bridge", extra: tuple[str, ...] = ()
) -> Iterator[int]:
    """Run the logux-sync bridge in front of `backend`; yields its port."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGUX_")}
    with started(bridge_args(backend, port, *extra), env, port, f"{name}.log", ROOT):
        yield port
