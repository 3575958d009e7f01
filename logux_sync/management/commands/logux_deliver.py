"""`manage.py logux_deliver`: send the outbox to the Logux server, retrying with backoff."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, close_old_connections

from logux_sync.exceptions import LoguxServerError
from logux_sync.sync import broadcast
from logux_sync.sync.models import LoguxOutbox
from logux_sync.sync.subscriptions import prune


class Command(BaseCommand):
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
        while not self.stopping:
            close_old_connections()
            try:
                count = broadcast.deliver(
                    limit=options["batch_size"],
                    using=options["database"],
                    ignore_backoff=options["ignore_backoff"],
                    raise_errors=True,
                )
            except LoguxServerError as exc:
                if options["once"]:
                    raise CommandError(f"{exc}; {sent} action(s) delivered before it") from exc
                self.stderr.write(str(exc))
                time.sleep(options["interval"])
                continue
            sent += count
            if time.monotonic() - last_prune > 60:
                prune()
                last_prune = time.monotonic()
            if count:
                continue
            if options["once"]:
                break
            time.sleep(options["interval"])
        rows = LoguxOutbox.objects.using(options["database"]).only("payload")
        waiting = sum(len(broadcast.payload_entries(row.payload)) for row in rows.iterator())
        self.stdout.write(f"Delivered {sent} action(s); {waiting} waiting.")

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
