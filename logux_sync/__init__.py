"""logux-sync: Django as the back end of a Logux server."""

from __future__ import annotations

from .auth import make_token
from .client import add, add_batch
from .commands import ActionCommand, ChannelCommand
from .exceptions import LoguxProxyException, Undo
from .protocol import Action, Meta, is_first_older
from .registry import actions, channels, logux, register
from .sync.broadcast import add_on_commit, muted

__all__ = [
    "Action",
    "ActionCommand",
    "ChannelCommand",
    "LoguxProxyException",
    "LoguxSynced",
    "Meta",
    "Undo",
    "actions",
    "add",
    "add_batch",
    "add_on_commit",
    "channels",
    "is_first_older",
    "logux",
    "make_token",
    "muted",
    "register",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # A model class can only be defined once Django's app registry is ready: import it on first use.
    if name == "LoguxSynced":
        from .sync.models import LoguxSynced

        return LoguxSynced
    raise AttributeError(f"module 'logux_sync' has no attribute {name!r}")
