"""`manage.py logux_deliver` lives through database faults and loses nothing.

The worker runs against a fake Logux control endpoint (tests/test_client.py's FakeLogux). (a) SQLite:
another connection holds the database file with BEGIN EXCLUSIVE for several times the busy timeout
(1 s, tests/e2e/deliver_settings.py). (b) PostgreSQL: the test terminates the worker's backend
(pg_terminate_backend) again and again. Either way the worker must log the fault, stay up, deliver the
outbox rows written meanwhile once the database is back, and exit 0 on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pg
from tests.test_client import FakeLogux, running

from .servers import ARTIFACTS, EXAMPLE, prepared_env, run_python

pytestmark = pytest.mark.e2e

TASKS = 30


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "logux_deliver", "--interval", "0.2", "--ignore-backoff"],
            cwd=EXAMPLE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(
    what: str, check: Callable[[], bool], worker: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Wait for `check()`; fail naming `what` if the worker exits first or it takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert worker.poll() is None, f"{what}: the worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.01)


def strand_tasks(env: dict[str, str], fake: FakeLogux, prefix: str, count: int = TASKS) -> list[str]:
    """Create `count` tasks while the Logux endpoint fails: their actions wait in the outbox."""
    ids = [f"{prefix}-{n}" for n in range(count)]
    fake.status = 500
    run_python(
        env,
        "from django.contrib.auth.models import User\nfrom board.models import Task\n"
        "owner = User.objects.create_user(" + repr(prefix) + ")\n"
        f"for pk in {ids!r}:\n    Task.objects.create(id=pk, title=pk, owner=owner)\n",
    )
    fake.status = 200
    return ids


def delivered(fake: FakeLogux) -> set[str]:
    """The ids of the tasks whose actions reached the fake Logux server with a success."""
    return {
        command["action"]["id"]
        for request in fake.requests
        if request["status"] == 200
        for command in json.loads(request["body"])["commands"]
        if command["action"]["type"].startswith("tasks/")
    }


def sqlite_outbox(db: str) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM logux_sync_loguxoutbox").fetchone()[0])


def stopped_cleanly(worker: subprocess.Popen[bytes], log: Path) -> None:
    assert worker.poll() is None, log.read_text()[-3000:]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0, log.read_text()[-3000:]


def test_worker_outlives_a_locked_sqlite_database(workdir: Path) -> None:
    with running() as fake:
        port = int(fake.url.rsplit(":", 1)[1].strip("/"))
        env = prepared_env(workdir, [port], DJANGO_SETTINGS_MODULE="tests.e2e.deliver_settings")
        db = env["EXAMPLE_DB"]
        log = ARTIFACTS / f"deliver-sqlite-{workdir.name}.log"
        worker = spawn_worker(env, log)
        try:
            lock = sqlite3.connect(db, isolation_level=None, timeout=10)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                wait_until("the worker hits the lock", lambda: "database is locked" in log.read_text(), worker, log, 20)
                time.sleep(3)  # several more busy timeouts
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            ids = strand_tasks(env, fake, "sqlite")
            wait_until("the outbox is delivered", lambda: sqlite_outbox(db) == 0, worker, log, 20)
            stopped_cleanly(worker, log)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    assert set(ids) <= delivered(fake)


def test_worker_outlives_its_postgres_backend_terminated(workdir: Path, pg_db: str) -> None:
    with running() as fake:
        port = int(fake.url.rsplit(":", 1)[1].strip("/"))
        env = prepared_env(workdir, [port], **pg.example_env(pg_db))
        log = ARTIFACTS / f"deliver-pg-{workdir.name}.log"
        worker = spawn_worker(env, log)
        try:
            # Django opens a connection per loop of the worker (CONN_MAX_AGE 0), so a backend killed
            # between loops goes unnoticed: kill every backend of the worker (alone on the database)
            # as soon as it shows up, until one dies in the middle of a delivery and the worker says so.
            with contextlib.closing(pg.connect(pg_db)) as conn:
                kill = (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()"
                )

                def killed_mid_delivery() -> bool:
                    conn.execute(kill, (pg_db,))
                    return "database error" in log.read_text()

                wait_until("a backend killed in the middle of a delivery", killed_mid_delivery, worker, log, 30)
            ids = strand_tasks(env, fake, "pg")
            count = "SELECT count(*) FROM logux_sync_loguxoutbox"
            wait_until("the outbox is delivered", lambda: pg.query(pg_db, count)[0][0] == 0, worker, log, 20)
            stopped_cleanly(worker, log)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    assert set(ids) <= delivered(fake)
