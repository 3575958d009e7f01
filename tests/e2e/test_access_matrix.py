"""Nothing leaked: who may reach the endpoint, and which rows each real client receives.

- The wrong-secret lock holds across gunicorn workers when the cache is Redis, and an expired
  make_token() token is denied by the real endpoint.
- An access matrix with real @logux/client 0.21.1 clients (tests/e2e/js/access.mjs): users x channels x
  rows; every message each client receives on the wire is recorded, and none may name a private row of
  another user, while every row a user may read reaches that user's lists.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import pg

from .matrix import build_matrix, check_matrix, seed
from .servers import (
    ARTIFACTS,
    ROOT,
    demo_users,
    drive,
    example_env,
    free_port,
    gunicorn,
    logux_server,
    migrate,
    plain_users,
    prepared_env,
    run_python,
    task_rows,
)

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "e2e" / "js" / "access.mjs"


def post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "Connection": "close"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def redis_env(tmp: Path, **extra: str) -> dict[str, str]:
    return example_env(tmp, EXAMPLE_CACHE="redis", EXAMPLE_CACHE_PREFIX=f"e2e-{secrets.token_hex(4)}", **extra)


def test_wrong_secret_lock_holds_on_every_worker_with_redis(workdir: Path) -> None:
    env = redis_env(workdir)
    migrate(env)
    name = f"gunicorn-lock-{secrets.token_hex(2)}"
    # The access log names the worker (pid) that answered each request.
    extra = ("--access-logformat", "pid=%(p)s status=%(s)s")
    with gunicorn(env, workers=4, name=name, extra=extra) as url:
        assert post(url, {"version": 4, "secret": "parole", "commands": []})[0] == 200
        wrong = [post(url, {"version": 4, "secret": f"wrong{i}", "commands": []}) for i in range(3)]
        assert wrong == [(403, "Wrong secret")] * 3
        log_path = ARTIFACTS / f"{name}.log"
        # Bursts of requests at once, each on a new connection, until a worker that counted no wrong
        # secret itself has answered (well within the 3 s window the lock lasts).
        right: list[tuple[int, str]] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with ThreadPoolExecutor(16) as pool:
                right += pool.map(lambda _: post(url, {"version": 4, "secret": "parole", "commands": []}), range(16))
            log = log_path.read_text()
            if set(re.findall(r"pid=<?(\d+)>? status=429", log)) - set(re.findall(r"pid=<?(\d+)>? status=403", log)):
                break
        assert set(right) == {(429, "Too many wrong secret attempts")}, right
        time.sleep(3.5)  # BRUTE_FORCE_WINDOW (3 s) after the last wrong secret: unlocked again
        assert post(url, {"version": 4, "secret": "parole", "commands": []})[0] == 200
    log = log_path.read_text()
    locked_pids = set(re.findall(r"pid=<?(\d+)>? status=429", log))
    wrong_pids = set(re.findall(r"pid=<?(\d+)>? status=403", log))
    print(f"403 from workers {sorted(wrong_pids)}; 429 from workers {sorted(locked_pids)}")
    # Shared, not per process: a worker that never saw a wrong secret itself answered 429.
    assert locked_pids - wrong_pids, log


def auth(url: str, user_id: str, token: str) -> list[dict[str, Any]]:
    command = {
        "command": "auth",
        "authId": "a1",
        "userId": user_id,
        "token": token,
        "subprotocol": "1.0.0",
        "cookie": {},
        "headers": {},
    }
    status, body = post(url, {"version": 4, "secret": "parole", "commands": [command]})
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def test_an_expired_token_is_denied_by_the_endpoint(workdir: Path) -> None:
    env = example_env(workdir, EXAMPLE_TOKEN_MAX_AGE="60")
    migrate(env)
    users = demo_users(env)
    # A token signed 61 s ago (TOKEN_MAX_AGE is 60 here), and one signed now.
    old = run_python(
        env,
        "import time\nfrom unittest import mock\nfrom django.contrib.auth.models import User\n"
        "from logux_sync import make_token\n"
        "with mock.patch('time.time', return_value=time.time() - 61):\n"
        "    print(make_token(User.objects.get(username='alice')))\n",
    ).strip()
    alice = users["alice"]
    with gunicorn(env, workers=2, name="gunicorn-token") as url:
        assert auth(url, alice["id"], alice["token"]) == [
            {"answer": "authenticated", "authId": "a1", "subprotocol": "1.0.0"}
        ]
        assert auth(url, alice["id"], old) == [{"answer": "denied", "authId": "a1"}]
        assert auth(url, users["bob"]["id"], alice["token"]) == [{"answer": "denied", "authId": "a1"}]


def test_access_matrix_with_real_clients(workdir: Path, pg_db: str) -> None:
    logux_port = free_port()
    # PostgreSQL: SQLite with two workers answers concurrent client edits with "database is locked".
    env = prepared_env(workdir, [logux_port], **pg.example_env(pg_db))
    users = demo_users(env)
    # carol: a plain user (no staff, no superuser, no permissions).
    users.update(plain_users(env, "carol"))
    matrix = build_matrix(users, workdir / "access.json")
    config = {"url": f"ws://127.0.0.1:{logux_port}/", **matrix.config}
    with gunicorn(env, workers=2, name="gunicorn-access") as backend:
        with logux_server(backend, port=logux_port, name="logux-access"):
            seed(env, matrix)
            drive(DRIVER, json.dumps(config), env=env, timeout=90, log=ARTIFACTS / "access-driver.log")
            seen = json.loads((workdir / "access.json").read_text())
            rows = task_rows(env)
    figures = check_matrix(matrix, seen, rows)
    print("access matrix:", json.dumps(figures, indent=1))
