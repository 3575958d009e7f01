"""Turn committed row changes into SyncMap actions addressed to the readers that may see them.

Changes are queued inside the transaction and sent after it commits, all the actions of one
transaction in one request; a rolled-back change is never sent.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ..client import add_batch
from ..exceptions import LoguxServerError
from ..protocol import Action, RawMeta
from .clocks import server_meta

if TYPE_CHECKING:
    from django.db import models

    from .options import LoguxOptions

logger = logging.getLogger("logux_sync.sync")

_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("logux_sync_muted", default=False)
_captures: list[Captured] = []
_batches: dict[str, _Batch] = {}


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


@dataclass
class Change:
    """One committed-to-be edit of one row."""

    options: LoguxOptions
    kind: str  # created | changed | deleted
    wire_id: str
    fields: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    obj: models.Model
    edit_id: str
    meta: dict[str, Any]
    exclude_client: str | None

    def action(self) -> Action:
        action: Action = {"type": f"{self.options.plural}/{self.kind}", "id": self.wire_id}
        if self.kind != "deleted":
            action["fields"] = self.fields
        return action


def queue_change(
    opts: LoguxOptions,
    obj: models.Model,
    kind: str,
    changed: list[str],
    old: dict[str, Any] | None,
    meta: dict[str, Any],
    using: str = DEFAULT_DB_ALIAS,
    exclude_client: str | None = None,
) -> None:
    """Queue one row's change; it is sent when the surrounding transaction commits."""
    if is_muted():
        return
    new = None if kind == "deleted" else opts.wire_fields(obj)
    fields = {} if new is None else {name: new[name] for name in changed}
    change = Change(
        options=opts,
        kind=kind,
        wire_id=opts.wire_id(obj),
        fields=fields,
        old=old,
        new=new,
        obj=obj,
        edit_id=meta["id"],
        # A client's edit goes out under a new id with the edit's time: the Logux server drops an
        # action whose id its log already holds, and it holds the client's own action.
        meta={"id": server_meta()["id"] if meta.get("client") else meta["id"], "time": meta["time"]},
        exclude_client=exclude_client or meta.get("client"),
    )
    connection = connections[using]
    if not connection.in_atomic_block:  # autocommit: the change is already committed
        flush([change])
        return
    batch = _batches.get(using)
    if batch is None or not batch.pending(connection):
        batch = _Batch(using, set(connection.savepoint_ids))
        _batches[using] = batch
        transaction.on_commit(batch, using=using)
    if not set(connection.savepoint_ids) <= batch.sids:
        # Queued inside a savepoint the batch's callback is not in: if that savepoint rolls back,
        # Django drops nothing of ours, so the flush checks which of these changes were committed.
        batch.verify = True
    batch.changes.append(change)


class _Batch:
    """The changes of one transaction, sent in one request by its on_commit callback.

    Django discards the callback with a rolled-back transaction (or the savepoint it was registered
    in, which also holds every change queued after it there), so nothing rolled back is sent."""

    def __init__(self, using: str, sids: set[str]):
        self.using = using
        self.sids = sids
        self.changes: list[Change] = []
        self.verify = False
        self.done = False

    def pending(self, connection: Any) -> bool:
        # run_on_commit lists the callbacks still to run after commit (read, never changed, here).
        return not self.done and any(item[1] is self for item in connection.run_on_commit)

    def __call__(self) -> None:
        self.done = True
        if _batches.get(self.using) is self:
            del _batches[self.using]
        flush(committed_only(self.changes, self.using) if self.verify else self.changes)


def committed_only(changes: list[Change], using: str) -> list[Change]:
    """Drop changes rolled back with a savepoint: their clock ids are not in the row (one query per model)."""
    by_model: dict[Any, list[Change]] = {}
    for change in changes:
        by_model.setdefault(change.options.model, []).append(change)
    kept: set[int] = set()
    for model, model_changes in by_model.items():
        pks = {change.obj.pk for change in model_changes}
        clocks = dict(model._base_manager.using(using).filter(pk__in=pks).values_list("pk", "logux_clocks"))
        for change in model_changes:
            if change.kind == "deleted":
                alive = change.obj.pk not in clocks
            else:
                row = clocks.get(change.obj.pk) or {}
                alive = any(
                    isinstance(row.get(name), list) and row[name][-1] == change.edit_id for name in change.fields
                )
            if alive:
                kept.add(id(change))
    return [change for change in changes if id(change) in kept]


def flush(changes: list[Change]) -> None:
    """Send committed changes; a Logux outage is logged, never raised into the saving code."""
    if not changes:
        return
    pairs = address(changes)
    if _captures:
        for captured in _captures:
            captured.extend(pairs)
            captured.requests.append(pairs)
        return
    try:
        add_batch(pairs)
    except LoguxServerError:
        logger.exception("logux_sync: %d synced change(s) were not delivered", len(pairs))


def address(changes: list[Change]) -> list[tuple[Action, RawMeta]]:
    """Each change as `(action, meta)` addressed to its row channel, derived channels (old and new)
    and the filter-subscribed nodes whose filter matches the old or new row and who may read it now."""
    from ..commands import load_user
    from .subscriptions import active_subscriptions

    plurals = {c.options.plural for c in changes}
    subscriptions = active_subscriptions(plurals)
    users: dict[str, Any] = {}
    pairs = []
    for change in changes:
        opts = change.options
        channels = [opts.row_channel(change.wire_id)]
        for state in (change.old, change.new):
            if state is not None:
                channels += [c for c in opts.derived_channels(state) if c not in channels]
        nodes = []
        for sub in subscriptions.get(opts.plural, ()):
            client = ":".join(sub.node_id.split(":")[:2])
            if client == change.exclude_client or sub.node_id in nodes:
                continue
            if not any(s is not None and opts.matches(sub.filter, s) for s in (change.old, change.new)):
                continue
            if sub.user_id not in users:
                users[sub.user_id] = load_user(sub.user_id)
            if change.obj.logux_can_read(users[sub.user_id]):  # type: ignore[attr-defined]
                nodes.append(sub.node_id)
        meta: RawMeta = {**change.meta, "channels": channels}
        if nodes:
            meta["nodes"] = nodes
        if change.exclude_client:
            meta["excludeClients"] = [change.exclude_client]
        pairs.append((change.action(), meta))
    return pairs


class Captured(list[tuple[Action, RawMeta]]):
    """What `capture()` collected: every `(action, meta)`, and `.requests`, one list per request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[list[tuple[Action, RawMeta]]] = []


@contextmanager
def capture() -> Iterator[Captured]:
    """Collect what synced models would send to Logux instead of sending it."""
    sent = Captured()
    _captures.append(sent)
    try:
        yield sent
    finally:
        _captures.remove(sent)
