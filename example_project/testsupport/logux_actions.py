"""A slow action, so the end-to-end tests can see `approved` streamed before `processed`."""

from __future__ import annotations

import time

import logux_sync
from logux_sync import ActionCommand, Meta

MAX_SECONDS = 10.0


@logux_sync.register
class Slow(ActionCommand):
    action_type = "test/slow"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def process(self, action: dict, meta: Meta) -> None:
        time.sleep(min(float(action["seconds"]), MAX_SECONDS))
