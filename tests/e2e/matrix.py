"""The access matrix both stacks run (tests/e2e/test_access_matrix.py through @logux/server 0.13.1,
tests/bridge/test_bridge_access.py through the logux-sync bridge): users x filtered lists x public and
private rows of every owner, row probes, the clients' own edits and live ORM changes.

build_matrix() makes the rows and the driver's config (common.mjs accessMatrix() runs it), seed() puts
the rows in the database, and check_matrix() asserts on what every client received: none may name a
private row of another user, and every row a user may read reaches that user's lists.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .servers import EXAMPLE, run_python

USERS = ("alice", "bob", "carol")


@dataclass
class Matrix:
    ids: dict[str, int]
    tok: str
    # alice's public card that the live script turns private after the others saw it.
    turns: str
    seeds: list[dict[str, Any]]
    private_ids: dict[str, list[str]]
    others: dict[str, list[str]]
    filters: dict[str, dict[str, dict[str, Any]]]
    # The driver's config but for the server URL(s): the stacks name them differently.
    config: dict[str, Any]


def _sync_pairs(message: list[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not message or message[0] != "sync":
        return []
    return list(zip(message[2::2], message[3::2], strict=False))


def build_matrix(users: dict[str, dict[str, str]], out: Path) -> Matrix:
    """The matrix for `users` (USERS: {name: {id, token}}); the driver writes what it saw to `out`."""
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
        "out": str(out),
    }
    return Matrix(ids, tok, turns, seeds, private_ids, others, filters, config)


def seed(env: dict[str, str], matrix: Matrix) -> None:
    """Create the matrix's rows in the example's database."""
    run_python(
        env,
        "import json\nfrom board.models import Task\n"
        f"for seed in json.loads({json.dumps(json.dumps(matrix.seeds))}):\n"
        "    Task.objects.create(**seed)\n",
    )


def check_matrix(matrix: Matrix, seen: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Assert on what every client saw (`seen`, the driver's output) against the database's `rows`
    afterwards; figures per user, for the test to print."""
    tok, turns, others, config = matrix.tok, matrix.turns, matrix.others, matrix.config
    # Every private row that ever existed, by owner (deleted ones included), and every private title.
    ever_private = {
        owner: {*matrix.private_ids[owner], f"{owner}-clientnew-{tok}", f"{owner}-livepriv-{tok}"} for owner in USERS
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
                    and action.get("reason") == "notFound"
                    and action.get("action", {}).get("channel") in {f"tasks/{i}" for i in named}
                )
                (denied if is_probe_undo else leaks).append([action, meta])
        assert not leaks, (name, leaks)
        # Each probe of another's private row was answered as for a row that does not exist, and
        # nothing else about it came.
        assert mine["probes"] == {
            **{i: {"error": "LoguxUndoError", "reason": "notFound"} for i in config["probes"][name]},
            **{i: {"loaded": True} for i in config["rowSubs"][name]},
        }, (name, mine["probes"])
        assert len(denied) == len(config["probes"][name]), (name, denied)

        # They do receive what they may read: every list equals the readable rows it matches.
        readable = {i: r for i, r in rows.items() if not r["private"] or r["owner"] == matrix.ids[name]}
        stale = {}
        for label, wire_filter in matrix.filters[name].items():
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
    return figures
