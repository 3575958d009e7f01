"""On PostgreSQL an idle `logux_deliver` is woken by a NOTIFY of the transaction that wrote outbox rows:
the change goes out within a moment, not at the next poll (here 30 s away)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import pg
from tests.test_client import running

from .servers import ARTIFACTS, EXAMPLE, prepared_env, run_python
from .test_deliver_faults import delivered

pytestmark = pytest.mark.e2e

SAVE = """
from django.contrib.auth.models import User
from django.test import override_settings
from board.models import Task
from django.conf import settings
from django.db import transaction
owner = User.objects.create_user("waker")
with override_settings(LOGUX_SYNC={**settings.LOGUX_SYNC, "DELIVERY": "worker"}):
    try:  # a transaction that rolls back first: the next one still wakes the worker
        with transaction.atomic():
            Task.objects.create(id="rolled-back", title="never sent", owner=owner)
            raise RuntimeError
    except RuntimeError:
        pass
    Task.objects.create(id="woken", title="sent by a woken worker", owner=owner)
"""


def test_an_idle_worker_is_woken_by_a_commit(workdir: Path, pg_db: str) -> None:
    with running() as fake:
        port = int(fake.url.rsplit(":", 1)[1].strip("/"))
        env = prepared_env(workdir, [port], **pg.example_env(pg_db))
        log = ARTIFACTS / f"deliver-wake-{workdir.name}.log"
        ARTIFACTS.mkdir(exist_ok=True)
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "logux_deliver", "--interval", "30"],
                cwd=EXAMPLE,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            listening = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'"
            deadline = time.monotonic() + 20
            while pg.query(pg_db, listening, pg_db)[0][0] == 0:
                assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            time.sleep(1)  # past the worker's first pass: it is waiting now
            saved = time.monotonic()
            run_python(env, SAVE)
            while "woken" not in delivered(fake):
                assert time.monotonic() - saved < 10, log.read_text()[-3000:]  # the poll would take 30 s
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(15) == 0, log.read_text()[-3000:]
