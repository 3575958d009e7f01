"""FANOUT "bridge": a change every subscriber may read goes out once, and the logux-sync bridge
(@logux/server 0.14) finds the nodes it reaches; Django addresses only the others (a `readers` Q, a
per-object `can_read`, a change of who may read the row).

What the bridge is told, and by whom:
- each list or derived subscription Django approves opens its load with `logux_sync/watch {plural,
  key, list, ttl}` addressed to the subscribing node: the bridge consumes it (no client sees it) and
  from then on counts that node among the subscribers of the lists with that match key (for `ttl`
  seconds, until the node unsubscribes or leaves). Only an answer of Django's to that node's own
  subscribe is taken as a watch: a client's `logux_sync/*` action is refused by the bridge.
- each change whose readers are True is sent with `meta.logux_sync = {plural, channel, keys, created}`
  and no target: the bridge sends it to the nodes subscribed to the row's channel (Django approved
  those subscriptions) and to those watching one of `keys` (the lists it matches, before or after),
  except the author's client, marking the row subscribed for list watchers first when it is
  `created`; it strips `meta.logux_sync` before any client sees the action.

Django keeps remembering every subscription in this mode too: the exceptions are addressed from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..conf import logux_settings
from ..protocol import Action, RawMeta
from .changes import Change
from .keys import match_key

# The meta key of a change the bridge fans out, and the action type of a watch.
META_KEY = "logux_sync"
WATCH = "logux_sync/watch"


def bridge_mode() -> bool:
    """Does the bridge fan out the changes every subscriber may read (FANOUT "bridge")?"""
    return bool(logux_settings.FANOUT == "bridge")


def watch(plural: str, wire_filter: dict[str, Any], listing: bool, ttl: int) -> tuple[Action, RawMeta]:
    """The watch that opens a list or derived subscription's load (the view addresses it to the node).
    `listing`: a plural list (createFilter), whose node gets `logux/subscribed` for a created row."""
    action: Action = {"type": WATCH, "plural": plural, "key": match_key(wire_filter), "list": listing, "ttl": ttl}
    return action, {}


def fanned_out(change: Change, channel: str, keys: Iterable[str]) -> RawMeta:
    """The meta of a change sent once for the bridge to fan out: the change's own, the row's channel
    and the match keys of the lists it belongs to (before or after it), without nodes."""
    meta: RawMeta = {
        **change.meta,
        META_KEY: {
            "channel": channel,
            "created": change.kind == "created",
            "keys": sorted(keys),
            "plural": change.plural,
        },
    }
    if change.exclude_client:
        meta["excludeClients"] = [change.exclude_client]
    return meta
