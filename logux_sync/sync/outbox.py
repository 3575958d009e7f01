"""Writing changes to the outbox, in the transaction that makes them.

Each synced save INSERTs its change at once, so it commits or rolls back with the row (and with any
savepoint) through the database itself. An on_commit callback then hands the transaction's batch to
the sender (see delivery.after_commit()).
"""

from __future__ import annotations

import datetime
import functools
import threading
import uuid
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from ..protocol import Action, RawMeta
from . import delivery
from .changes import Change, Entry, is_muted, payload_text
from .clocks import derived_id, server_meta
from .tables import LoguxOutbox, LoguxTombstone

# A deletion goes out a second time this long (seconds) after the first, see queue_changes().
DELETE_ECHO_S = 10


def queue_changes(entries: list[Entry], using: str = DEFAULT_DB_ALIAS) -> None:
    """Record changes (change_entry()) in the outbox; they are sent when the surrounding transaction
    commits. A deletion also leaves a tombstone, and is sent a second time later."""
    if entries and not is_muted():
        enqueue(entries, using)
        deleted = [Change.from_json(e) for e in entries if isinstance(e, list) and e[1] == "deleted"]
        if deleted:
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
    _insert(wake.cursor(), entries, wake.batch, wake.now, wake.due, claim=wake.claim)
    # Registered with every write: Django drops the callbacks of a savepoint that rolls back, and
    # only the transaction's remaining writes must wake the sender. It runs once.
    transaction.on_commit(wake, using=using, robust=True)


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
        # The rows' created_at: when the transaction wrote its first entry.
        now = timezone.now()
        self.now = self.due = self.connection.ops.adapt_datetimefield_value(now)
        self.claim = ""
        if delivery.claims_on_write():
            # Written already claimed (the batch key is the claim) for this process's sender, with a
            # lease: it sends them after the commit without a claim transaction of its own. Should the
            # process die first, they are due to logux_deliver when the lease ends.
            self.claim = self.batch
            self.due = self.connection.ops.adapt_datetimefield_value(now + delivery.lease())
        self.done = False
        self._cursor: Any = None

    @classmethod
    def current(cls, using: str) -> _Wake:
        wakes: dict[str, _Wake] = cls._local.__dict__.setdefault("wakes", {})
        wake = wakes.get(using)
        if wake is None or wake.done:
            wake = wakes[using] = cls(using)
        return wake

    def cursor(self) -> Any:
        """One cursor for the transaction's writes (a cursor per save costs a tenth of the save). A
        new database connection forgets the wakes of the old one (see _forget_wakes)."""
        if self._cursor is None:
            self._cursor = self.connection.cursor()
        return self._cursor

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        if self._cursor is not None:
            self._cursor.close()
        delivery.after_commit(self.batch, self.using)


def _forget_wakes(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A connection was opened in this thread: a wake of its alias (of a transaction that rolled back,
    so never called) holds a cursor of the connection before it."""
    _Wake._local.__dict__.get("wakes", {}).pop(connection.alias, None)


connection_created.connect(_forget_wakes, dispatch_uid="logux_sync.sync.outbox.forget_wakes")


_INSERT_COLUMNS = ("payload", "batch", "created_at", "attempts", "next_attempt_at", "last_error", "claim")


@functools.lru_cache(maxsize=8)
def _insert_sql(vendor: str, using: str) -> str:
    """The outbox INSERT for a backend (the payload column is JSON text: see OutboxPayload)."""

    quote = connections[using].ops.quote_name
    opts = LoguxOutbox._meta
    columns = ", ".join(quote(opts.get_field(name).column) for name in _INSERT_COLUMNS)  # type: ignore[union-attr, arg-type]
    placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
    return f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({placeholders})"


OutboxRow = tuple[str, str, Any, int, Any, str, str]


# Entries per outbox row at most (logux_deliver's default batch): a large transaction's entries go in
# several rows, all delivered in its one request, so that no row's JSON grows without bound.
ROW_ENTRIES = 500


def _row(entries: list[Entry], key: str, now: Any, due: Any, echo: bool, claim: str) -> OutboxRow:
    """One outbox row's values: entries of one transaction (or of the part of it written at once),
    in order, made `now`, first due `due` and claimed by `claim` ("": nobody). Many changes per row
    rather than one: a row's INSERT (three indexes) costs several times a change's encoding."""
    payload: dict[str, Any] = {"entries": entries}
    if echo:
        payload["echo"] = True
    return (payload_text(payload), key, now, 0, due, "", claim)


def _insert(
    cursor: Any, entries: list[Entry], key: str, now: Any, due: Any, echo: bool = False, claim: str = ""
) -> None:
    """Write `entries` in order, ROW_ENTRIES to a row."""
    if len(entries) <= ROW_ENTRIES:
        rows = [_row(entries, key, now, due, echo, claim)]
    else:
        step = ROW_ENTRIES
        rows = [_row(entries[i : i + step], key, now, due, echo, claim) for i in range(0, len(entries), step)]
    # Plain SQL: the ORM's insert machinery costs more than the row's SQL.
    sql = _insert_sql(cursor.db.vendor, cursor.db.alias)
    if len(rows) == 1:
        cursor.execute(sql, rows[0])
    else:
        cursor.executemany(sql, rows)


def add_on_commit(action: Action, meta: RawMeta | None = None, using: str = DEFAULT_DB_ALIAS) -> None:
    """`add()` through the outbox: the action is written in the current transaction (at once in
    autocommit) and goes to Logux after the commit, in the request of the transaction's other
    actions; while the server is unreachable it waits and is retried like a model change. Its meta
    `id` and `time` are fixed now unless given. A rolled-back transaction sends nothing."""

    raw_meta: RawMeta = {**server_meta(), **(meta or {})}
    entry = {"raw": [action, raw_meta]}
    payload_text(entry)  # one that cannot be stored fails here, not in the commit
    enqueue([entry], using)
