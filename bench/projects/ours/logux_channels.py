"""The benchmarked channel: its load returns one action, without I/O."""

from __future__ import annotations

import logux_sync
from logux_sync import ChannelCommand, Meta


@logux_sync.register
class Item(ChannelCommand):
    channel_pattern = "bench/:id"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def load(self, action: dict, meta: Meta) -> dict:
        return {"type": "bench/item", "id": self.params["id"], "text": "hello"}
