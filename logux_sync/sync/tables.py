"""Model sync's own tables: remembered subscriptions, the outbox, tombstones and late deliveries."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils import timezone

from .changes import payload_text
from .keys import match_key, shape_key, subscription_key


class LoguxSubscription(models.Model):
    """A node subscribed to a synced model's rows (a row, a filtered list or a derived channel).
    Changes are addressed to the node, and only while its user may read the row.

    Shared by every worker through the database; refreshed on resubscribe, forgotten after `expires_at`.
    """

    node_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255, blank=True)
    plural = models.CharField(max_length=255)
    # keys.subscription_key(): a SHA-256 digest of the channel and filter.
    filter_key = models.CharField(max_length=64)
    filter = models.JSONField(default=dict)
    # Set for a subscription to one row's channel (`tasks/<id>`), empty for a list or derived channel.
    row_id = models.CharField(max_length=255, blank=True, default="")
    # keys.match_key() of a list or derived channel's filter, empty for a row: a change finds
    # the lists it matches by the same digest of its own values (one indexed lookup per filter shape).
    match_key = models.CharField(max_length=64, blank=True, default="")
    # keys.shape_key() of the filter's field names (LoguxFilterShape.key), empty for a row.
    shape_key = models.CharField(max_length=64, blank=True, default="")
    # A `createFilter` list on the plural channel (not a row, nor a derived channel): its load marks
    # each row's channel subscribed on the client, and so must a new row's broadcast.
    plural_list = models.BooleanField(default=False)
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
            models.Index(fields=["plural", "match_key"], name="logux_sync_sub_match"),
            # The per-node and per-user limits count these.
            models.Index(fields=["node_id", "expires_at"], name="logux_sync_sub_node"),
            models.Index(fields=["user_id", "expires_at"], name="logux_sync_sub_user"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} → {self.plural} {self.filter_key}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Index a list subscription by its filter however it is created (subscriptions.remember(),
        a test, a data migration): without its keys no change would find it."""
        if not self.row_id and not self.match_key:
            self.match_key = match_key(self.filter)
            self.shape_key = shape_key(self.filter)
            self.plural_list = self.filter_key == subscription_key(self.plural, self.filter)
            LoguxFilterShape.objects.bulk_create(
                [LoguxFilterShape(plural=self.plural, fields=sorted(self.filter), key=self.shape_key)],
                update_conflicts=True,
                unique_fields=["plural", "key"],
                update_fields=["touched_at"],
            )
        super().save(*args, **kwargs)


class LoguxFilterShape(models.Model):
    """The field names one or more remembered list filters compare (`["done", "project"]`), per plural:
    a change computes one `match_key` per shape, so it finds every list it matches without reading them."""

    plural = models.CharField(max_length=255)
    fields = models.JSONField(default=list)
    # keys.match_key() of the sorted names: what makes a shape unique on every database.
    key = models.CharField(max_length=64)
    touched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "logux_sync_models"
        db_table = "logux_sync_loguxfiltershape"
        constraints = [models.UniqueConstraint(fields=["plural", "key"], name="logux_sync_shape_unique")]

    def __str__(self) -> str:
        return f"{self.plural} by {self.fields}"


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
    # The row's own batch when its writer claimed it for its process's sender (see outbox._Wake).
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
