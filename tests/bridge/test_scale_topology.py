"""Several machines, as processes on this one: 2 gunicorn instances (2 workers each), 3 bridges
(`manage.py logux_server`, @logux/server 0.14) whose Django URLS list all 3, one PostgreSQL, one
Redis, `DELIVERY = "worker"` with 2 `logux_deliver` processes, and 8 @logux/client 0.23 clients of 4
users spread over the bridges (tests/bridge/js/scale.mjs), on lists and rows, public and private.

Between rounds of changes a deliver worker is SIGKILLed (a round runs with the other alone) and
restarted, and a bridge is SIGKILLed (a round runs without it, its clients away) and restarted (its
clients reconnect and resubscribe). Every client receives every change it may read, in order per row
(0 lost), never one it may not read (0 leaked), and the wrong-secret lock is shared by the gunicorn
instances through Redis. In both FANOUT modes: "nodes" (Django names every node) and "bridge" (the
bridges fan the public rows' changes out to the nodes watching them; a restarted bridge learns its
watches again from the resubscribes)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.e2e.servers import (
    ARTIFACTS,
    EXAMPLE,
    ROOT,
    finished,
    free_port,
    gunicorn,
    kill,
    plain_users,
    prepared_env,
    run_python,
    spawn,
    spawn_driver,
    stop,
    task_rows,
    wait_for_file,
)

from .stack import require_bridge_modules, ws_urls

pytestmark = pytest.mark.e2e

require_bridge_modules()

DRIVER = ROOT / "tests" / "bridge" / "js" / "scale.mjs"
SETTINGS = "tests.bridge.scale_settings"
REDIS_URL = "redis://127.0.0.1:6379/0"
NAMES = ("alice", "bob", "carol", "dave")
# (owner, column, private) of the rows every client works on.
ROWS = [
    ("alice", "todo", False),
    ("bob", "todo", False),
    ("carol", "doing", False),
    ("dave", "doing", False),
    ("alice", "todo", True),
    ("bob", "doing", True),
    ("carol", "todo", True),
    ("dave", "doing", True),
]
DEAD_BRIDGE = 1
# Round 2 runs with DEAD_BRIDGE killed; before round 1 deliver worker 0 is killed, before round 2 it is back.
ROUNDS = [{"down": []}, {"down": []}, {"down": [DEAD_BRIDGE]}, {"down": []}]
WAIT = 30.0


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A cache key prefix of this run's own in Redis; its keys are deleted afterwards."""
    import redis

    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"this test needs Redis on 127.0.0.1:6379 ({exc}); start it with redis-server --daemonize yes")
    prefix = f"logux-scale-{secrets.token_hex(4)}"
    yield prefix
    for key in server.scan_iter(f"{prefix}:*"):
        server.delete(key)
    server.close()


class Topology:
    """The servers of the test, each restartable: bridge i talks to gunicorn i % 2."""

    def __init__(self, env: dict[str, str], db: str, backends: list[str], ports: list[int]) -> None:
        self.env, self.db, self.backends, self.ports = env, db, backends, ports
        self.bridges: dict[int, subprocess.Popen[bytes]] = {}
        self.workers: dict[int, subprocess.Popen[bytes]] = {}

    def start_bridge(self, index: int, restart: bool = False) -> None:
        """Start bridge `index` (its log from the start, or appended to on a restart)."""
        backend, port = self.backends[index % len(self.backends)], self.ports[index]
        args = [sys.executable, "manage.py", "logux_server", f"--backend={backend}", f"--port={port}"]
        self.bridges[index] = spawn(args, self.env, port, f"scale-bridge-{index}.log", EXAMPLE, append=restart)

    def start_worker(self, index: int, restart: bool = False) -> None:
        """Start deliver worker `index` (its log from the start, or appended to on a restart)."""
        ARTIFACTS.mkdir(exist_ok=True)
        with (ARTIFACTS / f"scale-deliver-{index}.log").open("ab" if restart else "wb") as out:
            self.workers[index] = subprocess.Popen(
                [sys.executable, "manage.py", "logux_deliver"],
                cwd=EXAMPLE,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Started once it LISTENs for the outbox's NOTIFY (each worker has one such connection).
        self._wait(f"{len(self.workers)} deliver workers listening", lambda: self._listening() == len(self.workers))

    def kill_worker(self, index: int) -> None:
        kill(self.workers.pop(index))
        self._wait("the killed worker's connection to close", lambda: self._listening() == len(self.workers))

    def kill_bridge(self, index: int) -> None:
        kill(self.bridges.pop(index))

    def outbox(self, where: str = "TRUE", *params: Any) -> int:
        return int(pg.query(self.db, f"SELECT count(*) FROM logux_sync_loguxoutbox WHERE {where}", *params)[0][0])

    def drain(self) -> None:
        """Wait until every outbox row was delivered."""
        self._wait("the outbox to empty", lambda: self.outbox() == 0)

    def stop_all(self) -> None:
        for process in [*self.bridges.values(), *self.workers.values()]:
            stop(process)

    def _listening(self) -> int:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'"
        return int(pg.query(self.db, sql, self.db)[0][0])

    def _wait(self, what: str, check: Any) -> None:
        deadline = time.monotonic() + WAIT
        while not check():
            for index, worker in self.workers.items():
                assert worker.poll() is None, f"deliver worker {index} exited with {worker.returncode}"
            assert time.monotonic() < deadline, f"{what}: not within {WAIT} s"
            time.sleep(0.05)


def create_rows(env: dict[str, str], users: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The ROWS in the database; as the driver's config lists them."""
    rows = [
        {"id": f"row-{k}", "owner": owner, "column": column, "private": private}
        for k, (owner, column, private) in enumerate(ROWS)
    ]
    code = "from board.models import Task\n" + "".join(
        f"Task.objects.create(id={row['id']!r}, title={initial_title(k, row)!r}, column={row['column']!r}, "
        f"private={row['private']!r}, owner_id={int(users[row['owner']]['id'])})\n"
        for k, row in enumerate(rows)
    )
    run_python(env, code)
    return rows


def initial_title(k: int, row: dict[str, Any]) -> str:
    return f"{'secret' if row['private'] else 'public'}-{k}-init"


def post(url: str, secret: str) -> int:
    body = json.dumps({"version": 4, "secret": secret, "commands": []}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("fanout", ["nodes", "bridge"])
def test_clients_on_every_bridge_get_every_change_they_may_read(
    workdir: Path, pg_db: str, redis_prefix: str, fanout: str
) -> None:
    ports = [free_port() for _ in range(3)]
    env = prepared_env(
        workdir,
        ports,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        EXAMPLE_CACHE="redis",
        EXAMPLE_REDIS_URL=REDIS_URL,
        EXAMPLE_CACHE_PREFIX=redis_prefix,
        EXAMPLE_FANOUT=fanout,
        **pg.example_env(pg_db),
    )
    users = plain_users(env, *NAMES)
    rows = create_rows(env, users)
    handshake = workdir / "handshake"
    handshake.mkdir()
    out = workdir / "seen.json"
    log = workdir / "scale-driver.log"
    config = {
        "urls": ws_urls(ports),
        "users": users,
        "rows": rows,
        "rounds": ROUNDS,
        "python": sys.executable,
        "exampleDir": str(EXAMPLE),
        "dir": str(handshake),
        "out": str(out),
    }

    with ExitStack() as servers:
        backends = [servers.enter_context(gunicorn(env, workers=2, name=f"scale-gunicorn-{i}")) for i in range(2)]
        topology = Topology(env, pg_db, backends, ports)
        servers.callback(topology.stop_all)
        for index in range(len(ports)):
            topology.start_bridge(index)
        for index in range(2):
            topology.start_worker(index)
        driver = spawn_driver(DRIVER, config, env, log)
        servers.callback(stop, driver)

        def between(done: int) -> None:
            wait_for_file(handshake / f"round-{done}.done", driver, log, 60, f"round {done}")
            topology.drain()

        def go(name: str) -> None:
            (handshake / f"go-{name}").touch()

        between(0)
        topology.kill_worker(0)  # round 1: worker 1 alone
        go("1")
        between(1)
        topology.start_worker(0, restart=True)
        topology.kill_bridge(DEAD_BRIDGE)  # round 2: without it
        go("2")
        wait_for_file(handshake / "round-2.done", driver, log, 60, "round 2")
        # The dead bridge made sends fail: those rows wait in the outbox, retried.
        failed = topology.outbox("last_error LIKE %s", f"%:{ports[DEAD_BRIDGE]}/%")
        topology.start_bridge(DEAD_BRIDGE, restart=True)
        topology.drain()
        go("3")
        between(3)
        go("end")
        finished(driver, log, timeout=60)
        assert topology.outbox() == 0

        # The wrong-secret lock: 3 wrong secrets at one gunicorn instance lock the other one out too.
        assert [post(backends[0], "wrong") for _ in range(3)] == [403, 403, 403]
        assert post(backends[1], env["LOGUX_CONTROL_SECRET"]) == 429

    seen = json.loads(out.read_text())
    database = task_rows(env)
    assert failed > 0
    check_nothing_lost(seen, rows, database)
    check_nothing_leaked(seen, rows)


CHANGES = ("tasks/changed", "tasks/created")


def rounds_on_wire(wire: list[list[Any]], row_id: str) -> list[int]:
    """The rounds whose title of `row_id` the client received, in the order received (-1: the initial
    title)."""
    found = []
    for message in wire:
        if message[0] != "sync":
            continue
        for action in message[2::2]:
            fields = action.get("fields", {})
            if action.get("type") in CHANGES and action.get("id") == row_id and "title" in fields:
                match = re.search(r"-(init|r(\d+))$", fields["title"])
                assert match, fields
                found.append(-1 if match.group(1) == "init" else int(match.group(2)))
    return found


def check_nothing_lost(seen: dict[str, Any], rows: list[dict[str, Any]], database: dict[str, Any]) -> None:
    plan = seen["plan"]
    assert len(seen["clients"]) == 8
    assert {client["bridge"] for client in seen["clients"]} == {0, 1, 2}
    for client in seen["clients"]:
        assert client["covered"], client["index"]
        for row_id in client["covered"]:
            received = rounds_on_wire(client["wire"], row_id)
            expected = [r["round"] for r in plan if r["changes"][row_id]["author"] != client["index"]]
            where = f"client {client['index']} ({client['name']}, bridge {client['bridge']}), {row_id}: {received}"
            assert set(expected) <= set(received), where  # every change it may read
            assert received == sorted(received), where  # in order: never an older value after a newer
            assert client["final"][row_id] == database[row_id]["title"] == plan[-1]["changes"][row_id]["title"], where
    # The clients of the killed bridge lost their connection and came back.
    for client in seen["clients"]:
        if client["bridge"] == DEAD_BRIDGE:
            assert "disconnected" in client["states"], client["states"]
            assert client["states"][-1] == "synchronized", client["states"]


def check_nothing_leaked(seen: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    for client in seen["clients"]:
        foreign = [(k, row) for k, row in enumerate(rows) if row["private"] and row["owner"] != client["name"]]
        assert foreign
        leaks = []
        for message in client["wire"]:
            text = json.dumps(message)
            named = [row["id"] for k, row in foreign if f'"{row["id"]}"' in text or f"secret-{k}-" in text]
            if not named:
                continue
            # Only the answer to the client's probe of a private row: as for a row that does not exist.
            probe_answer = message[0] == "sync" and all(
                action["type"] == "logux/undo" and action["reason"] == "notFound" and "secret-" not in text
                for action in message[2::2]
            )
            if not probe_answer:
                leaks.append(message)
        assert leaks == [], f"client {client['index']} ({client['name']}) received {leaks}"
        if client["kind"] == "todo":
            assert client["probe"] == {"error": "LoguxUndoError", "reason": "notFound"}, client
