"""post_save and post_delete receivers of synced models, connected per model from one list."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from ..conf import logux_settings
from . import broadcast
from .models import PENDING, LoguxSynced


def on_post_save(
    sender: type[LoguxSynced], instance: LoguxSynced, created: bool, raw: bool, using: str, **kw: Any
) -> None:
    """Queue the edit LoguxSynced.save() is making (a raw save, from fixtures, sends nothing)."""
    pending = instance.__dict__.pop(PENDING, None)
    if pending is None or raw or not logux_settings.SYNC_ENABLED or broadcast.is_muted():
        return
    changed, old, meta = pending
    if changed:
        entry = broadcast.change_entry(sender._logux, instance, "created" if created else "changed", changed, old, meta)
        broadcast.enqueue([entry], using)


def on_post_delete(sender: type[LoguxSynced], instance: LoguxSynced, using: str, **kw: Any) -> None:
    if not logux_settings.SYNC_ENABLED:
        return
    from .models import _obj_stamp

    opts = sender._logux
    meta = _obj_stamp(instance, opts.fields)
    entry = broadcast.change_entry(opts, instance, "deleted", [], opts.wire_fields(instance), meta)
    broadcast.queue_changes([entry], using)


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


def disconnect(model: type[LoguxSynced]) -> None:
    for signal, receiver, uid in receivers(model):
        signal.disconnect(receiver, sender=model, dispatch_uid=uid)
