"""The bridge's requests to Django (`Backend` in bridge.mjs) against a fake Django: a command goes at once
when no request is in flight, and commands gather only while one is (tests/bridge/js/backend.mjs)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.servers import ROOT, drive

from .stack import require_bridge_modules

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "backend.mjs"

require_bridge_modules()


def test_an_idle_bridge_sends_a_command_at_once() -> None:
    # The batch wait is a minute: each send was answered, so none waited for it.
    seen = json.loads(drive(DRIVER, "idle", timeout=30))
    assert seen["requests"] == [["1 a:1 0"], ["2 a:1 0"], ["3 a:1 0", "4 a:1 0"]]


def test_commands_gather_while_a_request_is_in_flight() -> None:
    seen = json.loads(drive(DRIVER, "busy", timeout=30))
    assert seen["whileHeld"] == 1
    assert seen["requests"] == [["1 a:1 0"], ["2 a:1 0", "3 a:1 0"]]
