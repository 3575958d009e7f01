"""post_save and post_delete receivers of synced models, connected per model from one list."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from ..conf import logux_settings
from . import outbox
from .changes import change_entry, is_muted
from .models import PENDING, LoguxSynced, _obj_stamp


def on_post_save(
    sender: type[LoguxSynced], instance: LoguxSynced, created: bool, raw: bool, using: str, **kw: Any
) -> None:
    """Queue the edit LoguxSynced.save() is making (a raw save, from fixtures, sends nothing)."""
    pending = instance.__dict__.pop(PENDING, None)
    if pending is None or raw or not logux_settings.SYNC_ENABLED or is_muted():
        return
    changed, old, meta = pending
    if changed:
        entry = change_entry(sender.logux_options, instance, "created" if created else "changed", changed, old, meta)
        outbox.enqueue([entry], using)


def on_post_delete(sender: type[LoguxSynced], instance: LoguxSynced, using: str, **kw: Any) -> None:
    if not logux_settings.SYNC_ENABLED:
        return
    opts = sender.logux_options
    meta = _obj_stamp(instance, opts.fields)
    entry = change_entry(opts, instance, "deleted", [], opts.wire_fields(instance), meta)
    outbox.queue_changes([entry], using)


def receivers(model: type[LoguxSynced]) -> list[tuple[Any, Any, str]]:
    """(signal, receiver, dispatch_uid) for one model."""
    label = model._meta.label_lower
    return [
        (post_save, on_post_save, f"logux_sync.post_save.{label}"),
        (post_delete, on_post_delete, f"logux_sync.post_delete.{label}"),
    ]


def connect(model: type[LoguxSynced]) -> None:
    for signal, receiver, uid in receivers(model):
        signal.connect(receiver, sender=model, dispatch_uid=uid)
