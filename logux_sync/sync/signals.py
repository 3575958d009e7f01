"""post_save / post_delete receivers of synced models, connected per model from one list."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from ..conf import logux_settings
from . import broadcast
from .models import LoguxSynced


def on_post_save(
    sender: type[LoguxSynced], instance: LoguxSynced, created: bool, raw: bool, using: str, **kw: Any
) -> None:
    pending = instance.__dict__.pop("_logux_pending", None)
    if raw or pending is None or not logux_settings.SYNC_ENABLED:
        return
    changed, old, meta, connection = pending
    if changed and not broadcast.is_muted():
        kind = "created" if created else "changed"
        broadcast.enqueue(
            [broadcast.change_entry(sender._logux, instance, kind, changed, old, meta)], using, connection
        )


def on_post_delete(sender: type[LoguxSynced], instance: LoguxSynced, using: str, **kw: Any) -> None:
    if not logux_settings.SYNC_ENABLED:
        return
    from .models import _obj_stamp

    opts = sender._logux
    meta = _obj_stamp(instance)
    change = broadcast.make_change(opts, instance, "deleted", [], opts.wire_fields(instance), meta)
    broadcast.queue_changes([change], using)


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
