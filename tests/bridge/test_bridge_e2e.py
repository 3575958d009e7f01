"""Real `@logux/client` 0.23 SyncMap clients through the logux-sync bridge (`@logux/server` 0.14) and
gunicorn (2 workers), with two bridges behind one Django (LOGUX_SYNC['URLS'] lists both).

Each test runs one scenario of tests/bridge/js/syncmap.mjs, which prints what the clients saw as JSON.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from logux_sync.sync.subscriptions import subscription_key
from tests.e2e.servers import ROOT, bridge_server

from .stack import FANOUT_MODES, Stack, bridge_stack, require_bridge_modules

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "syncmap.mjs"

require_bridge_modules()


@pytest.fixture(scope="module", params=FANOUT_MODES)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fanout = request.param
    with bridge_stack(tmp_path_factory.mktemp(f"bridge-{fanout}"), DRIVER, f"bridge-{fanout}", fanout) as stack_:
        yield stack_


def test_create_change_delete_reach_the_other_users_list(stack: Stack) -> None:
    seen = stack.drive("crud")

    card, kept = seen["id"], seen["kept"]
    assert card not in seen["alice"] and card not in seen["bob"]
    assert seen["alice"][kept] == seen["bob"][kept] == "Kept card"
    rows = stack.tasks()
    assert card not in rows
    assert (rows[kept]["title"], rows[kept]["column"]) == ("Kept card", "doing")


def test_a_private_card_never_reaches_another_user(stack: Stack) -> None:
    seen = stack.drive("privacy")

    secret, title = seen["secret"], seen["title"]
    assert seen["alice"][secret] == title
    assert secret not in seen["bob"]
    assert secret not in json.dumps(seen["wireBefore"])
    naming = [m for m in seen["bobWire"] if secret in json.dumps(m)]
    assert [(m[0], m[2]["type"], m[2]["reason"]) for m in naming] == [
        ("sync", "logux/undo", "notFound"),
        ("sync", "logux/undo", "notFound"),
    ], naming
    assert title not in json.dumps(seen["bobWire"])
    # Answered exactly as for a card that does not exist.
    assert seen["directLoad"] == {"error": "LoguxUndoError", "reason": "notFound"}
    assert seen["change"] == {"error": "LoguxUndoError", "reason": "notFound"}


def test_an_orm_save_reaches_clients_on_both_bridges(stack: Stack) -> None:
    seen = stack.drive("orm")

    assert seen["shell"] == "shell done"
    assert seen["alice"]["title"] == seen["bob"]["title"] == "Saved in the shell"


def test_unsubscribes_make_django_forget_the_list_and_the_row(stack: Stack) -> None:
    seen = stack.drive("unsubscribe")

    keys = [subscription_key("tasks", {"column": "todo"}), subscription_key(f"tasks/{seen['done']}", {})]
    assert seen["before"] == sorted(keys)
    assert seen["after"] == []


def test_a_disconnect_makes_django_forget_every_subscription_of_the_node(stack: Stack) -> None:
    seen = stack.drive("disconnect")

    assert len(seen["before"]) == 2
    assert seen["after"] == []


def test_two_bridges_every_change_reaches_every_client(stack: Stack) -> None:
    seen = stack.drive("twoBridges")

    assert seen["seen"] == ["create", "change", "orm update", "delete"]
    assert len(set(seen["nodes"])) == 4


# ---- Django's add() port: the rules and answers of @logux/server 0.13.1's control server ------------


def _post(port: int, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _body(secret: str = "parole", version: int = 4, commands: list[Any] | None = None) -> bytes:
    commands = [{"command": "action", "action": {"type": "x"}, "meta": {}}] if commands is None else commands
    return json.dumps({"version": version, "secret": secret, "commands": commands}).encode()


def test_add_port_answers_as_the_0_13_control_server() -> None:
    with bridge_server("http://127.0.0.1:9/logux/", name="bridge-control") as port:
        assert _post(port, _body()) == (200, "")
        assert _post(port, b"{") == (400, "Wrong format")
        assert _post(port, b'{"version": 4}') == (400, "Wrong body")
        assert _post(port, _body(version=3)) == (400, "Back-end protocol version is not supported")
        assert _post(port, _body(commands=[{"command": "auth"}])) == (400, "Wrong command")
        assert [_post(port, _body(secret="wrong")) for _ in range(3)] == [(403, "Wrong secret")] * 3
        assert _post(port, _body()) == (429, "Too many wrong secret attempts")


def test_add_port_refuses_ips_outside_the_control_mask() -> None:
    with bridge_server("http://127.0.0.1:9/logux/", name="bridge-mask", extra=("--control-mask=10.0.0.0/8",)) as port:
        assert _post(port, _body()) == (403, "IP address is not in LOGUX_CONTROL_MASK/controlMask")
