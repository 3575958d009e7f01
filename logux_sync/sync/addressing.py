"""Who receives a change: the nodes subscribed to its row or to a list it matches (before or after
it), whose user may read the row now. Never a channel as a whole: in proxy mode the Logux server
filters nothing per subscriber."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS

from ..commands import load_user
from ..protocol import Action, RawMeta, is_first_older
from .changes import Change, Entry, is_change
from .clocks import clock_meta, derived_id, field_clock
from .options import LoguxOptions, synced_models
from .subscriptions import active_subscriptions, is_plural_list


def _objects(changes: list[Change], using: str) -> dict[tuple[str, str], Any]:
    """The rows of the changes as they are now (one query per model); a row that is gone is missing."""

    found: dict[tuple[str, str], Any] = {}
    by_plural: dict[str, set[str]] = {}
    for change in changes:
        by_plural.setdefault(change.plural, set()).add(change.wire_id)
    for plural, wire_ids in by_plural.items():
        model = synced_models[plural]
        opts = model._logux
        pks = [opts.python_id(i) for i in wire_ids]
        for obj in model._base_manager.using(using).filter(pk__in=pks):
            found[(plural, opts.wire_id(obj))] = obj
    return found


def _target(change: Change, rows: dict[tuple[str, str], Any]) -> Any:
    """The row whose readers get the change: a deleted row rebuilt from its last state. A create or
    change of a row that is gone by now reaches no one: its `deleted` goes (or went) out after it, and
    @logux/client's createFilter puts a row back when a late `changed` overtakes that `deleted`."""

    if change.kind == "deleted":
        if change.old is None:
            return None
        return synced_models[change.plural]._logux.instance_from_wire(change.wire_id, change.old)
    return rows.get((change.plural, change.wire_id))


def in_row_order(rows: list[list[Entry]], using: str) -> list[list[tuple[Action, RawMeta]]]:
    """Each row's actions (given its entries), in the order they were written: model changes
    addressed to their readers, and the actions of add_on_commit() as they were given."""
    changes = [Change.from_json(entry) for entries in rows for entry in entries if isinstance(entry, list)]
    addressed = iter(address_each(changes, using))
    per_row: list[list[tuple[Action, RawMeta]]] = []
    for entries in rows:
        pairs: list[tuple[Action, RawMeta]] = []
        for entry in entries:
            if is_change(entry):
                pairs += next(addressed)
            else:
                assert isinstance(entry, dict)
                action, meta = entry["raw"]
                pairs.append((action, meta))
        per_row.append(pairs)
    return per_row


def _still_current(change: Change, obj: Any) -> dict[str, Any]:
    """The change's fields that no newer edit has overwritten since (by the row's clocks now).

    A change delivered late (it waited in the outbox while the Logux server was down) may carry values
    that newer edits of the same fields replaced, and those edits reach the same readers with their own
    changes. Sending the old values is harmless to a client whose field clocks are exact, but not to
    one whose clock for a field is older than the edit that set it: @logux/client 0.21's createFilter
    can build a loaded row from its `changed` actions and only then apply its `created` (the core log
    emits received actions with reasons a few microtasks after those without), so the row's newer
    fields end up under the `created` clock, and the old value would win over the current one."""
    clocks = getattr(obj, "logux_clocks", None)
    own = [change.meta["time"], change.meta["id"]]  # the clock of a field this edit still holds (an ORM edit's)
    return {
        name: value
        for name, value in change.fields.items()
        if (clock := field_clock(clocks, name)) == own or not is_first_older(change.meta, clock_meta(clock))
    }


def _extra_meta(change: Change, nodes: list[str]) -> RawMeta:
    """The meta of an action sent besides the change itself, to `nodes`: an id of its own that orders
    like the change's, and the change's time."""
    return {"id": derived_id(change.meta["id"]), "time": change.meta["time"], "nodes": nodes}


def _subscribed_marks(opts: LoguxOptions, change: Change, nodes: list[str]) -> list[tuple[Action, RawMeta]]:
    """`logux/subscribed` for the row's channel, to the list nodes about to get its `created`.

    As a list load does for each row (ListChannel): without it createFilter's store of the new row
    subscribes to its channel, one more request per row and node. And in @logux/server 0.13.1 a request
    that ends in `logux/undo` (the row was deleted, or became unreadable, before its subscribe was
    processed) undoes every action still queued behind it for that client, with reason `error`: after a
    reconnect those are the client's resubscribes, and its lists then never hear of a change again."""
    if not nodes:
        return []
    action = {"type": "logux/subscribed", "channel": opts.row_channel(change.wire_id)}
    return [(action, _extra_meta(change, nodes))]


def address_each(changes: list[Change], using: str = DEFAULT_DB_ALIAS) -> list[list[tuple[Action, RawMeta]]]:
    """Each change as `(action, meta)` addressed to nodes, never to a channel as a whole: the nodes
    subscribed to its row, or to a list or derived channel whose filter matches its old or new state,
    and whose user may read the row now. (In proxy mode the Logux server filters nothing per node.)

    A change that makes the row unreadable for a subscriber reaches it as `<plural>/deleted`, and one
    that makes it readable as `<plural>/created` with every field: for that user the row left or
    joined the set it may see."""

    if not changes:
        return []
    subscriptions = active_subscriptions({(c.plural, c.wire_id) for c in changes})
    # Once per subscription, not per change and subscription (the check encodes its filter).
    plural_lists = {id(sub) for subs in subscriptions.values() for sub in subs if is_plural_list(sub)}
    objects = _objects(changes, using)
    users: dict[str, Any] = {}
    addressed = []
    for change in changes:
        opts = synced_models[change.plural]._logux
        obj = _target(change, objects)
        action = change.action()
        if obj is not None and change.kind != "deleted":
            action["fields"] = current = _still_current(change, obj)
            if not current:
                obj = None  # every field was overwritten since: the newer edits' own changes tell
        nodes: list[str] = []
        gone: list[str] = []
        joined: list[str] = []
        before: Any = None  # the row as it was, rebuilt on first need
        seen: set[str] = set()
        listing: set[str] = set()  # nodes that get the row through a createFilter list
        for sub in subscriptions.get(change.plural, ()):
            client = ":".join(sub.node_id.split(":")[:2])
            # A node subscribed several ways (its row and a list) gets each action once.
            if client == change.exclude_client or obj is None or sub.node_id in seen:
                continue
            if sub.row_id:
                if sub.row_id != change.wire_id:
                    continue
            elif not any(s is not None and opts.matches(sub.filter, s) for s in (change.old, change.new)):
                continue
            seen.add(sub.node_id)
            if id(sub) in plural_lists:
                listing.add(sub.node_id)
            if sub.user_id not in users:
                users[sub.user_id] = load_user(sub.user_id)
            user = users[sub.user_id]
            readable = obj.logux_can_read(user)
            if change.kind != "changed" or change.old is None:
                if readable:
                    nodes.append(sub.node_id)
                continue
            if before is None:
                before = opts.instance_from_wire(change.wire_id, change.old)
            was_readable = before.logux_can_read(user)
            if readable:
                (nodes if was_readable else joined).append(sub.node_id)
            elif was_readable:
                gone.append(sub.node_id)
        meta: RawMeta = {**change.meta, "nodes": nodes}
        if change.exclude_client:
            meta["excludeClients"] = [change.exclude_client]
        pairs: list[tuple[Action, RawMeta]] = []
        if change.kind == "created":
            pairs += _subscribed_marks(opts, change, [n for n in nodes if n in listing])
        pairs.append((action, meta))
        if joined and change.new is not None:
            pairs += _subscribed_marks(opts, change, [n for n in joined if n in listing])
            action = {"type": f"{change.plural}/created", "id": change.wire_id, "fields": change.new}
            pairs.append((action, _extra_meta(change, joined)))
        if gone:
            action = {"type": f"{change.plural}/deleted", "id": change.wire_id}
            pairs.append((action, _extra_meta(change, gone)))
        addressed.append(pairs)
    return addressed
