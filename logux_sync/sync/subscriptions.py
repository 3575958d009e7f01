"""Remembered filter subscriptions to plural channels, shared by all workers through the database."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ..conf import logux_settings
from ..exceptions import SubscriptionLimit
from .keys import subscription_key
from .tables import LoguxFilterShape, LoguxLateDelivery, LoguxSubscription, LoguxTombstone

# Longest node, user and row id stored (the columns' max_length, which SQLite does not enforce).
MAX_ID_LENGTH = 255


def filter_shapes(plurals: Iterable[str]) -> dict[str, list[list[str]]]:
    """The field-name sets of the remembered list filters of these plurals, in one query."""
    shapes: dict[str, list[list[str]]] = {}
    for plural, fields in LoguxFilterShape.objects.filter(plural__in=set(plurals)).values_list("plural", "fields"):
        shapes.setdefault(plural, []).append(fields)
    return shapes


def subscribers(targets: Iterable[tuple[str, str, Iterable[str]]]) -> QuerySet[LoguxSubscription]:
    """The unexpired subscriptions of each `(plural, row id, match keys)`'s row and of the plural's
    lists whose filter has one of those match keys (for several targets, maybe of another target), in
    one query (indexed: `(plural, row_id)`
    and `(plural, match_key)`)."""
    rows: dict[str, set[str]] = {}
    lists: dict[str, set[str]] = {}
    for plural, row_id, keys in targets:
        rows.setdefault(plural, set()).add(row_id)
        lists.setdefault(plural, set()).update(keys)
    match = Q(pk__in=[])
    for plural, row_ids in rows.items():
        match |= Q(plural=plural) & (Q(row_id__in=row_ids) | Q(row_id="", match_key__in=lists[plural]))
    return LoguxSubscription.objects.filter(match, expires_at__gt=timezone.now())


def _check_limits(node_id: str, user_id: str, row_id: str) -> None:
    """Raise SubscriptionLimit when a new subscription would go over a limit."""
    for name, value in (("node id", node_id), ("user id", user_id), ("row id", row_id)):
        if len(value) > MAX_ID_LENGTH:
            raise SubscriptionLimit(f"the {name} is longer than {MAX_ID_LENGTH} characters")
    active = LoguxSubscription.objects.filter(expires_at__gt=timezone.now())
    per_node = logux_settings.MAX_SUBSCRIPTIONS_PER_NODE
    if active.filter(node_id=node_id).count() >= per_node:
        raise SubscriptionLimit(f"this node has {per_node} subscriptions (LOGUX_SYNC['MAX_SUBSCRIPTIONS_PER_NODE'])")
    per_user = logux_settings.MAX_SUBSCRIPTIONS_PER_USER
    if user_id and active.filter(user_id=user_id).count() >= per_user:
        raise SubscriptionLimit(f"this user has {per_user} subscriptions (LOGUX_SYNC['MAX_SUBSCRIPTIONS_PER_USER'])")


def remember(
    plural: str,
    node_id: str,
    user_id: str | None,
    wire_filter: dict[str, Any],
    ttl: int,
    row_id: str = "",
    channel: str | None = None,
) -> None:
    """Record (or refresh) that `node_id` subscribed to `channel` (the plural by default): to one row,
    or to the `plural` rows matching `wire_filter`. A new subscription over a limit raises
    SubscriptionLimit; refreshing one that is remembered always works."""
    key = subscription_key(channel or (f"{plural}/{row_id}" if row_id else plural), wire_filter)
    expires = timezone.now() + datetime.timedelta(seconds=ttl)
    # A new list subscription gets its match keys (and its filter's shape) in LoguxSubscription.save().
    defaults = {"user_id": user_id or "", "filter": wire_filter, "expires_at": expires, "row_id": row_id}
    existing = LoguxSubscription.objects.filter(plural=plural, node_id=node_id, filter_key=key)
    if existing.update(**defaults):
        return
    _check_limits(node_id, user_id or "", row_id)
    try:
        with transaction.atomic():
            LoguxSubscription.objects.create(plural=plural, node_id=node_id, filter_key=key, **defaults)
    except IntegrityError:  # another worker inserted it first: refresh theirs
        existing.update(**defaults)


def forget(node_id: str, plural: str | None = None, key: str | None = None) -> int:
    """Forget a node's subscriptions: all of them, those of one plural, or one (`subscription_key`)."""
    qs = LoguxSubscription.objects.filter(node_id=node_id)
    if plural is not None:
        qs = qs.filter(plural=plural)
    if key is not None:
        qs = qs.filter(filter_key=key)
    return int(qs.delete()[0])


def prune() -> int:
    """Delete expired subscriptions, and tombstones older than TOMBSTONE_TTL."""
    now = timezone.now()
    count = LoguxSubscription.objects.filter(expires_at__lte=now).delete()[0]
    old = now - datetime.timedelta(seconds=logux_settings.TOMBSTONE_TTL)
    count += LoguxTombstone.objects.filter(created_at__lte=old).delete()[0]
    # A shape no list uses any more costs each change of its plural a digest. One touched in the last
    # hour may belong to a subscription being remembered right now: keep it.
    used = set(LoguxSubscription.objects.filter(row_id="").values_list("plural", "shape_key").distinct())
    stale = LoguxFilterShape.objects.filter(touched_at__lte=now - datetime.timedelta(hours=1))
    unused = [pk for pk, plural, key in stale.values_list("pk", "plural", "key") if (plural, key) not in used]
    count += LoguxFilterShape.objects.filter(pk__in=unused).delete()[0]
    count += LoguxLateDelivery.objects.filter(delivered_at__lte=old.timestamp() * 1000).delete()[0]
    return int(count)
