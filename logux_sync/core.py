"""The seed's (logux-django) import path for handler classes: `from logux_sync.core import ...`."""

from __future__ import annotations

from .client import add as logux_add
from .commands import ActionCommand, ChannelCommand
from .protocol import Action, Meta

__all__ = ["Action", "ActionCommand", "ChannelCommand", "Meta", "logux_add"]
