"""Remembered filter subscriptions to plural channels, shared by all workers through the database."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..protocol import dumps
from .models import LoguxSubscription


def remember(plural: str, node_id: str, user_id: str | None, wire_filter: dict[str, Any], ttl: int) -> None:
    """Record (or refresh) that `node_id` subscribed to `plural` with `wire_filter`."""
    key = dumps(wire_filter)
    expires = timezone.now() + datetime.timedelta(seconds=ttl)
    defaults = {"user_id": user_id or "", "filter": wire_filter, "expires_at": expires}
    existing = LoguxSubscription.objects.filter(plural=plural, node_id=node_id, filter_key=key)
    if existing.update(**defaults):
        return
    try:
        with transaction.atomic():
            LoguxSubscription.objects.create(plural=plural, node_id=node_id, filter_key=key, **defaults)
    except IntegrityError:  # another worker inserted it first: refresh theirs
        existing.update(**defaults)


def forget(node_id: str, plural: str | None = None, wire_filter: dict[str, Any] | None = None) -> int:
    """Forget a node's subscriptions (all of them, or one plural / one filter)."""
    qs = LoguxSubscription.objects.filter(node_id=node_id)
    if plural is not None:
        qs = qs.filter(plural=plural)
    if wire_filter is not None:
        qs = qs.filter(filter_key=dumps(wire_filter))
    return int(qs.delete()[0])


def active_subscriptions(plurals: Iterable[str]) -> dict[str, list[LoguxSubscription]]:
    """Unexpired subscriptions by plural, in one query."""
    result: dict[str, list[LoguxSubscription]] = {}
    rows = LoguxSubscription.objects.filter(plural__in=list(plurals), expires_at__gt=timezone.now())
    for row in rows.only("node_id", "user_id", "plural", "filter"):
        result.setdefault(row.plural, []).append(row)
    return result


def prune() -> int:
    """Delete expired subscriptions."""
    return int(LoguxSubscription.objects.filter(expires_at__lte=timezone.now()).delete()[0])
