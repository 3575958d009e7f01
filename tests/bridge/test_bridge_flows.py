"""The proxy stack's conflict, offline and turns-private flows (tests/e2e/test_syncmap.py) on the bridge
stack: real `@logux/client` 0.23 SyncMap clients, two logux-sync bridges (`@logux/server` 0.14; alice on
the first, bob on the second) and gunicorn (2 workers) behind them.

Each test runs one scenario of tests/bridge/js/flows.mjs, which prints what the clients saw as JSON; the
assertions, and the checks of the database, are here and match the proxy versions'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.scenarios import check_conflict, check_hostile, check_offline
from tests.e2e.servers import ROOT, scratch_dir

from .stack import FANOUT_MODES, Stack, bridge_stack, require_bridge_modules

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "flows.mjs"

require_bridge_modules()


@pytest.fixture(scope="module", params=FANOUT_MODES)
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    fanout = request.param
    with (
        scratch_dir(f"logux-bridge-flows-{fanout}-") as tmp,
        bridge_stack(tmp, DRIVER, f"bridge-flows-{fanout}", fanout) as stack_,
    ):
        yield stack_


def test_concurrent_edits_of_one_card_converge(stack: Stack) -> None:
    check_conflict(stack.drive("conflict"), stack.tasks)


def test_a_client_that_was_offline_catches_up_on_resubscribe(stack: Stack) -> None:
    check_offline(stack.drive("offline"))


def test_a_hostile_client_takes_nothing_and_pins_nothing(stack: Stack) -> None:
    check_hostile(stack.drive("hostile"), stack.tasks, stack.users)


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
