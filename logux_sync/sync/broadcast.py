"""Turn committed row changes into SyncMap actions addressed to the readers that may see them.

Each change is written to the outbox table in the transaction that makes it, with its Logux id and
time fixed there. After commit, the transaction's changes go out in one request; if the Logux server is
down or slow they stay in the outbox and `manage.py logux_deliver` (or the next send) retries them.
A rolled-back change never reaches the outbox, so it is never sent.
"""

from __future__ import annotations

import atexit
import contextvars
import datetime
import functools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction
from django.db.models import Q
from django.utils import timezone

from ..client import add_batch
from ..conf import logux_settings
from ..exceptions import LoguxServerError
from ..protocol import Action, RawMeta, is_first_older
from .clocks import clock_meta, derived_id, field_clock

if TYPE_CHECKING:
    from django.db import models
    from django.db.models import QuerySet

    from .models import LoguxOutbox
    from .options import LoguxOptions

logger = logging.getLogger("logux_sync.sync")

_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("logux_sync_muted", default=False)
_captures: list[Captured] = []
# After a failed send, requests stop trying inline until this monotonic time; logux_deliver retries.
_inline_paused_until = 0.0


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
    def from_json(cls, entry: Entry) -> Change:
        if isinstance(entry, dict):  # written by an earlier release: {"change": {name: value}}
            stored = entry["change"]
            return cls(
                plural=stored["plural"],
                kind=stored["kind"],
                wire_id=stored["wire_id"],
                fields=stored.get("fields", stored.get("new") or {}),
                old=stored.get("old"),
                new=stored.get("new"),
                meta=stored["meta"],
                exclude_client=stored.get("exclude_client"),
            )
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
    return isinstance(entry, list) or "change" in entry


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


# A deletion goes out a second time this long (seconds) after the first, see queue_changes().
DELETE_ECHO_S = 10


def queue_changes(entries: list[Entry], using: str = DEFAULT_DB_ALIAS) -> None:
    """Record changes (change_entry()) in the outbox; they are sent when the surrounding transaction
    commits. A deletion also leaves a tombstone, and is sent a second time later."""
    if entries and not is_muted():
        enqueue(entries, using)
        deleted = [Change.from_json(e) for e in entries if isinstance(e, list) and e[1] == "deleted"]
        if deleted:
            from .models import LoguxTombstone

            LoguxTombstone.objects.using(using).bulk_create(
                LoguxTombstone(
                    plural=c.plural, row_id=c.wire_id, state=c.old or {}, time=c.meta["time"], edit_id=c.meta["id"]
                )
                for c in deleted
            )
            _queue_echoes(deleted, using)


def _queue_echoes(deleted: list[Change], using: str) -> None:
    """Send each deletion again DELETE_ECHO_S later (logux_deliver does), under an id of its own.

    @logux/client 0.21 handles a received action its log keeps (a `created` or `changed` of a row a
    list shows) a few microtasks after one it does not keep (`deleted`): the core log awaits a store
    write for the first and only a lookup for the second. So when a row's `deleted` reaches a client in
    the same network read as an earlier `changed` of it (a list load that read the row just before it
    was deleted, while the client catches up after a reconnect), the deletion runs first and
    createFilter then puts the row back from the `changed`, for good. Nothing about a deleted row is
    sent after its deletion, so the second `deleted`, read well after, removes it; a client that has
    no such row ignores it."""
    echoes: list[Entry] = []
    for change in deleted:
        echo = Change(**{**change.__dict__, "meta": {**change.meta, "id": derived_id(change.meta["id"])}})
        echoes.append(echo.to_json())
    connection = connections[using]
    now = timezone.now()
    due = now + datetime.timedelta(seconds=DELETE_ECHO_S)
    adapt = connection.ops.adapt_datetimefield_value
    # Written at once (as the tombstones are), not held back for the commit: a rollback takes them too.
    with connection.cursor() as cursor:
        _insert(cursor, echoes, uuid.uuid4().hex, adapt(now), adapt(due), echo=True)


def enqueue(entries: list[Entry], using: str = DEFAULT_DB_ALIAS) -> None:
    """Write outbox entries (changes, see _entry(), or `{"raw": [action, meta]}`) in the current
    transaction, at once: they commit or roll back with it (and with its savepoints) like the rows
    they describe. Once it commits, its batch goes to the sender (see after_commit())."""
    wake = _Wake.current(using)
    _insert(wake.cursor(), entries, wake.batch, wake.now, wake.now)
    # Registered with every write: Django drops the callbacks of a savepoint that rolls back, and
    # only the transaction's remaining writes must wake the sender. It runs once.
    wake.connection.on_commit(wake, robust=True)


class _Wake:
    """The outbox batch of this thread's transaction on one database, and the on_commit callback
    that hands it to the sender, once.

    Django tells a commit (on_commit) but not a rollback: a batch whose transaction rolled back is
    still this thread's current one, and the next transaction writes under the same key (its rows
    are gone with the rollback, so the batch is then exactly the new transaction's)."""

    _local = threading.local()

    def __init__(self, using: str) -> None:
        # A robust on_commit callback that raises is logged under its __qualname__; an instance has none.
        self.__qualname__ = f"{type(self).__module__}.{type(self).__qualname__}"
        self.using = using
        self.connection = transaction.get_connection(using)
        self.batch = uuid.uuid4().hex
        # The rows' created_at and first attempt: when the transaction wrote its first entry.
        self.now = _now(self.connection)
        self.done = False
        self._cursor: Any = None

    @classmethod
    def current(cls, using: str) -> _Wake:
        wakes: dict[str, _Wake] = cls._local.__dict__.setdefault("wakes", {})
        wake = wakes.get(using)
        if wake is None or wake.done or wake.connection.connection is None:  # ended, or the connection closed
            wake = wakes[using] = cls(using)
        return wake

    def cursor(self) -> Any:
        """One cursor for the transaction's writes (a cursor per save costs more than its INSERT)."""
        if self._cursor is None:
            self._cursor = self.connection.cursor()
        return self._cursor

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        if self._cursor is not None:
            self._cursor.close()
        after_commit(self.batch, self.using)


_INSERT_COLUMNS = ("payload", "batch", "created_at", "attempts", "next_attempt_at", "last_error", "claim")


@functools.lru_cache(maxsize=8)
def _insert_sql(vendor: str, using: str) -> str:
    """The outbox INSERT for a backend (the payload column is JSON text: see OutboxPayload)."""
    from .models import LoguxOutbox

    quote = connections[using].ops.quote_name
    opts = LoguxOutbox._meta
    columns = ", ".join(quote(opts.get_field(name).column) for name in _INSERT_COLUMNS)  # type: ignore[union-attr, arg-type]
    placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    return f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({placeholders})"


def payload_text(payload: Any) -> str:
    """An outbox payload as stored: its JSON text."""
    return json.dumps(payload)


def _now(connection: Any) -> Any:
    """Now, as the backend takes a DateTimeField value."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


OutboxRow = tuple[str, str, Any, int, Any, str, str]


# Entries per outbox row at most (logux_deliver's default batch): a large transaction's entries go in
# several rows, all delivered in its one request, so that no row's JSON grows without bound.
ROW_ENTRIES = 500


def _row(entries: list[Entry], key: str, now: Any, due: Any, echo: bool = False) -> OutboxRow:
    """One outbox row's values: entries of one transaction (or of the part of it written at once),
    in order, made `now` and first due `due`. Many changes per row rather than one: a row's INSERT
    (three indexes) costs several times a change's encoding."""
    payload: dict[str, Any] = {"entries": entries}
    if echo:
        payload["echo"] = True
    return (payload_text(payload), key, now, 0, due, "", "")


def _insert(cursor: Any, entries: list[Entry], key: str, now: Any, due: Any, echo: bool = False) -> None:
    """Write `entries` in order, ROW_ENTRIES to a row."""
    if len(entries) <= ROW_ENTRIES:
        rows = [_row(entries, key, now, due, echo)]
    else:
        rows = [_row(entries[i : i + ROW_ENTRIES], key, now, due, echo) for i in range(0, len(entries), ROW_ENTRIES)]
    # Plain SQL: the ORM's insert machinery costs more than the row's SQL.
    sql = _insert_sql(cursor.db.vendor, cursor.db.alias)
    if len(rows) == 1:
        cursor.execute(sql, rows[0])
    else:
        cursor.executemany(sql, rows)


def payload_entries(payload: dict[str, Any]) -> list[Entry]:
    """An outbox row's entries. A row written by an earlier release holds one, as its payload."""
    entries = payload.get("entries")
    return [payload] if entries is None else entries  # type: ignore[no-any-return]


def after_commit(batch: str, using: str) -> None:
    """A transaction wrote outbox rows (`batch`) and committed: hand them to the sender (DELIVERY).
    Under capture() they go at once, in this thread. After a failed send, nothing is tried until the
    backoff passes: the rows wait for logux_deliver."""
    if _captures:
        deliver(batch=batch, using=using)
        return
    mode = logux_settings.DELIVERY
    if mode == "worker" or time.monotonic() < _inline_paused_until:
        return
    if mode == "inline":
        deliver(batch=batch, using=using)
    else:
        sender.wake(batch, using)


class Sender:
    """The thread that delivers, in this process, the rows of each transaction that committed
    (DELIVERY = "thread"): a request hands its transaction's batch over and returns at once, and a
    slow or unreachable Logux server delays only this thread. Started on first use, also in each
    process forked after that; at exit it gets a few seconds to finish what it was handed (the rest
    waits in the outbox for logux_deliver)."""

    EXIT_WAIT = 10.0

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.drain, self.EXIT_WAIT)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def wake(self, batch: str, using: str) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="logux-sync-sender", daemon=True)
                self._thread.start()
        self._queue.put((batch, using))

    def drain(self, timeout: float) -> bool:
        """Wait until everything handed over is delivered or given up (False after `timeout` s)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch, using = self._queue.get()
            try:
                if time.monotonic() >= _inline_paused_until:  # else the rows wait for logux_deliver
                    deliver(batch=batch, using=using)
            except Exception:
                logger.exception("logux_sync: the sender failed to deliver batch %s; it waits in the outbox", batch)
            finally:
                # CONN_MAX_AGE decides, as after a request: this thread's connection is not kept forever.
                close_old_connections()
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


sender = Sender()


def backoff(attempts: int) -> datetime.timedelta:
    return datetime.timedelta(seconds=min(logux_settings.OUTBOX_MAX_BACKOFF, 2 ** max(attempts - 1, 0)))


def lease() -> datetime.timedelta:
    """How long claimed rows stay another sender's to deliver: longer than the longest send (every
    server's connect and read timeouts), after which rows of a sender that died are due again."""
    urls = max(1, len(logux_settings.URLS))
    return datetime.timedelta(seconds=urls * (logux_settings.CONNECT_TIMEOUT + logux_settings.READ_TIMEOUT) + 30)


def deliver(
    batch: str | None = None,
    limit: int = 500,
    using: str = DEFAULT_DB_ALIAS,
    ignore_backoff: bool = False,
    raise_errors: bool = False,
) -> int:
    """Send outbox entries (one transaction's, or the oldest due rows' up to about `limit` entries:
    whole rows, at least one) in one request, oldest first; delete the rows delivered. Returns how
    many entries were sent. A Logux outage is recorded on the rows (attempts, next attempt) and
    raised only with `raise_errors`.

    No transaction or lock is held while the request is in flight: the rows are claimed in a short
    transaction (their next attempt moved past the send's longest duration, under a claim token; on
    PostgreSQL rows another sender is claiming are skipped), then sent, then deleted or marked
    failed in another short transaction. Several senders can run at once without sending a row twice
    at the same moment."""
    global _inline_paused_until
    from .models import LoguxOutbox

    rows = _claim(batch, limit, using, ignore_backoff)
    if not rows:
        return 0
    entries = [payload_entries(row.payload) for row in rows]
    try:
        per_row = _in_row_order(entries, using)
        pairs = [pair for row_pairs in per_row for pair in row_pairs]
        send(pairs)
    except LoguxServerError as exc:
        _inline_paused_until = time.monotonic() + backoff(rows[0].attempts + 1).total_seconds()
        _record_failure(rows, str(exc), using)
        logger.warning("logux_sync: %d outbox action(s) wait for the Logux server: %s", sum(map(len, entries)), exc)
        if raise_errors:
            raise
        return 0
    except BaseException:
        _release(rows, using)  # a bug or an interrupt: due again at once, for the next sender
        raise
    _inline_paused_until = 0.0
    with transaction.atomic(using=using):
        LoguxOutbox.objects.using(using).filter(id__in=[row.pk for row in rows], claim=rows[0].claim).delete()
        # Deletions sent again on purpose (see _queue_echoes()) are not late deliveries.
        timed = [
            pair
            for row, row_pairs in zip(rows, per_row, strict=True)
            if not row.payload.get("echo")
            for pair in row_pairs
        ]
        _remember_lateness(timed, using)
    return sum(map(len, entries))


def _claim(batch: str | None, limit: int, using: str, ignore_backoff: bool) -> list[LoguxOutbox]:
    """Claim the rows to send, in one short transaction: theirs to deliver until the lease ends."""
    from .models import LoguxOutbox

    now = timezone.now()
    token = uuid.uuid4().hex
    outbox = LoguxOutbox.objects.using(using)
    # Due rows; with ignore_backoff also those waiting for a retry, but never one another sender holds.
    available = Q(next_attempt_at__lte=now) | Q(claim="") if ignore_backoff else Q(next_attempt_at__lte=now)
    with transaction.atomic(using=using):
        qs = outbox.select_for_update(skip_locked=True).filter(available).order_by("id")
        if batch is None:  # the oldest rows, about `limit` entries, widened to whole transactions
            batches = {row.batch for row in _up_to(qs[:limit], limit)}
        else:
            batches = {batch}
        # A transaction's rows go together, in order, in one request (another sender never has half).
        candidates = list(qs.filter(batch__in=batches)) if batches else []
        if not candidates:
            return []
        # Only rows no other sender claimed meanwhile (SQLite has no row locks: the UPDATE decides).
        ids = [row.pk for row in candidates]
        outbox.filter(available, id__in=ids).update(claim=token, next_attempt_at=now + lease())
        claimed = {row.pk for row in outbox.filter(id__in=ids, claim=token).only("id")}
    rows = [row for row in candidates if row.pk in claimed]
    for row in rows:
        row.claim = token
    return rows


def _release(rows: list[LoguxOutbox], using: str) -> None:
    from .models import LoguxOutbox

    LoguxOutbox.objects.using(using).filter(id__in=[row.pk for row in rows], claim=rows[0].claim).update(
        claim="", next_attempt_at=timezone.now()
    )


def _up_to(rows: QuerySet[LoguxOutbox], limit: int) -> list[LoguxOutbox]:
    """The first rows holding at most `limit` entries in all (the first row whatever its size). Read
    a few at a time: each row read is decoded, and one row may hold a large transaction's entries."""
    taken: list[LoguxOutbox] = []
    count = 0
    for row in rows.iterator(chunk_size=16):
        count += len(payload_entries(row.payload))
        if count > limit and taken:
            break
        taken.append(row)
    return taken


# A change delivered this long (ms) after it was made counts as late for clients resubscribing with `since`.
LATE_MS = 1000


def _remember_lateness(pairs: list[tuple[Action, RawMeta]], using: str) -> None:
    from .clocks import now_ms
    from .models import LoguxLateDelivery

    times = [meta["time"] for _, meta in pairs if isinstance(meta.get("time"), (int, float))]
    now = now_ms()
    if times and now - min(times) > LATE_MS:
        LoguxLateDelivery.objects.using(using).create(delivered_at=now, oldest_time=min(times))


def _record_failure(rows: list[LoguxOutbox], error: str, using: str) -> None:
    from .models import LoguxOutbox

    now = timezone.now()
    claim = rows[0].claim
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + backoff(row.attempts)
        row.last_error = error[:1000]
        row.claim = ""
    outbox = LoguxOutbox.objects.using(using)
    with transaction.atomic(using=using):
        # Only rows still ours: after a lease ran out another sender may hold them.
        mine = set(outbox.filter(id__in=[row.pk for row in rows], claim=claim).values_list("id", flat=True))
        outbox.bulk_update(
            [row for row in rows if row.pk in mine], ["attempts", "next_attempt_at", "last_error", "claim"]
        )


def send(pairs: list[tuple[Action, RawMeta]]) -> None:
    if _captures:
        for captured in _captures:
            captured.extend(pairs)
            captured.requests.append(pairs)
        return
    add_batch(pairs)


def _objects(changes: list[Change], using: str) -> dict[tuple[str, str], Any]:
    """The rows of the changes as they are now (one query per model); a row that is gone is missing."""
    from .registry import synced_models

    found: dict[tuple[str, str], Any] = {}
    by_plural: dict[str, set[str]] = {}
    for change in changes:
        by_plural.setdefault(change.plural, set()).add(change.wire_id)
    for plural, wire_ids in by_plural.items():
        model = synced_models[plural]
        opts = model._logux
        pks = [opts.python_id(i) for i in wire_ids]
        for obj in model._base_manager.using(using).filter(pk__in=pks):
            found[(plural, opts.wire_id(obj))] = obj
    return found


def _target(change: Change, rows: dict[tuple[str, str], Any]) -> Any:
    """The row whose readers get the change: a deleted row rebuilt from its last state. A create or
    change of a row that is gone by now reaches no one: its `deleted` goes (or went) out after it, and
    @logux/client's createFilter puts a row back when a late `changed` overtakes that `deleted`."""
    from .registry import synced_models

    if change.kind == "deleted":
        if change.old is None:
            return None
        return synced_models[change.plural]._logux.instance_from_wire(change.wire_id, change.old)
    return rows.get((change.plural, change.wire_id))


def _in_row_order(rows: list[list[Entry]], using: str) -> list[list[tuple[Action, RawMeta]]]:
    """Each row's actions (given its entries), in the order they were written: model changes
    addressed to their readers, and the actions of add_on_commit() as they were given."""
    changes = [Change.from_json(entry) for entries in rows for entry in entries if is_change(entry)]
    addressed = iter(address_each(changes, using))
    per_row: list[list[tuple[Action, RawMeta]]] = []
    for entries in rows:
        pairs: list[tuple[Action, RawMeta]] = []
        for entry in entries:
            if is_change(entry):
                pairs += next(addressed)
            else:
                assert isinstance(entry, dict)
                action, meta = entry["raw"]
                pairs.append((action, meta))
        per_row.append(pairs)
    return per_row


def add_on_commit(action: Action, meta: RawMeta | None = None, using: str = DEFAULT_DB_ALIAS) -> None:
    """`add()` through the outbox: the action is written in the current transaction (at once in
    autocommit) and goes to Logux after the commit, in the request of the transaction's other
    actions; while the server is unreachable it waits and is retried like a model change. Its meta
    `id` and `time` are fixed now unless given. A rolled-back transaction sends nothing."""
    from .clocks import server_meta

    raw_meta: RawMeta = {**server_meta(), **(meta or {})}
    entry = {"raw": [action, raw_meta]}
    payload_text(entry)  # one that cannot be stored fails here, not in the commit
    enqueue([entry], using)


def _still_current(change: Change, obj: Any) -> dict[str, Any]:
    """The change's fields that no newer edit has overwritten since (by the row's clocks now).

    A change delivered late (it waited in the outbox while the Logux server was down) may carry values
    that newer edits of the same fields replaced, and those edits reach the same readers with their own
    changes. Sending the old values is harmless to a client whose field clocks are exact, but not to
    one whose clock for a field is older than the edit that set it: @logux/client 0.21's createFilter
    can build a loaded row from its `changed` actions and only then apply its `created` (the core log
    emits received actions with reasons a few microtasks after those without), so the row's newer
    fields end up under the `created` clock, and the old value would win over the current one."""
    clocks = getattr(obj, "logux_clocks", None)
    own = [change.meta["time"], change.meta["id"]]  # the clock of a field this edit still holds (an ORM edit's)
    return {
        name: value
        for name, value in change.fields.items()
        if (clock := field_clock(clocks, name)) == own or not is_first_older(change.meta, clock_meta(clock))
    }


def _extra_meta(change: Change, nodes: list[str]) -> RawMeta:
    """The meta of an action sent besides the change itself, to `nodes`: an id of its own that orders
    like the change's, and the change's time."""
    return {"id": derived_id(change.meta["id"]), "time": change.meta["time"], "nodes": nodes}


def _subscribed_marks(opts: LoguxOptions, change: Change, nodes: list[str]) -> list[tuple[Action, RawMeta]]:
    """`logux/subscribed` for the row's channel, to the list nodes about to get its `created`.

    As a list load does for each row (ListChannel): without it createFilter's store of the new row
    subscribes to its channel, one more request per row and node. And in @logux/server 0.13.1 a request
    that ends in `logux/undo` (the row was deleted, or became unreadable, before its subscribe was
    processed) undoes every action still queued behind it for that client, with reason `error`: after a
    reconnect those are the client's resubscribes, and its lists then never hear of a change again."""
    if not nodes:
        return []
    action = {"type": "logux/subscribed", "channel": opts.row_channel(change.wire_id)}
    return [(action, _extra_meta(change, nodes))]


def address(changes: list[Change], using: str = DEFAULT_DB_ALIAS) -> list[tuple[Action, RawMeta]]:
    """`address_each()`, flattened."""
    return [pair for pairs in address_each(changes, using) for pair in pairs]


def address_each(changes: list[Change], using: str = DEFAULT_DB_ALIAS) -> list[list[tuple[Action, RawMeta]]]:
    """Each change as `(action, meta)` addressed to nodes, never to a channel as a whole: the nodes
    subscribed to its row, or to a list or derived channel whose filter matches its old or new state,
    and whose user may read the row now. (In proxy mode the Logux server filters nothing per node.)

    A change that makes the row unreadable for a subscriber reaches it as `<plural>/deleted`, and one
    that makes it readable as `<plural>/created` with every field: for that user the row left or
    joined the set it may see."""
    from ..commands import load_user
    from .registry import synced_models
    from .subscriptions import active_subscriptions, is_plural_list

    if not changes:
        return []
    subscriptions = active_subscriptions({(c.plural, c.wire_id) for c in changes})
    # Once per subscription, not per change and subscription (the check encodes its filter).
    plural_lists = {id(sub) for subs in subscriptions.values() for sub in subs if is_plural_list(sub)}
    objects = _objects(changes, using)
    users: dict[str, Any] = {}
    addressed = []
    for change in changes:
        opts = synced_models[change.plural]._logux
        obj = _target(change, objects)
        action = change.action()
        if obj is not None and change.kind != "deleted":
            action["fields"] = current = _still_current(change, obj)
            if not current:
                obj = None  # every field was overwritten since: the newer edits' own changes tell
        nodes: list[str] = []
        gone: list[str] = []
        joined: list[str] = []
        before: Any = None  # the row as it was, rebuilt on first need
        seen: set[str] = set()
        listing: set[str] = set()  # nodes that get the row through a createFilter list
        for sub in subscriptions.get(change.plural, ()):
            client = ":".join(sub.node_id.split(":")[:2])
            # A node subscribed several ways (its row and a list) gets each action once.
            if client == change.exclude_client or obj is None or sub.node_id in seen:
                continue
            if sub.row_id:
                if sub.row_id != change.wire_id:
                    continue
            elif not any(s is not None and opts.matches(sub.filter, s) for s in (change.old, change.new)):
                continue
            seen.add(sub.node_id)
            if id(sub) in plural_lists:
                listing.add(sub.node_id)
            if sub.user_id not in users:
                users[sub.user_id] = load_user(sub.user_id)
            user = users[sub.user_id]
            readable = obj.logux_can_read(user)
            if change.kind != "changed" or change.old is None:
                if readable:
                    nodes.append(sub.node_id)
                continue
            if before is None:
                before = opts.instance_from_wire(change.wire_id, change.old)
            was_readable = before.logux_can_read(user)
            if readable:
                (nodes if was_readable else joined).append(sub.node_id)
            elif was_readable:
                gone.append(sub.node_id)
        meta: RawMeta = {**change.meta, "nodes": nodes}
        if change.exclude_client:
            meta["excludeClients"] = [change.exclude_client]
        pairs: list[tuple[Action, RawMeta]] = []
        if change.kind == "created":
            pairs += _subscribed_marks(opts, change, [n for n in nodes if n in listing])
        pairs.append((action, meta))
        if joined and change.new is not None:
            pairs += _subscribed_marks(opts, change, [n for n in joined if n in listing])
            action = {"type": f"{change.plural}/created", "id": change.wire_id, "fields": change.new}
            pairs.append((action, _extra_meta(change, joined)))
        if gone:
            action = {"type": f"{change.plural}/deleted", "id": change.wire_id}
            pairs.append((action, _extra_meta(change, gone)))
        addressed.append(pairs)
    return addressed


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
