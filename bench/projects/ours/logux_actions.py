"""The two benchmarked actions: one that does no I/O, one that inserts a row."""

from __future__ import annotations

from benchrows.models import Row

import logux_sync
from logux_sync import ActionCommand, Meta


@logux_sync.register
class Noop(ActionCommand):
    action_type = "bench/noop"

    def access(self, action: dict, meta: Meta) -> bool:
        return True


@logux_sync.register
class Write(ActionCommand):
    action_type = "bench/write"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def process(self, action: dict, meta: Meta) -> None:
        Row.objects.create(text=action["text"], meta_id=meta.id)
