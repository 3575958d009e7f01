"""FANOUT "bridge": a change whose readers it did not change goes out once, and the logux-sync bridge
(@logux/server 0.14) finds the nodes it reaches; Django addresses only the others (a per-object
`can_read`, a change of who may read the row).

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
- a change whose readers are the same `Q` before and after also carries `users`: the subscribed users
  that Q selects now (one query, as many rows as such users, whatever the number of their nodes).
  The bridge then leaves out every node whose user (the first part of its node id, which
  @logux/server authenticated) is not listed. So a node the bridge still counts but Django forgot
  (its remembered subscription expired or was pruned) can only miss a change, never receive a row its
  user may not read: the list names who may read, not who may not.

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
    """Does the bridge fan out the changes whose readers they leave as they were (FANOUT "bridge")?"""
    return bool(logux_settings.FANOUT == "bridge")


def watch(plural: str, wire_filter: dict[str, Any], listing: bool, ttl: int) -> tuple[Action, RawMeta]:
    """The watch that opens a list or derived subscription's load (the view addresses it to the node).
    `listing`: a plural list (createFilter), whose node gets `logux/subscribed` for a created row."""
    action: Action = {"type": WATCH, "plural": plural, "key": match_key(wire_filter), "list": listing, "ttl": ttl}
    return action, {}


def fanned_out(change: Change, channel: str, keys: Iterable[str], users: Iterable[str] | None = None) -> RawMeta:
    """The meta of a change sent once for the bridge to fan out: the change's own, the row's channel
    and the match keys of the lists it belongs to (before or after it), without nodes; `users`: the
    only users whose nodes it may reach (a `readers` Q), None for every subscriber (`readers` True)."""
    info: dict[str, Any] = {
        "channel": channel,
        "created": change.kind == "created",
        "keys": sorted(keys),
        "plural": change.plural,
    }
    if users is not None:
        info["users"] = sorted(users)
    meta: RawMeta = {**change.meta, META_KEY: info}
    if change.exclude_client:
        meta["excludeClients"] = [change.exclude_client]
    return meta
