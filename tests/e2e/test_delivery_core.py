"""The delivery core holds no transaction or lock across the network, and several senders share the outbox.

(a) The Logux URL points at a listener that accepts and never answers. A process saves a row (the
example's settings: DELIVERY "thread"); its save returns at once, and while its sender waits for the
dead server, another process writes to the same SQLite database without waiting. (b) Two
`logux_deliver --once` workers drain one PostgreSQL outbox at the same time through a slow Logux
endpoint: every action is sent exactly once.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from tests import pg
from tests.test_client import running

from .servers import EXAMPLE, prepared_env, run_python
from .test_deliver_faults import delivered, strand_tasks

pytestmark = pytest.mark.e2e


@contextmanager
def blackhole() -> Iterator[int]:
    """A port that accepts connections and never answers; its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
        thread.join(5)


SAVER = """
import sys, time
from django.contrib.auth.models import User
from board.models import Task
owner = User.objects.create_user("saver")
start = time.perf_counter()
Task.objects.create(id="held", title="sent into the void", owner=owner)
print(f"saved {1000 * (time.perf_counter() - start):.1f}", flush=True)
"""

WRITER = """
import time
from django.contrib.auth.models import User
start = time.perf_counter()
User.objects.create_user("unrelated")
print(f"wrote {1000 * (time.perf_counter() - start):.1f}")
"""


def test_a_dead_logux_server_delays_neither_the_save_nor_another_writer(workdir: Path) -> None:
    with blackhole() as port:
        env = prepared_env(workdir, [port], DJANGO_SETTINGS_MODULE="tests.e2e.deliver_settings")
        env["PYTHONUNBUFFERED"] = "1"
        saver = subprocess.Popen(
            [sys.executable, "-c", "import django\ndjango.setup()\n" + SAVER],
            cwd=EXAMPLE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert saver.stdout is not None
            line = saver.stdout.readline()
            assert line.startswith("saved "), (line, saver.stderr.read() if saver.poll() is not None else "")
            saved_ms = float(line.split()[1])
            assert saved_ms < 1000, f"the save waited {saved_ms} ms for the Logux server"
            time.sleep(0.5)  # the sender is now waiting for the blackhole's answer (READ_TIMEOUT: 5 s)
            assert saver.poll() is None, "the saver's sender should still be waiting for the dead server"
            # SQLite's busy timeout is 1 s here: a writer that had to wait for a lock held across the
            # send would fail with "database is locked".
            wrote = run_python(env, WRITER, timeout=30)
        finally:
            saver.wait(30)
    written_ms = float(re.search(r"wrote ([\d.]+)", wrote).group(1))  # type: ignore[union-attr]
    assert saved_ms < 1000 and written_ms < 1000, (saved_ms, written_ms)
    # The change was not lost: it waits in the outbox for logux_deliver.
    waiting = run_python(env, "from logux_sync.sync.models import LoguxOutbox\nprint(LoguxOutbox.objects.count())")
    assert waiting.strip() == "1"


ROWS = 120


def test_two_workers_drain_one_outbox_sending_each_action_once(workdir: Path, pg_db: str) -> None:
    with running() as fake:
        port = int(fake.url.rsplit(":", 1)[1].strip("/"))
        env = prepared_env(workdir, [port], **pg.example_env(pg_db))
        ids = strand_tasks(env, fake, "pair", count=ROWS)
        fake.requests.clear()
        fake.delay = 0.05  # a slow Logux server: the workers' sends overlap
        command = [sys.executable, "manage.py", "logux_deliver", "--once", "--ignore-backoff", "--batch-size", "10"]
        workers = [
            subprocess.Popen(command, cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
    sent = Counter(
        command["action"]["id"]
        for request in fake.requests
        if request["status"] == 200
        for command in json.loads(request["body"])["commands"]
        if command["action"]["type"] == "tasks/created"
    )
    assert set(sent) == set(ids) == delivered(fake) and max(sent.values()) == 1, sent.most_common(3)
    counts = [int(re.search(r"Delivered (\d+)", out).group(1)) for out in outputs]  # type: ignore[union-attr]
    assert all(counts) and sum(counts) == ROWS, outputs  # both took part
    with closing(pg.connect(pg_db)) as conn:
        assert conn.execute("SELECT count(*) FROM logux_sync_loguxoutbox").fetchone()[0] == 0


REOPENED = """
from django.contrib.auth.models import User
from django.db import connection, transaction
from board.models import Task
from logux_sync.sync.tables import LoguxOutbox
owner = User.objects.create_user("reopen")
try:
    with transaction.atomic():
        Task.objects.create(id="rolled-back", title="A", owner=owner)
        raise RuntimeError
except RuntimeError:
    pass
connection.close()  # as at the end of a request
Task.objects.create(id="next", title="B", owner=owner)  # the next request of this thread
print(sorted(LoguxOutbox.objects.values_list("batch", flat=True)).__len__())
"""


def test_a_transaction_that_rolled_back_leaves_nothing_behind_for_the_next_connection(workdir: Path) -> None:
    env = prepared_env(workdir, [9], DJANGO_SETTINGS_MODULE="tests.e2e.deliver_settings")
    assert run_python(env, REOPENED, timeout=60).strip().splitlines()[-1] == "1"
