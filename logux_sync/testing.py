"""Helpers for testing apps that use logux_sync."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .registry import Dispatcher, Registry, logux
from .sync.delivery import capture

__all__ = ["capture", "handlers_restored"]


@contextmanager
def handlers_restored(dispatcher: Dispatcher = logux) -> Iterator[Dispatcher]:
    """Inside the block, register or unregister handlers freely: the registries are as they were after it."""
    registries: tuple[Registry[Any], ...] = (dispatcher.actions, dispatcher.channels)
    saved = [dict(registry.items()) for registry in registries]
    try:
        yield dispatcher
    finally:
        for registry, before in zip(registries, saved, strict=True):
            for key, _ in registry.items():
                if key not in before:
                    registry.unregister(key)
            for key, handler in before.items():
                if registry.get(key) is not handler:
                    if registry.is_registered(key):
                        registry.unregister(key)
                    registry.register(handler)
