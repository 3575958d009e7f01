"""`manage.py logux_routes`: the registered action types and channel patterns."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from logux_sync.registry import logux


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Command(BaseCommand):
    help = "List the action types and channel patterns registered with logux_sync."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [("action", key, _path(h)) for key, h in logux.actions.items()]
        rows += [("channel", key, _path(h)) for key, h in logux.channels.items()]
        if not rows:
            self.stdout.write("No Logux handlers are registered.")
            return
        width = max(len(key) for _, key, _ in rows)
        for kind, key, handler in rows:
            self.stdout.write(f"{kind:<8} {key:<{width}}  {handler}")
