"""The access matrix of tests/e2e/test_access_matrix.py on the bridge stack: real `@logux/client` 0.23
clients (alice, bob, carol, spread over two logux-sync bridges on `@logux/server` 0.14) x filtered lists
x public and private rows of every owner, row probes, the clients' own edits and live ORM changes.
Every message each client receives on the wire is recorded (tests/bridge/js/flows.mjs `access`); none
may name a private row of another user, and every row a user may read reaches that user's lists.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.e2e.servers import (
    ARTIFACTS,
    EXAMPLE,
    NODE,
    ROOT,
    bridge_server,
    demo_users,
    example_env,
    free_port,
    gunicorn,
    migrate,
    run_python,
    scratch_dir,
)
from tests.e2e.test_access_matrix import USERS, _sync_pairs

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "flows.mjs"
MODULES = ROOT / "logux_sync" / "bridge" / "node_modules"

if not (MODULES / "@logux" / "server").is_dir():
    pytest.skip("run `npm ci --prefix logux_sync/bridge` first", allow_module_level=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with scratch_dir("logux-bridge-access-") as path:
        yield path


@pytest.fixture
def pg_db() -> Iterator[str]:
    if not pg.available():
        pytest.skip(f"no PostgreSQL at {pg.HOST}:{pg.PORT}")
    with pg.temp_database() as name:
        yield name


def test_access_matrix_with_real_clients_through_the_bridge(workdir: Path, pg_db: str) -> None:
    ports = [free_port(), free_port()]
    urls = ",".join(f"http://127.0.0.1:{port}/" for port in ports)
    # PostgreSQL, as the proxy version: many concurrent client edits through two workers.
    env = example_env(workdir, LOGUX_URL=urls, **pg.example_env(pg_db))
    migrate(env)
    users = demo_users(env)
    # carol: a plain user (no staff, no superuser, no permissions).
    carol = run_python(
        env,
        "import json\nfrom django.contrib.auth.models import User\nfrom logux_sync import make_token\n"
        "u = User.objects.create_user('carol', password='carol')\n"
        "print(json.dumps({'id': str(u.pk), 'token': make_token(u)}))\n",
    )
    users["carol"] = json.loads(carol.strip().splitlines()[-1])
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
        "urls": [f"ws://127.0.0.1:{port}/" for port in ports],
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
    with ExitStack() as servers:
        backend = servers.enter_context(gunicorn(env, workers=2, name="gunicorn-bridge-access"))
        for index, port in enumerate(ports):
            servers.enter_context(bridge_server(backend, port=port, name=f"bridge-access-{index}"))
        run_python(
            env,
            "import json\nfrom board.models import Task\n"
            f"for seed in json.loads({json.dumps(json.dumps(seeds))}):\n"
            "    Task.objects.create(**seed)\n",
        )
        run = subprocess.run(
            [NODE, str(DRIVER), "access", json.dumps(config)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        (ARTIFACTS / "bridge-access-driver.log").write_text(run.stderr)
        assert run.returncode == 0, run.stderr[-4000:]
        seen = json.loads((workdir / "access.json").read_text())
        rows = json.loads(
            run_python(
                env,
                "import json\nfrom board.models import Task\n"
                "print(json.dumps({t.pk: {'column': t.column, 'owner': t.owner_id, 'private': t.private, "
                "'title': t.title} for t in Task.objects.all()}))\n",
            )
            .strip()
            .splitlines()[-1]
        )

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
    print("access matrix (bridge):", json.dumps(figures, indent=1))
