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
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import pg

from .servers import (
    ARTIFACTS,
    EXAMPLE,
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


USERS = ("alice", "bob", "carol")
FIELDS = ("title", "column", "private", "owner")


def _sync_pairs(message: list[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not message or message[0] != "sync":
        return []
    return list(zip(message[2::2], message[3::2], strict=False))


def test_access_matrix_with_real_clients(workdir: Path, pg_db: str) -> None:
    logux_port = free_port()
    # PostgreSQL: SQLite with two workers answers concurrent client edits with "database is locked".
    env = prepared_env(workdir, [logux_port], **pg.example_env(pg_db))
    users = demo_users(env)
    # carol: a plain user (no staff, no superuser, no permissions).
    users.update(plain_users(env, "carol"))
    ids = {name: int(users[name]["id"]) for name in USERS}
    tok = secrets.token_hex(3)

    def title(row_id: str, private: bool) -> str:
        return f"SECRET {row_id}" if private else f"public {row_id}"

    seeds = []
    for owner in USERS:
        for private in (False, True):
            for column in ("todo", "doing"):
                row_id = f"{owner}-{'priv' if private else 'pub'}-{column}-{tok}"
                seeds.append({"id": row_id, "title": title(row_id, private), "column": column, "private": private})
                seeds[-1]["owner_id"] = ids[owner]
    turns = f"alice-turns-{tok}"
    seeds.append(
        {"id": turns, "title": f"public {turns}", "column": "todo", "private": False, "owner_id": ids["alice"]}
    )
    barrier = f"barrier-{tok}"
    private_ids = {owner: [s["id"] for s in seeds if s["private"] and s["owner_id"] == ids[owner]] for owner in USERS}
    others = {name: [o for o in USERS if o != name] for name in USERS}

    own_edits = {
        name: {
            "change": {
                "id": f"{name}-priv-todo-{tok}",
                "fields": {"title": f"SECRET {name}-priv-todo-{tok} by client"},
            },
            "create": {
                "id": f"{name}-clientnew-{tok}",
                "title": f"SECRET {name}-clientnew-{tok}",
                "column": "doing",
                "private": True,
                "owner": ids[name],
            },
        }
        for name in USERS
    }
    live_script = f"""
import django
django.setup()
from board.models import Task
from django.db import transaction
tok = {tok!r}
ids = {ids!r}
for task in Task.objects.filter(id__endswith=tok).exclude(id__contains='turns').exclude(id__contains='clientnew'):
    task.title = task.title + ' v2'
    task.column = 'doing' if task.column == 'todo' else 'todo'
    task.save()
with transaction.atomic():
    for name, pk in ids.items():
        for private in (False, True):
            row_id = f"{{name}}-live{{'priv' if private else 'pub'}}-{{tok}}"
            title = f"SECRET {{row_id}}" if private else f"public {{row_id}}"
            Task.objects.create(id=row_id, title=title, column='doing', private=private, owner_id=pk)
for name in ids:
    Task.objects.get(id=f"{{name}}-priv-doing-{{tok}}").delete()
Task.objects.filter(private=True, id__contains='-priv-todo-').update(column='done')
task = Task.objects.get(id={turns!r})
task.private = True
task.save()
task.title = 'SECRET ' + task.id + ' turned'
task.save()
Task.objects.create(id={barrier!r}, title='barrier', column='todo', private=False, owner_id=ids['alice'])
print('live done')
"""
    filters = {
        name: {
            "all": {},
            **{f"owner_{o}": {"owner": ids[o]} for o in USERS},
            "doing": {"column": "doing"},
            "private": {"private": True},
        }
        for name in USERS
    }
    config = {
        "url": f"ws://127.0.0.1:{logux_port}/",
        "users": {name: users[name] for name in USERS},
        "python": sys.executable,
        "exampleDir": str(EXAMPLE),
        "filters": filters,
        "probes": {name: [i for o in others[name] for i in private_ids[o]] for name in USERS},
        "rowSubs": {
            name: [turns, *[f"{o}-pub-todo-{tok}" for o in others[name]]]
            if name != "alice"
            else [f"bob-pub-todo-{tok}"]
            for name in USERS
        },
        "ownEdits": own_edits,
        "liveScript": live_script,
        "barrier": barrier,
        "out": str(workdir / "access.json"),
    }
    with gunicorn(env, workers=2, name="gunicorn-access") as backend:
        with logux_server(backend, port=logux_port, name="logux-access"):
            run_python(
                env,
                "import json\nfrom board.models import Task\n"
                f"for seed in json.loads({json.dumps(json.dumps(seeds))}):\n"
                "    Task.objects.create(**seed)\n",
            )
            drive(DRIVER, json.dumps(config), env=env, timeout=90, log=ARTIFACTS / "access-driver.log")
            seen = json.loads((workdir / "access.json").read_text())
            rows = task_rows(env)

    # Every private row that ever existed, by owner (deleted ones included), and every private title.
    ever_private = {
        owner: {*private_ids[owner], f"{owner}-clientnew-{tok}", f"{owner}-livepriv-{tok}"} for owner in USERS
    }
    figures: dict[str, Any] = {}
    for name in USERS:
        mine = seen[name]
        forbidden_ids = {i for o in others[name] for i in ever_private[o]}
        # Titles of others' private rows all start "SECRET <owner>-"; the turned card's too.
        forbidden_title = re.compile("SECRET (" + "|".join(others[name]) + ")-")
        leaks, denied = [], []
        for message in mine["wire"]:
            text = json.dumps(message)
            assert not forbidden_title.search(text), (name, message)
            pairs = _sync_pairs(message)
            if not pairs:
                if any(i in text for i in forbidden_ids):
                    leaks.append(message)
                continue
            for action, meta in pairs:
                pair_text = json.dumps([action, meta])
                named = [i for i in forbidden_ids if i in pair_text]
                if not named:
                    continue
                is_probe_undo = (
                    action.get("type") == "logux/undo"
                    and action.get("reason") == "denied"
                    and action.get("action", {}).get("channel") in {f"tasks/{i}" for i in named}
                )
                (denied if is_probe_undo else leaks).append([action, meta])
        assert not leaks, (name, leaks)
        # Each probe of another's private row was denied, and nothing else about it came.
        assert mine["probes"] == {
            **{i: {"error": "LoguxUndoError", "reason": "denied"} for i in config["probes"][name]},
            **{i: {"loaded": True} for i in config["rowSubs"][name]},
        }, (name, mine["probes"])
        assert len(denied) == len(config["probes"][name]), (name, denied)

        # They do receive what they may read: every list equals the readable rows it matches.
        readable = {i: r for i, r in rows.items() if not r["private"] or r["owner"] == ids[name]}
        stale = {}
        for label, wire_filter in filters[name].items():
            expected = {i: r for i, r in readable.items() if all(r[k] == v for k, v in wire_filter.items())}
            got = dict(mine["lists"][label])
            if name != "alice" and turns in got:  # the card alice made private after they saw it
                stale[label] = got.pop(turns)
            assert got == expected, (
                name,
                label,
                {"missing": set(expected) - set(got), "extra": set(got) - set(expected)},
            )
        for row_id, value in mine["rowStores"].items():
            if row_id == turns and name != "alice":
                stale[f"tasks/{row_id}"] = value
                continue
            assert value == rows[row_id], (name, row_id)
        figures[name] = {
            "wire messages": len(mine["wire"]),
            "rows in 'all'": len(mine["lists"]["all"]),
            "denied probes": len(denied),
            "leaks": len(leaks),
            "stale (turned private, kept as last seen)": sorted(stale),
        }
    for name, stale_lists in ((n, figures[n]["stale (turned private, kept as last seen)"]) for n in ("bob", "carol")):
        for label in stale_lists:
            value = seen[name]["lists"].get(label, {}).get(turns) or seen[name]["rowStores"].get(turns)
            assert value is not None and "SECRET" not in value["title"] and value["private"] is False, (name, value)
    print("access matrix:", json.dumps(figures, indent=1))
