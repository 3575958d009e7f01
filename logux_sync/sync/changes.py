"""A model change as the outbox stores it, and the switch that mutes model sync."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import Action
from .clocks import derived_id

if TYPE_CHECKING:
    from django.db import models

    from .options import LoguxOptions


_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("logux_sync_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    """Inside this block, saves and deletes of synced models send nothing to Logux."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def is_muted() -> bool:
    return _muted.get()


# An outbox entry: a model change (a list, see _entry()) or `{"raw": [action, meta]}` (add_on_commit()).
Entry = list[Any] | dict[str, Any]


@dataclass
class Change:
    """One edit of one row, as stored in the outbox."""

    plural: str
    kind: str  # created | changed | deleted
    wire_id: str
    fields: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    meta: dict[str, Any]  # {id, time} of the broadcast, fixed when the change was made
    exclude_client: str | None

    def action(self) -> Action:
        action: Action = {"type": f"{self.plural}/{self.kind}", "id": self.wire_id}
        if self.kind != "deleted":
            action["fields"] = self.fields
        return action

    def to_json(self) -> list[Any]:
        return _entry(
            self.plural, self.kind, self.wire_id, self.fields, self.old, self.new, self.meta, self.exclude_client
        )

    @classmethod
    def from_json(cls, entry: list[Any]) -> Change:
        plural, kind, wire_id, new, edit_id, time, fields, old, exclude_client = entry + [None] * (9 - len(entry))
        return cls(
            plural=plural,
            kind=kind,
            wire_id=wire_id,
            fields=(new or {}) if fields is None else fields,
            old=old,
            new=new,
            meta={"id": edit_id, "time": time},
            exclude_client=exclude_client,
        )


def is_change(entry: Entry) -> bool:
    """Is an outbox entry a model change (else an add_on_commit() action, `{"raw": [action, meta]}`)?"""
    return isinstance(entry, list)


def _entry(
    plural: str,
    kind: str,
    wire_id: str,
    fields: dict[str, Any],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    meta: dict[str, Any],
    exclude_client: str | None,
) -> list[Any]:
    """A change as the outbox stores it, a list (JSON arrays encode in about half the time of objects):
    `[plural, kind, wire_id, new, id, time, fields, old, exclude_client]`, where the last three are left
    out from the end while they are None. `fields` is None when they are the new values (a create)."""
    stored = [plural, kind, wire_id, new, meta["id"], meta["time"]]
    own_fields = None if fields is new or fields == (new or {}) else fields
    if exclude_client is not None:
        stored += [own_fields, old, exclude_client]
    elif old is not None:
        stored += [own_fields, old]
    elif own_fields is not None:
        stored.append(own_fields)
    return stored


def change_entry(
    opts: LoguxOptions,
    obj: models.Model,
    kind: str,
    changed: list[str],
    old: dict[str, Any] | None,
    meta: dict[str, Any],
) -> list[Any]:
    """One row's change as an outbox entry, with the id and time its broadcast will carry."""
    new = None if kind == "deleted" else opts.wire_fields(obj)
    if new is None:
        fields: dict[str, Any] = {}
    elif len(changed) == len(new):  # every synced field (`changed` names some of them)
        fields = new
    else:
        fields = {name: new[name] for name in changed}
    client = meta.get("client")
    # A client's edit goes out under an id of its own that orders like the edit's (see derived_id).
    stamp = {"id": derived_id(meta["id"]) if client else meta["id"], "time": meta["time"]}
    return _entry(opts.plural, kind, opts.wire_id(obj), fields, old, new, stamp, client)


def payload_text(payload: Any) -> str:
    """An outbox payload as stored: its JSON text."""
    return json.dumps(payload)


def payload_entries(payload: dict[str, Any]) -> list[Entry]:
    """An outbox row's entries."""
    return payload["entries"]  # type: ignore[no-any-return]
