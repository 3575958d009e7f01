"""Subscriptions a hostile client could never get through the subscribe command, stored directly."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from logux_sync.sync.keys import subscription_key
from logux_sync.sync.models import LoguxSubscription


def store_note_subscriptions(rows: list[tuple[str, dict[str, Any], str]]) -> None:
    """Remember `notes` subscriptions as raw rows, bypassing the subscribe command's checks (another
    user's filter or row, forged user ids): one node `<user_id>:h<i>:1` per `(user_id, filter,
    row_id)`, each with a filter key of its own, expiring in an hour."""
    expires = timezone.now() + datetime.timedelta(hours=1)
    for i, (user_id, wire_filter, row_id) in enumerate(rows):
        LoguxSubscription.objects.create(
            node_id=f"{user_id}:h{i}:1",
            user_id=user_id,
            plural="notes",
            filter_key=subscription_key("notes", wire_filter) + str(i),
            filter=wire_filter,
            row_id=row_id,
            expires_at=expires,
        )
