"""logux-sync: Django as the back end of a Logux server."""

from __future__ import annotations

import importlib

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


# Model sync's public names, from its app (`logux_sync.sync`): they need Django's app registry, so
# they are imported on first use and `import logux_sync` works before django.setup().
_MODEL_SYNC = {
    "LoguxSynced": "logux_sync.sync.models",
    "add_on_commit": "logux_sync.sync.outbox",
    "muted": "logux_sync.sync.changes",
}


def __getattr__(name: str) -> object:
    module = _MODEL_SYNC.get(name)
    if module is None:
        raise AttributeError(f"module 'logux_sync' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
