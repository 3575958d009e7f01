"""logux_sync's own tables."""

from __future__ import annotations

from .sync.models import LoguxOutbox, LoguxSubscription

__all__ = ["LoguxOutbox", "LoguxSubscription"]
