"""logux_sync's own tables."""

from __future__ import annotations

from .sync.models import LoguxSubscription

__all__ = ["LoguxSubscription"]
