"""Real `@logux/client` 0.21.1 SyncMap clients against `@logux/server` 0.13.1 and gunicorn (2 workers).

Each test runs one scenario of tests/e2e/js/syncmap.mjs in Node, which prints what the clients saw as
JSON; the assertions, and the checks of the database, are here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .scenarios import check_conflict, check_hostile, check_offline
from .servers import (
    EXAMPLE,
    ROOT,
    SQLITE_IMMEDIATE,
    demo_users,
    drive,
    free_port,
    gunicorn,
    last_json,
    logux_server,
    prepared_env,
    task_rows,
)

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "e2e" / "js" / "syncmap.mjs"


@dataclass
class Stack:
    env: dict[str, str]
    ws_url: str
    users: dict[str, dict[str, str]]

    def tasks(self) -> dict[str, dict[str, Any]]:
        return task_rows(self.env)

    def drive(self, scenario: str) -> dict[str, Any]:
        config = {"url": self.ws_url, "users": self.users, "python": sys.executable, "exampleDir": str(EXAMPLE)}
        return last_json(drive(DRIVER, scenario, json.dumps(config), env=self.env, timeout=45))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("syncmap")
    logux_port = free_port()
    env = prepared_env(tmp, [logux_port], DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE)
    users = demo_users(env)
    with gunicorn(env, workers=2, name="gunicorn-syncmap") as backend:
        with logux_server(backend, port=logux_port, name="logux-syncmap") as port:
            yield Stack(env=env, ws_url=f"ws://127.0.0.1:{port}/", users=users)


def test_create_change_delete_reach_the_other_users_list(stack: Stack) -> None:
    seen = stack.drive("crud")

    card, kept = seen["id"], seen["kept"]
    assert card not in seen["alice"] and card not in seen["bob"]
    assert seen["alice"][kept] == seen["bob"][kept] == "Kept card"
    rows = stack.tasks()
    assert card not in rows
    assert rows[kept] == {
        "title": "Kept card",
        "column": "doing",
        "private": False,
        "owner": int(stack.users["bob"]["id"]),
    }
    assert max(seen["times"].values()) < 3000, seen["times"]


def test_a_private_card_never_reaches_another_user(stack: Stack) -> None:
    seen = stack.drive("privacy")

    secret, title = seen["secret"], seen["title"]
    assert seen["alice"][secret] == f"{title} v2"
    assert secret not in seen["bob"]
    # Nothing the server sent bob's client before he asked for the card by id names it.
    before = seen["bobWireBeforeProbes"]
    assert any(barrier in json.dumps(m) for m in before for barrier in seen["bob"]), "bob got nothing at all"
    for leak in (secret, title):
        assert leak not in json.dumps(before), [m for m in before if leak in json.dumps(m)]
    # After that, only the undos of his own two attempts name it; no title, no fields, ever.
    naming = [m for m in seen["bobWire"] if secret in json.dumps(m)]
    assert [(m[0], m[2]["type"], m[2]["reason"]) for m in naming] == [
        ("sync", "logux/undo", "notFound"),
        ("sync", "logux/undo", "notFound"),
    ], naming
    assert title not in json.dumps(seen["bobWire"])
    assert all(title not in json.dumps(entry) for entry in seen["bobReceived"])
    # Answered exactly as for a card that does not exist.
    assert seen["directLoad"] == {"error": "LoguxUndoError", "reason": "notFound"}
    assert seen["change"] == {"error": "LoguxUndoError", "reason": "notFound"}
    row = stack.tasks()[secret]
    assert (row["title"], row["column"], row["private"]) == (f"{title} v2", "doing", True)


def test_edits_after_a_card_turns_private_do_not_reach_the_other_user(stack: Stack) -> None:
    seen = stack.drive("turnsPrivate")

    card, title = seen["id"], seen["title"]
    assert (seen["alice"]["title"], seen["alice"]["private"]) == (title, True)
    leaked = [m for m in seen["bobWireAfter"] if title in json.dumps(m) or '"done"' in json.dumps(m)]
    assert not leaked, leaked
    assert stack.tasks()[card]["title"] == title


def test_an_orm_save_and_update_reach_both_clients_live(stack: Stack) -> None:
    seen = stack.drive("orm")

    assert seen["shell"] == "shell done"
    for user in ("alice", "bob"):
        assert (seen[user]["title"], seen[user]["column"]) == ("Saved in the shell", "done")
    row = stack.tasks()[seen["id"]]
    assert (row["title"], row["column"]) == ("Saved in the shell", "done")
    # logux_sync.add_on_commit() in the save's transaction: delivered with it, to the owner's clients only.
    assert seen["notices"] == {"alice": [{"type": "board/notice", "text": "saved in the shell"}], "bob": []}


def test_concurrent_edits_of_one_card_converge(stack: Stack) -> None:
    check_conflict(stack.drive("conflict"), stack.tasks)


def test_a_client_that_was_offline_catches_up_on_resubscribe(stack: Stack) -> None:
    check_offline(stack.drive("offline"))


def test_a_hostile_client_takes_nothing_and_pins_nothing(stack: Stack) -> None:
    check_hostile(stack.drive("hostile"), stack.tasks, stack.users)
