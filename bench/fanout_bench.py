"""Fan-out: the cost of addressing ONE change as the subscriptions and their users grow (issue 14)
------------------------------------------------------------------------------------------------

    python bench/fanout_bench.py               # SQLite in a temporary file
    python bench/fanout_bench.py --postgres    # a throw-away database on the PostgreSQL at 127.0.0.1:5432
    python bench/fanout_bench.py --quick       # N up to 10,000
    python bench/fanout_bench.py --fanout both # LOGUX_SYNC["FANOUT"] "nodes" and "bridge" side by side

N list subscriptions (`cards` with filter {board: 1}, which the changed row matches) of U users, one
change of one `Card` (bench/syncapp). Three ways to decide who reads it:

- `public`: `LoguxMeta.readers` returns `Q()` (every active user): all N nodes are addressed;
- `private`: `readers` returns `Q(pk=owner)`: only the owner's nodes (N/U of them) are addressed;
- `can_read`: the hook taken away, so `can_read` is asked per distinct user (users loaded in bulk),
  the row public: all N nodes;
- `everyone`: `readers` returns True (every subscriber): with FANOUT "nodes" all N nodes are addressed,
  with "bridge" the change goes out once for the bridge to fan out (`nodes` 0: the bridge finds them,
  `node bench/bridge_fanout_bench.mjs` measures that side).

`--fanout` picks LOGUX_SYNC["FANOUT"] ("nodes", the default, "bridge", or "both"). With "bridge",
`public` and `private` go out once too, naming the subscribed users their Q selects (`users`: U for
`public`, 1 for `private`) instead of their nodes; `can_read` is addressed by Django in both modes
and runs in "nodes" only.

Printed per case: `address` = `address_each()` alone (ms, median of 5), `after commit` = from the end of
the save's `transaction.atomic()` block to the captured request (the outbox claim, addressing, the
capture, the delete; median of 5), the queries of `address_each()`, the nodes addressed and the users
listed for the bridge. Targets:
after commit < 20 ms at 10,000 subscriptions and < 200 ms at 100,000 (`public`, `private`), queries
independent of N and U.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from sync_bench import ROOT, database, setup_django  # noqa: E402

CASES = [(10, 2), (1_000, 2), (1_000, 1_000), (10_000, 2), (10_000, 1_000), (100_000, 1_000), (100_000, 10_000)]
TARGETS = {10_000: 20.0, 100_000: 200.0}


def populate(subscriptions: int, users: int) -> Any:
    """N subscriptions of U users to the list the card is in; returns the card."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone
    from syncapp.models import Card

    from logux_sync import muted
    from logux_sync.sync.keys import match_key, shape_key, subscription_key
    from logux_sync.sync.models import LoguxSubscription
    from logux_sync.sync.subscriptions import remember

    LoguxSubscription.objects.all().delete()
    with muted():
        Card.objects.all().delete()
    User.objects.all().delete()
    people = User.objects.bulk_create([User(username=f"u{i}") for i in range(users)], batch_size=2000)
    wire_filter = {"board": 1}
    remember("cards", f"{people[0].pk}:first:1", str(people[0].pk), wire_filter, 3600)  # the filter's shape
    expires = timezone.now() + datetime.timedelta(hours=1)
    keys = {
        "filter_key": subscription_key("cards", wire_filter),
        "match_key": match_key(wire_filter),
        "shape_key": shape_key(wire_filter),
    }
    LoguxSubscription.objects.bulk_create(
        [
            LoguxSubscription(
                node_id=f"{people[i % users].pk}:c{i}:1",
                user_id=str(people[i % users].pk),
                plural="cards",
                filter=wire_filter,
                plural_list=True,
                expires_at=expires,
                **keys,
            )
            for i in range(1, subscriptions)
        ],
        batch_size=2000,
    )
    if connection.vendor == "postgresql":
        # The statistics autovacuum would gather after such a load: without them the planner takes the
        # just-filled tables for empty and joins subscriptions and users by nested loop (10,000
        # subscriptions of 1,000 users: about 0.6 s instead of 7 ms).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    with muted():
        return Card.objects.create(id="c1", title="t", board=1, owner=people[0])


def readers_hook(name: str) -> Any:
    """The `readers` hook of a case (see the docstring), or None for `can_read`."""
    from django.db.models import Q

    if name == "everyone":
        return staticmethod(lambda card: True)
    if name == "can_read":
        return None
    return staticmethod(lambda card: Q(pk=card.owner_id) if card.private else Q())


def measure(card: Any, private: bool, reps: int) -> tuple[float, float, int, int, int]:
    """(address ms, after-commit ms, queries, nodes, users listed) for one change of `card`, medians
    of `reps`."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from logux_sync import muted
    from logux_sync.sync import addressing
    from logux_sync.sync.changes import Change
    from logux_sync.testing import capture

    card.private = private
    with muted():
        card.save()
    changes: list[Change] = []
    original = addressing.address_each

    def spy(batch: list[Change], using: str = "default") -> Any:
        changes[:] = batch
        return original(batch, using)

    addressing.address_each = spy  # type: ignore[assignment]
    after: list[float] = []
    try:
        for i in range(reps):
            with capture() as sent:
                with transaction.atomic():
                    card.title = f"t{i}"
                    card.save()
                    start = time.perf_counter()  # the commit and its on_commit work follow
                after.append((time.perf_counter() - start) * 1000)
            assert len(sent.requests) == 1
    finally:
        addressing.address_each = original  # type: ignore[method-assign]
    timings = []
    for _ in range(reps):
        start = time.perf_counter()
        addressed = original(changes)
        timings.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        addressed = original(changes)
    nodes = sum(len(meta.get("nodes", ())) for _, meta in addressed[0])
    listed = sum(len(meta.get("logux_sync", {}).get("users", ())) for _, meta in addressed[0])
    return statistics.median(timings), statistics.median(after), len(queries), nodes, listed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", action="store_true", help="on a throw-away PostgreSQL database")
    parser.add_argument("--quick", action="store_true", help="N up to 10,000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--fanout", choices=["nodes", "bridge", "both"], default="nodes", help="LOGUX_SYNC['FANOUT']")
    args = parser.parse_args()
    cases = [c for c in CASES if c[0] <= 10_000] if args.quick else CASES
    modes = ["nodes", "bridge"] if args.fanout == "both" else [args.fanout]
    missed = []
    with tempfile.TemporaryDirectory(prefix="logux-fanout-") as tmp, database(args.postgres) as pg_name:
        setup_django(f"{tmp}/db.sqlite3", 9, str(ROOT), pg_name)
        from django.conf import settings
        from django.test import override_settings
        from syncapp.models import Card

        print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; one change, N subscriptions of U users")
        header = f"{'N':>8} {'U':>6}  {'FANOUT':<7}{'readers':<9}{'address ms':>11}{'after commit ms':>17}"
        print(header + f"{'queries':>9}{'nodes':>8}{'users':>7}")
        for subscriptions, users in cases:
            card = populate(subscriptions, users)
            for mode in modes:
                names = (
                    ["public", "private", "can_read", "everyone"]
                    if mode == "nodes"
                    else ["public", "private", "everyone"]
                )
                for name in names:
                    original = Card.LoguxMeta.readers  # type: ignore[attr-defined]
                    hook = readers_hook(name)
                    if hook is None:
                        del Card.LoguxMeta.readers  # type: ignore[attr-defined]
                    else:
                        Card.LoguxMeta.readers = hook  # type: ignore[attr-defined]
                    try:
                        with override_settings(LOGUX_SYNC={**settings.LOGUX_SYNC, "FANOUT": mode}):
                            address, after, queries, nodes, listed = measure(card, name == "private", args.reps)
                    finally:
                        Card.LoguxMeta.readers = original  # type: ignore[attr-defined]
                    target = TARGETS.get(subscriptions) if name in ("public", "private") else None
                    flag = ""
                    if target is not None and after > target:
                        flag = f"  > {target:.0f} ms target"
                        missed.append((subscriptions, users, mode, name))
                    row = f"{subscriptions:>8} {users:>6}  {mode:<7}{name:<9}{address:>11.2f}{after:>17.2f}"
                    print(row + f"{queries:>9}{nodes:>8}{listed:>7}" + flag)
    if missed:
        print("missed targets:", missed)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
