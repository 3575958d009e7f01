"""Start and stop the real servers end-to-end tests talk to: gunicorn serving the example project,
and the Logux server. Every process logs to a file under test-artifacts/ and is stopped by its test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"
ARTIFACTS = ROOT / "test-artifacts"
NODE = shutil.which("node") or "node"
# SQLite with IMMEDIATE transactions: two gunicorn workers do not fail with "database is locked".
SQLITE_IMMEDIATE = "tests.e2e.sqlite_immediate_settings"


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


def spawn(
    args: list[str], env: dict[str, str], port: int, log_name: str, cwd: Path, append: bool = True
) -> subprocess.Popen[bytes]:
    """Start a process in its own session, logging to test-artifacts/<log_name> (appended, or from the
    start), and wait for its port. The caller stops it with stop() or kill()."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / log_name
    with log.open("ab" if append else "wb") as out:
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


@contextmanager
def started(args: list[str], env: dict[str, str], port: int, log_name: str, cwd: Path) -> Iterator[None]:
    process = spawn(args, env, port, log_name, cwd, append=False)
    try:
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


def prepared_env(tmp: Path, logux_ports: Sequence[int], **extra: str) -> dict[str, str]:
    """example_env() that sends to Logux servers on `logux_ports`, migrated. The ports are chosen before
    the servers start: Django needs their URLs, and they need Django's."""
    env = example_env(tmp, LOGUX_URL=",".join(f"http://127.0.0.1:{port}/" for port in logux_ports), **extra)
    migrate(env)
    return env


@contextmanager
def gunicorn(
    env: dict[str, str], workers: int = 2, name: str = "gunicorn", extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """Serve the example project, with `extra` command-line options (e.g. an access log format with the
    worker pid); yields its Logux endpoint URL."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    args += ["--access-logfile", "-", *extra, "example.wsgi"]
    with started(args, env, port, f"{name}.log", EXAMPLE):
        yield f"http://127.0.0.1:{port}/logux/"


def node_env(**extra: str) -> dict[str, str]:
    """Our environment for a Logux server, with `extra`: it refuses LOGUX_* variables it does not know
    (such as our LOGUX_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGUX_")}
    env.update(extra)
    return env


def spawn_logux(backend: str, port: int, name: str = "logux", append: bool = True) -> subprocess.Popen[bytes]:
    """@logux/server 0.13.1 in proxy mode on `port`, as a process the caller may kill and start again."""
    env = node_env(LOGUX_BACKEND=backend, LOGUX_CONTROL_SECRET="parole", LOGUX_PORT=str(port))
    return spawn([NODE, str(EXAMPLE / "logux_server.mjs")], env, port, f"{name}.log", ROOT, append=append)


@contextmanager
def logux_server(backend: str, port: int | None = None, name: str = "logux") -> Iterator[int]:
    """Run @logux/server 0.13.1 in proxy mode in front of `backend`; yields its port."""
    port = port or free_port()
    process = spawn_logux(backend, port, name, append=False)
    try:
        yield port
    finally:
        stop(process)


def last_json(text: str) -> Any:
    """The JSON value on the last line of `text` (Django 5.2's shell, for one, prints a line first)."""
    return json.loads(text.strip().splitlines()[-1])


def demo_users(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Create the example's demo users; {username: {id, token}}."""
    run = subprocess.run(
        [sys.executable, "manage.py", "demo_users", "--tokens"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return last_json(run.stdout)  # type: ignore[no-any-return]


def plain_users(env: dict[str, str], *names: str) -> dict[str, dict[str, str]]:
    """Create users with no staff, superuser or permissions (password: their name); {name: {id, token}}."""
    code = (
        "import json\nfrom django.contrib.auth.models import User\nfrom logux_sync import make_token\n"
        f"out = {{}}\nfor name in {names!r}:\n"
        "    u = User.objects.create_user(name, password=name)\n"
        "    out[name] = {'id': str(u.pk), 'token': make_token(u)}\nprint(json.dumps(out))\n"
    )
    return python_json(env, code)  # type: ignore[no-any-return]


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


def python_json(env: dict[str, str], code: str) -> Any:
    """run_python(), and the JSON value `code` printed last."""
    return last_json(run_python(env, code))


def task_rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every Task row of the example as {id: {column, owner, private, title}}, read straight from the
    database; in this key order, which the drivers' taskFields() keep (faults.mjs compares JSON text)."""
    code = (
        "import json\nfrom board.models import Task\n"
        "print(json.dumps({t.pk: {'column': t.column, 'owner': t.owner_id, 'private': t.private, "
        "'title': t.title} for t in Task.objects.all()}))\n"
    )
    return python_json(env, code)  # type: ignore[no-any-return]


# ---- Node drivers -------------------------------------------------------------------------------------


def drive(
    script: Path,
    *args: str,
    timeout: float,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    note: str = "",
) -> str:
    """Run a Node driver (tests/*/js/*.mjs) from the repository root, its stderr saved to `log` if given;
    its stdout. Fails the test with `note` and the end of its stderr when it exits non-zero."""
    run = subprocess.run([NODE, str(script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if log is not None:
        log.write_text(run.stderr)
    assert run.returncode == 0, f"{script.name} {' '.join(args[:1])} failed{note}:\n{run.stderr[-4000:]}"
    return run.stdout


def spawn_driver(script: Path, config: dict[str, Any], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a Node driver that runs alongside the test (it talks through files named in `config`), in its
    own session so that stop() ends it; stdout and stderr go to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [NODE, str(script), json.dumps(config)], cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )


def wait_for_file(path: Path, driver: subprocess.Popen[bytes], log: Path, timeout: float, what: str) -> None:
    """Wait until the driver writes `path`; fail the test naming `what` if it exits first or takes longer."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert driver.poll() is None, f"{what}: the driver exited with {driver.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def finished(driver: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait for the driver to exit; fail the test with the end of its log unless it succeeded."""
    assert driver.wait(timeout) == 0, log.read_text()[-4000:]


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
    with started(bridge_args(backend, port, *extra), node_env(), port, f"{name}.log", ROOT):
        yield port
