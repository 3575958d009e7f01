"""`manage.py logux_deliver`: send the outbox to the Logux server, retrying with backoff."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, close_old_connections, connections

from logux_sync.exceptions import LoguxServerError
from logux_sync.sync import delivery
from logux_sync.sync.changes import payload_entries
from logux_sync.sync.subscriptions import prune
from logux_sync.sync.tables import LoguxOutbox

logger = logging.getLogger("logux_sync.deliver")

# Longest pause, in seconds, between two attempts while the database fails.
MAX_PAUSE = 30.0
# With --once, the database faults in a row after which the run gives up (a cron run should end).
ONCE_ATTEMPTS = 5


class Command(BaseCommand):
    # No system checks at start: on Django 6.1 they query the database (the JSONField check), and a
    # worker started while the database is locked or away must wait for it, not exit (`manage.py
    # check` and `migrate` run them).
    requires_system_checks: list[str] = []
    help = (
        "Deliver actions waiting in the outbox to the Logux server. Runs until SIGTERM/SIGINT "
        "(finishing the batch in hand), or drains once with --once (for cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain what is due now, then exit.")
        parser.add_argument("--batch-size", type=int, default=500, help="Actions per request (default 500).")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds to wait when idle (default 1).")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias of the outbox.")
        parser.add_argument(
            "--ignore-backoff", action="store_true", help="Retry failed actions now instead of at their next attempt."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        self.stopping = False
        if not options["once"]:
            signal.signal(signal.SIGTERM, self._stop)
            signal.signal(signal.SIGINT, self._stop)
        sent = 0
        last_prune = 0.0
        faults = 0
        # On PostgreSQL an idle worker waits for a NOTIFY of new rows (with DELIVERY "worker"), polling
        # every --interval as the fallback.
        self.listener = None if options["once"] else delivery.OutboxListener(options["database"])
        while not self.stopping:
            close_old_connections()
            try:
                count = delivery.deliver(
                    limit=options["batch_size"],
                    using=options["database"],
                    ignore_backoff=options["ignore_backoff"],
                    raise_errors=True,
                )
                if time.monotonic() - last_prune > 60:
                    prune()
                    last_prune = time.monotonic()
            except LoguxServerError as exc:
                if options["once"]:
                    raise CommandError(f"{exc}; {sent} action(s) delivered before it") from exc
                self.stderr.write(str(exc))
                self._pause(options["interval"])
                continue
            except DatabaseError as exc:
                # A passing fault (SQLite locked by another writer past its timeout, a dropped or
                # terminated connection) must not end the worker: its rows would wait for a restart.
                faults += 1
                self._reconnect(options["database"])
                if options["once"] and faults >= ONCE_ATTEMPTS:
                    raise CommandError(f"database error: {exc}; {sent} action(s) delivered before it") from exc
                pause = min(MAX_PAUSE, max(options["interval"], 0.1) * 2 ** (faults - 1))
                logger.warning("logux_deliver: database error (%s); trying again in %.1f s", exc, pause)
                self._pause(pause)
                continue
            faults = 0
            sent += count
            if count:
                continue
            if options["once"]:
                break
            self._idle(options["interval"])
        if self.listener is not None:
            self.listener.close()
        try:
            rows = LoguxOutbox.objects.using(options["database"]).only("payload")
            waiting = str(sum(len(payload_entries(row.payload)) for row in rows.iterator()))
        except DatabaseError:  # stopped while the database is away: still a clean stop
            waiting = "an unknown number of"
        self.stdout.write(f"Delivered {sent} action(s); {waiting} waiting.")

    def _reconnect(self, using: str) -> None:
        """Drop the connection, so that Django opens a new one at the next query."""
        with contextlib.suppress(DatabaseError):  # closing a connection the server dropped may fail too
            connections[using].close()

    def _idle(self, seconds: float) -> None:
        """Wait for new outbox rows: a NOTIFY where the listener has one, else `seconds`, in short
        slices that a SIGTERM/SIGINT cuts short."""
        if self.listener is None:
            self._pause(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            if self.listener.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                return

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up for SIGTERM/SIGINT: a long backoff must not delay a clean stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
