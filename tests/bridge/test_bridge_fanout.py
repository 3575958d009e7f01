"""LOGUX_SYNC['FANOUT'] = 'bridge' with real `@logux/client` 0.23 clients: two logux-sync bridges fan
out the changes whose readers stay the same from the watches Django gave them (a private card to its
owner's nodes alone), a client cannot forge a watch, and the private meta never reaches a client. Also
runs the bridge's JS unit tests of the node computation (tests/bridge/js/fanout.test.mjs). The other
bridge suites run in both modes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from logux_sync.sync.keys import match_key
from tests.e2e.servers import NODE, ROOT, node_env, scratch_dir

from .stack import Stack, bridge_stack, require_bridge_modules

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "fanout.mjs"
UNIT = ROOT / "tests" / "bridge" / "js" / "fanout.test.mjs"

require_bridge_modules()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with scratch_dir("logux-bridge-fanout-") as tmp, bridge_stack(tmp, DRIVER, "bridge-fanout", "bridge") as stack_:
        yield stack_


def drive(stack: Stack, scenario: str) -> dict:
    keys = {column: match_key({"column": column}) for column in ("todo", "doing")}
    return stack.drive(scenario, secret=stack.env["LOGUX_CONTROL_SECRET"], keys=keys)


def test_the_bridge_computes_nodes_as_specified() -> None:
    result = subprocess.run(
        [NODE, "--test", str(UNIT)], env=node_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


def test_a_client_cannot_forge_a_watch_and_the_private_meta_stays_on_the_server(stack: Stack) -> None:
    seen = drive(stack, "forged")

    assert seen["forged"] == "denied"
    assert seen["other"] == "denied"
    assert seen["bobHeard"] == [False, True]
    assert seen["aliceHeard"] == [True, False]
    assert seen["aliceWire"] and "logux_sync" not in json.dumps(seen["aliceWire"])


def test_live_changes_reach_every_list_they_match_through_both_bridges(stack: Stack) -> None:
    seen = drive(stack, "live")

    assert seen["steps"] == ["created", "moved", "deleted"]
    assert seen["afterUnsubscribe"] is False


def test_a_private_card_is_fanned_out_to_its_owner_alone_through_both_bridges(stack: Stack) -> None:
    seen = drive(stack, "private")

    assert seen["steps"] == ["private", "public", "private again", "deleted"]
    assert seen["bobSawPublic"] is True
    assert seen["leaked"] == []
