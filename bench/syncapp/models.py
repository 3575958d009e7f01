"""The same row twice: `SyncedItem` (LoguxSynced, like the tests' Task) and `PlainItem` (a plain model)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from logux_sync.sync.models import LoguxSynced


class Group(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class PlainItem(models.Model):
    id = models.CharField(max_length=36, primary_key=True)
    title = models.CharField(max_length=100)
    done = models.BooleanField(default=False)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)

    def __str__(self) -> str:
        return self.title


class SyncedItem(LoguxSynced):
    id = models.CharField(max_length=36, primary_key=True)
    title = models.CharField(max_length=100)
    done = models.BooleanField(default=False)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)

    class LoguxMeta:
        plural = "items"
        fields = ["title", "done", "group"]
        channels = ["groups/{group}/items"]

    def __str__(self) -> str:
        return self.title


class Card(LoguxSynced):
    """bench/fanout_bench.py's model: readers in bulk (`LoguxMeta.readers`), like the example's Task."""

    id = models.CharField(max_length=36, primary_key=True)
    title = models.CharField(max_length=100)
    board = models.IntegerField(default=1)
    private = models.BooleanField(default=False)
    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)

    class LoguxMeta:
        plural = "cards"
        fields = ["title", "board", "private", "owner"]

        @staticmethod
        def can_read(user: Any, card: Card) -> bool:
            return bool(user.is_authenticated) and (not card.private or card.owner_id == user.pk)

        @staticmethod
        def readers(card: Card) -> Q:
            return Q(pk=card.owner_id) if card.private else Q()

    def __str__(self) -> str:
        return self.title
