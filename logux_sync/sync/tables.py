"""Model sync's own tables: remembered subscriptions, the outbox, tombstones and late deliveries."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils import timezone

from .changes import payload_text


class LoguxSubscription(models.Model):
    """A node subscribed to a synced model's rows (a row, a filtered list or a derived channel).
    Changes are addressed to the node, and only while its user may read the row.

    Shared by every worker through the database; refreshed on resubscribe, forgotten after `expires_at`.
    """

    node_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255, blank=True)
    plural = models.CharField(max_length=255)
    # subscriptions.subscription_key(): a SHA-256 digest of the channel and filter.
    filter_key = models.CharField(max_length=64)
    filter = models.JSONField(default=dict)
    # Set for a subscription to one row's channel (`tasks/<id>`), empty for a list or derived channel.
    row_id = models.CharField(max_length=255, blank=True, default="")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "logux_sync_models"
        db_table = "logux_sync_loguxsubscription"
        constraints = [
            models.UniqueConstraint(fields=["plural", "node_id", "filter_key"], name="logux_sync_subscription_unique")
        ]
        indexes = [
            models.Index(fields=["plural", "expires_at"], name="logux_sync_sub_plural_exp"),
            models.Index(fields=["plural", "row_id"], name="logux_sync_sub_row"),
            # The per-node and per-user limits count these.
            models.Index(fields=["node_id", "expires_at"], name="logux_sync_sub_node"),
            models.Index(fields=["user_id", "expires_at"], name="logux_sync_sub_user"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} → {self.plural} {self.filter_key}"


class OutboxPayload(models.TextField):  # type: ignore[type-arg]
    """A JSON value kept as text. Only logux_sync reads it, whole: a JSON column would have the
    database parse every payload written (SQLite's JSON_VALID check, PostgreSQL's jsonb), which cost
    more than the rest of the row's INSERT."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else payload_text(value)


class LoguxOutbox(models.Model):
    """An action waiting for the Logux server, written in the transaction of the change that made it."""

    payload = OutboxPayload()
    # The transaction that wrote it: its rows are delivered together, in one request. No index on it
    # nor on the next attempt: every synced save writes a row, and the table is small, its rows
    # deleted as soon as they are delivered (a sender reads it in id order).
    batch = models.CharField(max_length=32, default="")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    # The token of the sender that claimed the row: it sends it without holding a lock (see deliver()).
    claim = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        app_label = "logux_sync_models"
        db_table = "logux_sync_loguxoutbox"

    def __str__(self) -> str:
        return f"outbox #{self.pk} ({self.attempts} attempts)"


class LoguxTombstone(models.Model):
    """A deleted synced row: its last synced values and the delete's Logux time, so a list subscriber
    that resubscribes with `since` learns of deletions it missed. Pruned after `TOMBSTONE_TTL`."""

    plural = models.CharField(max_length=255)
    row_id = models.CharField(max_length=255)
    state = models.JSONField(default=dict)
    time = models.FloatField()
    edit_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        app_label = "logux_sync_models"
        db_table = "logux_sync_loguxtombstone"
        indexes = [models.Index(fields=["plural", "time"], name="logux_sync_tomb_plural_time")]

    def __str__(self) -> str:
        return f"{self.plural}/{self.row_id} deleted at {self.time}"


class LoguxLateDelivery(models.Model):
    """A delivery that carried changes made well before it (the Logux server was down or slow).

    A client resubscribing with `since` may have seen newer actions before these arrived, so the
    changes it is owed start at `oldest_time`, not at `since` (see `SyncedChannel.since_time`)."""

    delivered_at = models.FloatField(db_index=True)  # Logux ms
    oldest_time = models.FloatField()

    class Meta:
        app_label = "logux_sync_models"
        db_table = "logux_sync_loguxlatedelivery"

    def __str__(self) -> str:
        return f"delivered at {self.delivered_at}, changes from {self.oldest_time}"
