"""Checks of the scenarios both stacks run (common.mjs twoUserScenarios(): tests/e2e/test_syncmap.py
through @logux/server 0.13.1, tests/bridge/test_bridge_flows.py through the logux-sync bridge)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def check_conflict(seen: dict[str, Any], tasks: Callable[[], dict[str, dict[str, Any]]]) -> None:
    """The `conflict` scenario: every round the clients agree on one of the two edits, and the
    database (`tasks()`, read afterwards) holds the last."""
    for number, round_ in enumerate(seen["rounds"]):
        assert round_["results"] == ["fulfilled", "fulfilled"], round_
        assert round_["alice"] == round_["bob"], round_
        assert round_["alice"]["title"] in (f"alice {number}", f"bob {number}"), round_
    last = seen["rounds"][-1]["alice"]
    row = tasks()[seen["id"]]
    assert {"title": row["title"], "column": row["column"]} == last
    assert last["column"] == "doing"  # only bob's odd rounds touched it: nothing overwrote it


def check_offline(seen: dict[str, Any]) -> None:
    """The `offline` scenario: bob missed the edit while away and caught up by resubscribing `since`."""
    assert seen["whileAway"]["title"] == "Before bob left"
    assert (seen["bob"]["title"], seen["bob"]["column"]) == ("Changed while bob was away", "doing")
    assert any(action["channel"] == "tasks" and "since" in action for action in seen["resubscribes"]), seen


def check_hostile(seen: dict[str, Any], tasks: Callable[[], dict[str, dict[str, Any]]], users: dict[str, Any]) -> None:
    """The `hostile` scenario: bob's create over alice's private card is refused, his probe of it is
    answered like a probe of a made-up id, his edit stamped a minute ahead is undone; nothing changed."""
    assert seen["takeover"] == {"error": "LoguxUndoError", "reason": "denied"}, seen
    assert seen["probes"]["hidden"] == seen["probes"]["missing"] == {"error": "LoguxUndoError", "reason": "notFound"}
    assert seen["skewed"] == {"error": "LoguxUndoError", "reason": "clockSkew"}, seen
    assert seen["secret"] not in seen["bobList"] and seen["ownAtAlice"] == "Bob card"
    rows = tasks()
    secret = rows[seen["secret"]]
    assert (secret["title"], secret["private"], secret["owner"]) == ("Alice secret", True, int(users["alice"]["id"]))
    assert rows[seen["own"]]["title"] == "Bob card"
