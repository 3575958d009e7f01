"""The benchmarked actions, written against the seed's API."""

from __future__ import annotations

from benchrows.models import Row
from logux.core import ActionCommand, Meta
from logux.dispatchers import logux


class Noop(ActionCommand):
    action_type = "bench/noop"

    def access(self, action: dict, meta: Meta) -> bool:
        return True


class Write(ActionCommand):
    action_type = "bench/write"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def process(self, action: dict, meta: Meta) -> None:
        Row.objects.create(text=action["text"], meta_id=meta.id)


logux.actions.register(Noop)
logux.actions.register(Write)
