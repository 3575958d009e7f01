"""The same row twice: `SyncedItem` (LoguxSynced, like the tests' Task) and `PlainItem` (a plain model)."""

from __future__ import annotations

from django.db import models

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
