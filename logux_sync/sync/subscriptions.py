"""Remembered filter subscriptions to plural channels, shared by all workers through the database."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import logux_settings
from ..exceptions import SubscriptionLimit
from ..protocol import dumps
from .tables import LoguxLateDelivery, LoguxSubscription, LoguxTombstone

# Longest node, user and row id stored (the columns' max_length, which SQLite does not enforce).
MAX_ID_LENGTH = 255


def subscription_key(channel: str, wire_filter: dict[str, Any]) -> str:
    """What identifies one subscription of a node: a digest of the channel it subscribed to and its
    filter, so the stored key has one length on every database whatever the client sent."""
    return hashlib.sha256(dumps([channel, wire_filter]).encode("utf-8", "surrogatepass")).hexdigest()


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


def active_subscriptions(rows: Iterable[tuple[str, str]]) -> dict[str, list[LoguxSubscription]]:
    """Unexpired list subscriptions of these plurals and row subscriptions of these `(plural, id)`
    rows, by plural, in one query."""
    rows = list(rows)
    plurals = {plural for plural, _ in rows}
    match = Q(row_id="") | Q(row_id__in={row_id for _, row_id in rows})
    result: dict[str, list[LoguxSubscription]] = {}
    found = LoguxSubscription.objects.filter(match, plural__in=plurals, expires_at__gt=timezone.now())
    for sub in found.only("node_id", "user_id", "plural", "filter", "row_id", "filter_key"):
        result.setdefault(sub.plural, []).append(sub)
    return result


def is_plural_list(sub: LoguxSubscription) -> bool:
    """Is this a subscription to the plural channel with a filter (`createFilter`), whose load marks
    each row's channel subscribed on the client (not a row, nor a derived channel)?"""
    return not sub.row_id and sub.filter_key == subscription_key(sub.plural, sub.filter)


def prune() -> int:
    """Delete expired subscriptions, and tombstones older than TOMBSTONE_TTL."""
    now = timezone.now()
    count = LoguxSubscription.objects.filter(expires_at__lte=now).delete()[0]
    old = now - datetime.timedelta(seconds=logux_settings.TOMBSTONE_TTL)
    count += LoguxTombstone.objects.filter(created_at__lte=old).delete()[0]
    count += LoguxLateDelivery.objects.filter(delivered_at__lte=old.timestamp() * 1000).delete()[0]
    return int(count)
