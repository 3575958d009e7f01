"""What the logux-sync bridge (@logux/server 0.14) tells Django: a node unsubscribed, a node left.

Both arrive as the bridge's own actions (a `server:` node id, which no client can use), so the
remembered subscriptions shrink the moment a client stops listening instead of when they expire.
"""

from __future__ import annotations

from typing import Any

from ..commands import ActionCommand
from ..protocol import Action, Meta
from ..registry import logux
from .commands import ListChannel, RowChannel
from .keys import subscription_key
from .options import WireError
from .subscriptions import forget

SERVER_USER = "server"


def from_logux_server(meta: Meta) -> bool:
    """True when the action's id is a Logux server's own: clients cannot authenticate as `server`
    nor send actions under another node's id, so only the bridge itself can send it."""
    return meta.user_id == SERVER_USER


class BridgeAction(ActionCommand):
    """An action only a Logux server may send; `node` names the client node it is about."""

    def access(self, action: Action, meta: Meta) -> bool:
        node = action.get("node")
        return from_logux_server(meta) and isinstance(node, str) and bool(node)


class Unsubscribed(BridgeAction):
    """`logux/unsubscribe {channel, filter?, node}`: forget that node's subscription to that channel."""

    action_type = "logux/unsubscribe"

    def process(self, action: Action, meta: Meta) -> None:
        channel = action.get("channel")
        if not isinstance(channel, str):
            return
        handler_class = logux.channels.find(channel)
        if handler_class is None:
            return
        node = action["node"]
        if issubclass(handler_class, RowChannel):
            row = handler_class(action, meta)
            forget(node, row.opts.plural, subscription_key(channel, {}))
        elif issubclass(handler_class, ListChannel):
            listing = handler_class(action, meta)
            try:
                wire_filter: dict[str, Any] = listing.wire_filter()
            except WireError:
                return  # such a subscription was refused, so nothing was remembered
            forget(node, listing.opts.plural, subscription_key(channel, wire_filter))


class Disconnected(BridgeAction):
    """`logux_sync/disconnected {node}`: forget every subscription of that node."""

    action_type = "logux_sync/disconnected"

    def process(self, action: Action, meta: Meta) -> None:
        forget(action["node"])


HANDLERS: tuple[type[ActionCommand], ...] = (Unsubscribed, Disconnected)


def register() -> None:
    """Register the handlers once (model sync calls this when it registers its first model)."""
    for handler in HANDLERS:
        if not logux.actions.is_registered(handler.action_type):
            logux.actions.register(handler)
