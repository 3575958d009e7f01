"""The proxy stack's conflict, offline and turns-private flows (tests/e2e/test_syncmap.py) on the bridge
stack: real `@logux/client` 0.23 SyncMap clients, two logux-sync bridges (`@logux/server` 0.14; alice on
the first, bob on the second) and gunicorn (2 workers) behind them.

Each test runs one scenario of tests/bridge/js/flows.mjs, which prints what the clients saw as JSON; the
assertions, and the checks of the database, are here and match the proxy versions'.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.servers import (
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

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "flows.mjs"
MODULES = ROOT / "logux_sync" / "bridge" / "node_modules"

if not (MODULES / "@logux" / "server").is_dir():
    pytest.skip("run `npm ci --prefix logux_sync/bridge` first", allow_module_level=True)


@dataclass
class Stack:
    env: dict[str, str]
    ports: list[int]
    users: dict[str, dict[str, str]]

    def drive(self, scenario: str) -> dict[str, Any]:
        config = {
            "urls": [f"ws://127.0.0.1:{port}/" for port in self.ports],
            "users": self.users,
            "python": sys.executable,
            "exampleDir": str(EXAMPLE),
        }
        run = subprocess.run(
            [NODE, str(DRIVER), scenario, json.dumps(config)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, f"{scenario} failed:\n{run.stderr[-4000:]}"
        return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every Task row as {id: {column, owner, private, title}}, read straight from the database."""
        code = (
            "import json\nfrom board.models import Task\n"
            "print(json.dumps({t.pk: {'column': t.column, 'owner': t.owner_id, 'private': t.private, "
            "'title': t.title} for t in Task.objects.all()}))\n"
        )
        return json.loads(run_python(self.env, code).strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with scratch_dir("logux-bridge-flows-") as tmp, ExitStack() as servers:
        ports = [free_port(), free_port()]
        urls = ",".join(f"http://127.0.0.1:{port}/" for port in ports)
        env = example_env(tmp, LOGUX_URL=urls, DJANGO_SETTINGS_MODULE="tests.e2e.sqlite_immediate_settings")
        migrate(env)
        users = demo_users(env)
        backend = servers.enter_context(gunicorn(env, workers=2, name="gunicorn-bridge-flows"))
        for index, port in enumerate(ports):
            servers.enter_context(bridge_server(backend, port=port, name=f"bridge-flows-{index}"))
        yield Stack(env=env, ports=ports, users=users)


def test_concurrent_edits_of_one_card_converge(stack: Stack) -> None:
    seen = stack.drive("conflict")

    for number, round_ in enumerate(seen["rounds"]):
        assert round_["results"] == ["fulfilled", "fulfilled"], round_
        assert round_["alice"] == round_["bob"], round_
        assert round_["alice"]["title"] in (f"alice {number}", f"bob {number}"), round_
    last = seen["rounds"][-1]["alice"]
    row = stack.tasks()[seen["id"]]
    assert {"title": row["title"], "column": row["column"]} == last
    assert last["column"] == "doing"  # only bob's odd rounds touched it: nothing overwrote it


def test_a_client_that_was_offline_catches_up_on_resubscribe(stack: Stack) -> None:
    seen = stack.drive("offline")

    assert seen["whileAway"]["title"] == "Before bob left"
    assert (seen["bob"]["title"], seen["bob"]["column"]) == ("Changed while bob was away", "doing")
    assert any(action["channel"] == "tasks" and "since" in action for action in seen["resubscribes"]), seen


def test_a_card_turned_private_leaves_the_other_user_and_comes_back_whole(stack: Stack) -> None:
    seen = stack.drive("turnsPrivate")

    card, title = seen["id"], seen["title"]
    assert seen["rowSubscription"] in ("client", "server"), seen["rowSubscription"]
    # Made private: it leaves bob's list, and none of its later edits reach him.
    assert seen["hiddenMs"] is not None, "bob's list kept the card after it turned private"
    assert seen["bobWhilePrivate"] is None, seen["bobWhilePrivate"]
    leaked = [m for m in seen["bobWireAfter"] if title in json.dumps(m) or '"done"' in json.dumps(m)]
    assert not leaked, leaked
    # Shared again: it comes back with every field as it is now.
    assert seen["sharedMs"] is not None, "the card did not come back to bob's list"
    row = stack.tasks()[card]
    assert row == {"column": "done", "owner": int(stack.users["alice"]["id"]), "private": False, "title": title}
    assert seen["bob"] == seen["alice"] == row
