"""Sending the outbox to the Logux server: the per-process sender thread, `deliver()` (also run by
`manage.py logux_deliver`), and `capture()` for tests.

No database transaction or lock is held while a request is in flight: rows are claimed in a short
transaction, sent, then deleted or marked failed in another.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..client import add_batch
from ..compat import is_in_memory_sqlite
from ..conf import logux_settings
from ..exceptions import LoguxServerError
from ..protocol import Action, RawMeta
from .addressing import in_row_order
from .changes import payload_entries
from .clocks import now_ms
from .tables import LoguxLateDelivery, LoguxOutbox

logger = logging.getLogger("logux_sync.sync")


# The capture() blocks open in each thread: what a thread commits inside one is delivered at once in
# that thread and collected; the sender thread's own sends (of earlier commits) are never collected.
_capturing = threading.local()


def _captures() -> list[Captured]:
    captures: list[Captured] = _capturing.__dict__.setdefault("captures", [])
    return captures


# After a failed send, requests stop trying inline until this monotonic time; logux_deliver retries.
_inline_paused_until = 0.0


def resume_sending() -> None:
    """Forget the pause a failed send put on inline sending and the sender thread: the next commit
    sends at once (tests whose fake Logux server came back; rows already waiting keep their backoff)."""
    global _inline_paused_until
    _inline_paused_until = 0.0


def after_commit(batch: str, using: str) -> None:
    """A transaction wrote outbox rows (`batch`) and committed: hand them to the sender (DELIVERY).
    Under capture() they go at once, in this thread, and so they do on an in-memory SQLite database
    (tests), which another thread cannot share. With "worker", the workers are woken (PostgreSQL).
    After a failed send the sender thread waits for the backoff to pass, then sends everything due;
    inline sends are skipped until it passes (the rows wait for logux_deliver)."""
    if _captures():
        deliver(batch=batch, using=using)
        return
    mode = logux_settings.DELIVERY
    if mode == "worker":
        _notify_workers(using)
    elif mode == "thread" and not is_in_memory_sqlite(connections[using]):
        sender.wake(batch, using)  # the sender itself waits out a backoff
    elif time.monotonic() >= _inline_paused_until:
        deliver(batch=batch, using=using)
    else:
        _give_back([batch], using)


def claims_on_write() -> bool:
    """Whether a transaction's outbox rows are written claimed by its own process (see outbox._Wake):
    unless DELIVERY is "worker", that process's sender or request sends them after the commit."""
    mode: str = logux_settings.DELIVERY
    return mode != "worker"


def _give_back(batches: list[str], using: str) -> None:
    """Rows written claimed for this process (claims_on_write()) that it will not send now: due at
    once to whichever sender comes first."""
    LoguxOutbox.objects.using(using).filter(batch__in=batches, claim=F("batch")).update(
        claim="", next_attempt_at=timezone.now()
    )


class Sender:
    """The thread that delivers, in this process, the rows of each transaction that committed
    (DELIVERY = "thread"): a request hands its transaction's batch over and returns at once, and a
    slow or unreachable Logux server delays only this thread. Started on first use, also in each
    process forked after that; at exit it gets a few seconds to finish what it was handed (the rest
    waits in the outbox for logux_deliver)."""

    EXIT_WAIT = 10.0
    # Seconds without a batch after which the thread's database connections are closed (as
    # CONN_MAX_AGE says): while batches keep coming it keeps them, since opening one costs about as
    # much as reading the batch.
    IDLE_CLOSE = 1.0

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
            try:
                batch, using = self._queue.get(timeout=self.IDLE_CLOSE)
            except queue.Empty:
                close_old_connections()
                batch, using = self._queue.get()
            handled = 1
            try:
                pause = _inline_paused_until - time.monotonic()
                if pause <= 0:
                    deliver(batch=batch, using=using)
                else:
                    # A send failed lately: wait out the backoff, then send everything due (this batch,
                    # those handed over meanwhile, rows that waited), oldest first, in a few requests.
                    time.sleep(pause)
                    # The batches handed over are due like the rest (they were written claimed for us).
                    handed = [(batch, using), *self._take_queued()]
                    handled = len(handed)
                    for alias in {other for _, other in handed}:
                        _give_back([key for key, other in handed if other == alias], alias)
                    while time.monotonic() >= _inline_paused_until and deliver(using=using):
                        pass
            except Exception:
                logger.exception("logux_sync: the sender failed to deliver batch %s; it waits in the outbox", batch)
                close_old_connections()  # one that failed is not kept (CONN_MAX_AGE decides, as after a request)
            finally:
                with self._idle:
                    self._pending -= handled
                    self._idle.notify_all()

    def _take_queued(self) -> list[tuple[str, str]]:
        """Empty the queue: what it held is sent with the rows due. The batches it held."""
        taken = []
        while True:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                return taken


sender = Sender()


# The PostgreSQL channel a transaction that wrote outbox rows NOTIFYs (with DELIVERY "worker").
NOTIFY_CHANNEL = "logux_sync_outbox"


def _notify_workers(using: str) -> None:
    """On PostgreSQL, wake the logux_deliver workers LISTENing (see OutboxListener): rows were committed."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])


class OutboxListener:
    """A connection of its own that LISTENs for outbox writes on PostgreSQL (psycopg 3), so that
    logux_deliver wakes when a transaction that wrote rows commits instead of at its next poll. Where
    it cannot listen (another database or driver, or the connection failed), wait() just sleeps: the
    poll stays the fallback."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.conn: Any = None

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for a notification; True if one came."""
        if self.conn is None:
            self.conn = self._connect()
        if self.conn is None:
            time.sleep(seconds)
            return False
        try:
            return any(True for _ in self.conn.notifies(timeout=seconds, stop_after=1))
        except Exception as exc:  # the connection dropped: listen again on the next wait
            logger.warning("logux_sync: outbox listener lost its connection (%s); polling meanwhile", exc)
            self.close()
            return False

    def _connect(self) -> Any:
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            return None
        try:
            import psycopg  # the optional driver this needs: only PostgreSQL deployments have it

            conn = psycopg.connect(**connection.get_connection_params(), autocommit=True)
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception as exc:
            logger.warning("logux_sync: cannot LISTEN for outbox writes (%s); polling", exc)
            return None
        return conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


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
    """Send outbox entries (one transaction's, or the oldest due rows' up to about `limit` entries,
    widened to whole transactions) in one request, oldest first; delete the rows delivered. Returns how
    many entries were sent. A Logux outage is recorded on the rows (attempts, next attempt) and
    raised only with `raise_errors`.

    No transaction or lock is held while the request is in flight: the rows are claimed in a short
    transaction (their next attempt moved past the send's longest duration, under a claim token; on
    PostgreSQL rows another sender is claiming are skipped), then sent, then deleted or marked
    failed in another short transaction. Several senders can run at once without sending a row twice
    at the same moment."""
    global _inline_paused_until

    rows = _claim(batch, limit, using, ignore_backoff)
    if not rows:
        return 0
    entries = [payload_entries(row.payload) for row in rows]
    try:
        per_row = in_row_order(entries, using)
        pairs = [pair for row_pairs in per_row for pair in row_pairs]
        send(pairs)
    except LoguxServerError as exc:
        wait = _record_failure(rows, str(exc), using)
        # Paused from after the rows' next attempt was set: when the pause ends, they are due too.
        _inline_paused_until = time.monotonic() + wait.total_seconds()
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

    now = timezone.now()
    outbox = LoguxOutbox.objects.using(using)
    if batch is not None:
        # Written claimed for this process's sender (claims_on_write()): ours while the lease lasts.
        rows = list(outbox.filter(batch=batch, claim=batch, next_attempt_at__gt=now).order_by("id"))
        if rows:
            return rows
    token = uuid.uuid4().hex
    # Due rows; with ignore_backoff also those waiting for a retry, but never one another sender holds.
    available = Q(next_attempt_at__lte=now) | Q(claim="") if ignore_backoff else Q(next_attempt_at__lte=now)
    with transaction.atomic(using=using):
        _write_lock_first(using)
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


def _write_lock_first(using: str) -> None:
    """On SQLite, take the write lock at the start of a transaction that reads before it writes.

    A deferred SQLite transaction that has read and then writes must upgrade its lock, and when another
    connection is writing meanwhile (a request in this process) the upgrade fails at once with
    "database is locked", without waiting its busy timeout. A write as its first statement takes the
    lock (waiting the timeout if it must), as BEGIN IMMEDIATE would. It changes no row."""
    if connections[using].vendor == "sqlite":
        LoguxOutbox.objects.using(using).filter(pk=-1).update(claim="")


def _release(rows: list[LoguxOutbox], using: str) -> None:

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

    times = [meta["time"] for _, meta in pairs if isinstance(meta.get("time"), (int, float))]
    now = now_ms()
    if times and now - min(times) > LATE_MS:
        LoguxLateDelivery.objects.using(using).create(delivered_at=now, oldest_time=min(times))


def _record_failure(rows: list[LoguxOutbox], error: str, using: str) -> datetime.timedelta:
    """Give the rows back, due again after a backoff (one write: only rows still ours, since after a
    lease ran out another sender may hold them). Returns the wait before the next attempt."""
    wait = backoff(max(row.attempts for row in rows) + 1)
    LoguxOutbox.objects.using(using).filter(id__in=[row.pk for row in rows], claim=rows[0].claim).update(
        claim="",
        attempts=F("attempts") + 1,
        next_attempt_at=timezone.now() + wait,
        last_error=error[:1000],
    )
    return wait


def send(pairs: list[tuple[Action, RawMeta]]) -> None:
    captures = _captures()
    if captures:
        for captured in captures:
            captured.extend(pairs)
            captured.requests.append(pairs)
        return
    add_batch(pairs)


class Captured(list[tuple[Action, RawMeta]]):
    """What `capture()` collected: every `(action, meta)`, and `.requests`, one list per request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[list[tuple[Action, RawMeta]]] = []


@contextmanager
def capture() -> Iterator[Captured]:
    """Collect what synced models would send to Logux instead of sending it: the changes this thread
    commits inside the block, delivered at once whatever DELIVERY says."""
    sent = Captured()
    _captures().append(sent)
    try:
        yield sent
    finally:
        _captures().remove(sent)
