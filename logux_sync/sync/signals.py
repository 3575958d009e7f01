"""post_delete receivers of synced models, connected per model from one list. (A save queues its
change itself: see LoguxSynced._save_table.)"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete

from ..conf import logux_settings
from . import broadcast
from .models import LoguxSynced


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
        (post_delete, on_post_delete, f"logux_sync.post_delete.{label}"),
    ]


def connect(model: type[LoguxSynced]) -> None:
    for signal, receiver, uid in receivers(model):
        signal.connect(receiver, sender=model, dispatch_uid=uid)


def disconnect(model: type[LoguxSynced]) -> None:
    for signal, receiver, uid in receivers(model):
        signal.disconnect(receiver, sender=model, dispatch_uid=uid)
