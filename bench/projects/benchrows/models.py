from __future__ import annotations

from django.db import models


class Row(models.Model):
    """One row per `bench/write` action."""

    text = models.CharField(max_length=200)
    meta_id = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.meta_id
