"""The benchmarked channel, written against the seed's API."""

from __future__ import annotations

from logux.core import ChannelCommand, Meta
from logux.dispatchers import logux


class Item(ChannelCommand):
    channel_pattern = r"^bench/(?P<id>[^/]+)$"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def load(self, action: dict, meta: Meta) -> dict:
        return {"type": "bench/item", "id": self.params["id"], "text": "hello"}


logux.channels.register(Item)
