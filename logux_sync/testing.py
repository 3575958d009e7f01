"""Helpers for testing apps that use logux_sync."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model

from .commands import load_user
from .registry import Dispatcher, Registry, logux
from .sync.addressing import reader_ids
from .sync.delivery import capture, resume_sending
from .sync.models import LoguxSynced

__all__ = ["capture", "handlers_restored", "readers_disagreements", "resume_sending"]


def readers_disagreements(
    model: type[LoguxSynced], rows: Iterable[LoguxSynced] | None = None, users: Iterable[Any] | None = None
) -> list[tuple[Any, Any, bool]]:
    """Where a model's `LoguxMeta.readers` and its `can_read` disagree: `(row, user, readers admits)`
    for each row and user (all of each by default) where they differ. Changes are addressed by
    `readers` when it is given, so assert in your tests that this is empty: a `readers` wider than
    `can_read` would send a row to a user who may not read it."""
    users = list(users if users is not None else get_user_model()._default_manager.all())
    # Each user as a subscriber of that id is seen (an inactive one as anonymous, see load_user()).
    as_seen = [load_user(str(user.pk)) for user in users]
    found = []
    for row in rows if rows is not None else model._default_manager.all():
        readers = row.logux_readers()
        if readers is None:  # can_read decides for this row
            continue
        if isinstance(readers, bool):
            admitted = {str(user.pk) for user in users} if readers else set()
        else:
            admitted = set(reader_ids(readers).values_list("logux_user_id", flat=True))
        for user, effective in zip(users, as_seen, strict=True):
            says = str(user.pk) in admitted
            if says != bool(row.logux_can_read(effective)):
                found.append((row, user, says))
    return found


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
