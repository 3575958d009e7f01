"""logux-sync: Django as the back end of a Logux server."""

from __future__ import annotations

from .auth import make_token
from .client import add, add_batch
from .commands import ActionCommand, ChannelCommand
from .exceptions import LoguxProxyException, Undo
from .protocol import Action, Meta, is_first_older
from .registry import actions, channels, logux, register

__all__ = [
    "Action",
    "ActionCommand",
    "ChannelCommand",
    "LoguxProxyException",
    "Meta",
    "Undo",
    "actions",
    "add",
    "add_batch",
    "channels",
    "is_first_older",
    "logux",
    "make_token",
    "register",
]

__version__ = "0.1.0"
