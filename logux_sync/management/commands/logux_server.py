"""`manage.py logux_server`: run the logux-sync bridge (@logux/server 0.14) in front of this Django."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import semantic_version  # type: ignore[import-untyped]
from django.core.management.base import BaseCommand, CommandError, CommandParser

from logux_sync.auth import parse_range
from logux_sync.conf import logux_settings

BRIDGE_DIR = Path(__file__).resolve().parents[2] / "bridge"
MAX_MAJOR = 1000


def bridge_subprotocols(subprotocol: str, supports: str) -> tuple[int, int]:
    """Logux 0.14's numbers for Django's semver settings: `subprotocol` is SUBPROTOCOL's major, and
    `minSubprotocol` the lowest major N whose `N.0.0` satisfies SUPPORTS (the bridge tells Django a
    client's number N as `N.0.0`, so Django's own check stays the one that decides)."""
    try:
        current = semantic_version.Version.coerce(str(subprotocol)).major
        spec = parse_range(supports)
    except ValueError as exc:
        raise CommandError(f"LOGUX_SYNC SUBPROTOCOL/SUPPORTS cannot be mapped to Logux numbers: {exc}") from exc
    for major in range(0, MAX_MAJOR):
        if semantic_version.Version(major=major, minor=0, patch=0) in spec:
            return current, major
    raise CommandError(
        f"LOGUX_SYNC['SUPPORTS'] = {supports!r} admits no version N.0.0: clients of @logux/client >= 0.22 "
        "send a whole number N, which the bridge passes to Django as N.0.0. Use a range such as '^1.0.0'."
    )


def _default_port() -> int:
    port = urlsplit(logux_settings.URLS[0]).port if logux_settings.URLS else None
    return port or 31337


class Command(BaseCommand):
    help = (
        "Run the logux-sync bridge: @logux/server 0.14 relaying auth, actions and subscriptions to this "
        "Django's Logux endpoint. Needs Node 20+ and `npm ci --prefix <logux_sync>/bridge`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend", default="http://127.0.0.1:8000/logux/", help="URL of this Django's Logux endpoint."
        )
        parser.add_argument("--host", default="127.0.0.1", help="Host the bridge binds (default 127.0.0.1).")
        parser.add_argument("--port", type=int, help="Port of the bridge (default: the port of the first URLS entry).")
        parser.add_argument("--control-mask", default="127.0.0.1/8", help="IPs (CIDR, comma-separated) that may add().")
        parser.add_argument("--batch-size", type=int, default=50, help="Most commands in one request to Django.")
        parser.add_argument(
            "--batch-wait",
            type=int,
            default=2,
            help="Milliseconds commands gather while a request to Django is in flight.",
        )
        parser.add_argument("--logger", choices=["human", "json"], default="human")
        parser.add_argument(
            "--log-level", choices=["info", "warn"], default="info", help="info logs every action; warn only problems."
        )
        parser.add_argument("--node", default="node", help="The Node.js executable.")

    def handle(self, *args: Any, **options: Any) -> None:
        node = shutil.which(options["node"])
        if node is None:
            raise CommandError(f"Node.js ({options['node']!r}) was not found: install Node 20 or later.")
        if not (BRIDGE_DIR / "node_modules" / "@logux" / "server").is_dir():
            raise CommandError(
                f"The bridge's Node packages are missing. Run:\n    npm ci --omit=dev --prefix {BRIDGE_DIR}"
            )
        secret = logux_settings.SECRET
        if not secret:
            raise CommandError("LOGUX_SYNC['SECRET'] (or LOGUX_CONTROL_SECRET) is not set.")
        current, minimum = bridge_subprotocols(logux_settings.SUBPROTOCOL, logux_settings.SUPPORTS)
        argv = [
            node,
            str(BRIDGE_DIR / "bridge.mjs"),
            f"--backend={options['backend']}",
            f"--host={options['host']}",
            f"--port={options['port'] or _default_port()}",
            f"--control-mask={options['control_mask']}",
            f"--batch-size={options['batch_size']}",
            f"--batch-wait={options['batch_wait']}",
            f"--logger={options['logger']}",
            f"--log-level={options['log_level']}",
            f"--subprotocol={current}",
            f"--min-subprotocol={minimum}",
        ]
        # The secret goes by environment, not argv, which every local user can read with `ps`.
        env = {**os.environ, "LOGUX_CONTROL_SECRET": secret}
        backend = options["backend"]
        self.stdout.write(f"logux-sync bridge: subprotocol {current} (accepts >= {minimum}), Django {backend}")
        self.stdout.flush()
        os.execve(node, argv, env)
