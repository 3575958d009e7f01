"""Who receives a change: the nodes subscribed to its row or to a list it matches (before or after
it), whose user may read the row now. Never a channel as a whole: in proxy mode the Logux server
filters nothing per subscriber.

The cost does not grow with the subscribers in Python where the model says who its readers are
(`LoguxMeta.readers`): the subscriptions a change reaches are found by index (its row, and the lists
whose filter digest equals its values' digest, one per filter shape), joined in the same query with
the users the row's `readers` Q selects. Without that hook each distinct subscribed user is loaded (in
bulk) and asked `can_read`, once per change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import Case, Q, QuerySet, Value, When
from django.db.models.functions import Cast

from ..commands import load_users
from ..protocol import Action, RawMeta, is_first_older
from .changes import Change, Entry, is_change
from .clocks import clock_meta, derived_id, field_clock
from .fanout import bridge_mode, fanned_out
from .keys import match_key
from .options import LoguxOptions, WireError, synced_models, to_wire
from .subscriptions import filter_shapes, subscribers


def _objects(changes: list[Change], using: str) -> dict[tuple[str, str], Any]:
    """The rows of the changes as they are now (one query per model); a row that is gone is missing."""

    found: dict[tuple[str, str], Any] = {}
    by_plural: dict[str, set[str]] = {}
    for change in changes:
        by_plural.setdefault(change.plural, set()).add(change.wire_id)
    for plural, wire_ids in by_plural.items():
        model = synced_models[plural]
        opts = model.logux_options
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
        return synced_models[change.plural].logux_options.instance_from_wire(change.wire_id, change.old)
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


# Primary key types whose text in SQL (CAST AS a string) is `str(pk)`, the Logux user id.
_TEXT_EXACT_PKS = (models.IntegerField, models.CharField, models.TextField)


def _canonical(opts: LoguxOptions, name: str, value: Any) -> Any:
    """A row's wire value as a filter on `name` stores it (normalize_filter), so equal values digest
    alike whatever Python type the row carried (an int in a float field)."""
    try:
        return to_wire(opts.python_value(name, value))
    except WireError:
        return value


def _match_keys(
    opts: LoguxOptions, shapes: Iterable[list[str]], states: Iterable[Mapping[str, Any] | None]
) -> set[str]:
    """The match keys of the lists a row with any of these states belongs to, one per filter shape."""
    keys = set()
    for state in states:
        if state is None:
            continue
        for names in shapes:
            keys.add(match_key({name: _canonical(opts, name, state.get(name)) for name in names}))
    return keys


def _readers_bulk_ok() -> bool:
    """Can the user model's primary keys be compared with Logux user ids in SQL?"""
    pk = get_user_model()._meta.pk
    return isinstance(pk, _TEXT_EXACT_PKS)


def reader_ids(readers: Q) -> QuerySet[Any, Any]:
    """The Logux user ids (primary keys as text) of the active users `readers` selects, as a subquery."""
    users = get_user_model()._default_manager.filter(readers)
    if any(f.name == "is_active" for f in get_user_model()._meta.concrete_fields):
        users = users.filter(is_active=True)
    return users.annotate(logux_user_id=Cast("pk", output_field=models.CharField())).values("logux_user_id")


def _reads(readers: Q | bool) -> Q | bool:
    """`readers` as a condition on subscriptions: True (all), False (none), or a Q on their user."""
    if isinstance(readers, bool):
        return readers
    return Q(user_id__in=reader_ids(readers))


def _listing() -> Case:
    """Is the subscription a createFilter list: "list" or "" (only ever tested for truth). Reading the
    `plural_list` boolean itself back costs Django a converter call per row on SQLite, a third of
    addressing a change that reaches 10,000 nodes (bench/fanout_bench.py)."""
    return Case(When(plural_list=True, then=Value("list")), default=Value(""), output_field=models.CharField())


def _flag(condition: Q | bool) -> Any:
    if isinstance(condition, bool):
        return Value(condition)
    return Case(When(condition, then=Value(True)), default=Value(False))


@dataclass
class _Plan:
    """One change on its way to be addressed."""

    change: Change
    opts: LoguxOptions
    action: Action
    obj: Any  # the row whose readers get it; None: it reaches no one
    match_keys: set[str] = field(default_factory=set)
    # (node id, is a plural list, may read now, could read before) per subscribed node
    reached: list[tuple[str, bool, bool, bool]] = field(default_factory=list)
    # Every reached node could read the row before exactly when it may now (the same readers)
    same_readers: bool = False
    # Sent once for the bridge to fan out (FANOUT "bridge"): its readers are the same before and after
    bridge: bool = False
    # With `bridge`: the subscribed users a readers Q selects (None: readers True, every subscriber)
    users: list[str] | None = None

    @property
    def transition(self) -> bool:
        """Does readability before the change count (a change of a row that existed)?"""
        return self.change.kind == "changed" and self.change.old is not None

    def before(self) -> Any:
        assert self.change.old is not None
        return self.opts.instance_from_wire(self.change.wire_id, self.change.old)

    def candidates(self) -> QuerySet[Any, Any]:
        return subscribers([(self.change.plural, self.change.wire_id, self.match_keys)])


def _not_excluded(plan: _Plan, node_id: str) -> bool:
    return plan.change.exclude_client is None or ":".join(node_id.split(":")[:2]) != plan.change.exclude_client


def _address_by_readers(plan: _Plan, now: Q | bool) -> None:
    """Fill `plan.reached` with one query: the change's subscriptions joined with the row's readers
    (now, and before the change when that differs)."""
    before = now
    if plan.transition:
        before_readers = plan.before().logux_readers()
        if before_readers is None:  # the hook declined for the old state: ask can_read for both
            _address_by_can_read([plan])
            return
        before = before_readers
    reads_now, read_before = _reads(now), _reads(before)
    if reads_now is False and read_before is False:
        return
    qs = plan.candidates()
    if now == before:
        if reads_now is not True:
            assert isinstance(reads_now, Q)
            qs = qs.filter(reads_now)
        if plan.change.kind == "created":  # createFilter list nodes get the row marked subscribed
            listing = qs.annotate(logux_list=_listing()).values_list("node_id", "logux_list")
            rows = [(n, bool(p), True, True) for n, p in listing]
        else:
            rows = [(n, False, True, True) for n in qs.values_list("node_id", flat=True)]
        plan.same_readers = True
    else:
        either = [c for c in (reads_now, read_before) if c is not False]
        if True not in either:
            qs = qs.filter(Q(*either, _connector=Q.OR))  # type: ignore[arg-type]
        qs = qs.annotate(logux_list=_listing(), logux_now=_flag(reads_now), logux_before=_flag(read_before))
        rows = [
            (n, bool(p), now, before)
            for n, p, now, before in qs.values_list("node_id", "logux_list", "logux_now", "logux_before")
        ]
    plan.reached = [row for row in rows if _not_excluded(plan, row[0])] if plan.change.exclude_client else rows


def _address_by_can_read(plans: list[_Plan]) -> None:
    """Fill `plan.reached` asking `can_read` once per change and distinct user: the subscriptions of
    every change in one query, their users in bulk (one query per 2,000)."""
    if not plans:
        return
    targets = [(plan.change.plural, plan.change.wire_id, plan.match_keys) for plan in plans]
    fields = ("node_id", "user_id", "logux_list", "plural", "row_id", "match_key")
    subs = list(subscribers(targets).annotate(logux_list=_listing()).values_list(*fields))
    users = load_users({sub[1] for sub in subs})
    by_target: dict[tuple[str, str, str], list[tuple[str, str, bool]]] = {}
    for node_id, user_id, plural_list, plural, row_id, key in subs:
        by_target.setdefault((plural, row_id, "" if row_id else key), []).append((node_id, user_id, bool(plural_list)))
    per_change: list[list[tuple[str, str, bool]]] = []
    for plan in plans:
        plural = plan.change.plural
        reached = list(by_target.get((plural, plan.change.wire_id, ""), ()))
        for key in plan.match_keys:
            reached += by_target.get((plural, "", key), ())
        per_change.append(reached)
    for plan, reached in zip(plans, per_change, strict=True):
        now: dict[str, bool] = {}
        before: dict[str, bool] = {}
        old = plan.before() if plan.transition else None
        for node_id, user_id, plural_list in reached:
            if not _not_excluded(plan, node_id):
                continue
            if user_id not in now:
                now[user_id] = bool(plan.obj.logux_can_read(users[user_id]))
                before[user_id] = bool(old.logux_can_read(users[user_id])) if old is not None else now[user_id]
            plan.reached.append((node_id, plural_list, now[user_id], before[user_id]))


def _plan(change: Change, objects: dict[tuple[str, str], Any], shapes: dict[str, list[list[str]]]) -> _Plan:
    opts = synced_models[change.plural].logux_options
    obj = _target(change, objects)
    action = change.action()
    if obj is not None and change.kind != "deleted":
        action["fields"] = current = _still_current(change, obj)
        if not current:
            obj = None  # every field was overwritten since: the newer edits' own changes tell
    plan = _Plan(change=change, opts=opts, action=action, obj=obj)
    if obj is not None:
        plan.match_keys = _match_keys(opts, shapes.get(change.plural, ()), (change.old, change.new))
    return plan


def _pairs(plan: _Plan) -> list[tuple[Action, RawMeta]]:
    """The change's actions for the nodes it reached: the change to those that may read the row now
    (and could before), `created` to those that may read it only now, `deleted` to those that no longer may."""
    change, opts = plan.change, plan.opts
    if plan.bridge:
        if plan.users is not None and not plan.users:
            return []  # no subscribed user may read it
        return [(plan.action, fanned_out(change, opts.row_channel(change.wire_id), plan.match_keys, plan.users))]
    nodes: list[str] = []
    gone: list[str] = []
    joined: list[str] = []
    listing: set[str] = set()  # nodes that get the row through a createFilter list
    seen: set[str] = set()
    simple = not plan.transition or plan.same_readers
    if simple:  # the common case, in bulk: once per node that may read it now
        nodes = list(dict.fromkeys(node_id for node_id, _, now, _ in plan.reached if now))
        if change.kind == "created":
            listing = {node_id for node_id, plural_list, _, _ in plan.reached if plural_list}
    for node_id, plural_list, now, before in () if simple else plan.reached:
        if plural_list:
            listing.add(node_id)
        # A node subscribed several ways (its row and a list) gets each action once.
        if node_id in seen:
            continue
        seen.add(node_id)
        if now:
            (nodes if before else joined).append(node_id)
        elif before:
            gone.append(node_id)
    meta: RawMeta = {**change.meta, "nodes": nodes}
    if change.exclude_client:
        meta["excludeClients"] = [change.exclude_client]
    pairs: list[tuple[Action, RawMeta]] = []
    if change.kind == "created":
        pairs += _subscribed_marks(opts, change, [n for n in nodes if n in listing])
    pairs.append((plan.action, meta))
    if joined and change.new is not None:
        pairs += _subscribed_marks(opts, change, [n for n in joined if n in listing])
        action = {"type": f"{change.plural}/created", "id": change.wire_id, "fields": change.new}
        pairs.append((action, _extra_meta(change, joined)))
    if gone:
        action = {"type": f"{change.plural}/deleted", "id": change.wire_id}
        pairs.append((action, _extra_meta(change, gone)))
    return pairs


def _fans_out(plan: _Plan, readers: Q | bool | None) -> bool:
    """Can the bridge fan the change out (FANOUT "bridge")? When its readers are True (every
    subscriber) or a Q over users, and the same before the change. A change of who may read the row is
    addressed here: its new readers get `created` and its former ones `deleted`, which the bridge
    cannot tell apart. With a Q, `plan.users` gets the subscribed users it selects, in one query."""
    if readers is None or readers is False:
        return False
    if plan.transition and plan.before().logux_readers() != readers:
        return False
    if isinstance(readers, Q):
        if not _readers_bulk_ok():
            return False
        users = plan.candidates().filter(_reads(readers)).order_by().values_list("user_id", flat=True)
        plan.users = list(users.distinct())
    return True


def address_each(changes: list[Change], using: str = DEFAULT_DB_ALIAS) -> list[list[tuple[Action, RawMeta]]]:
    """Each change as `(action, meta)` addressed to nodes, never to a channel as a whole: the nodes
    subscribed to its row, or to a list or derived channel whose filter matches its old or new state,
    and whose user may read the row now. (In proxy mode the Logux server filters nothing per node.)

    A change that makes the row unreadable for a subscriber reaches it as `<plural>/deleted`, and one
    that makes it readable as `<plural>/created` with every field: for that user the row left or
    joined the set it may see.

    With FANOUT "bridge", a change whose `readers` are the same before and after is one action for the
    logux-sync bridge to fan out instead (see fanout.py): readers True reads no subscription, a Q
    reads the distinct subscribed users it selects (not their nodes).

    Queries: the rows (one per model), the filter shapes (one), then one per change whose model has
    a `readers` Q (subscriptions, or in bridge mode their users, joined with readers), and for the
    changes without `readers` together one for their subscriptions and one per 2,000 distinct users."""

    if not changes:
        return []
    objects = _objects(changes, using)
    shapes = filter_shapes({c.plural for c in changes})
    plans = [_plan(change, objects, shapes) for change in changes]
    by_can_read: list[_Plan] = []
    bulk = _readers_bulk_ok()
    bridge = bridge_mode()
    for plan in plans:
        if plan.obj is None:
            continue
        readers = plan.obj.logux_readers() if bulk or bridge else None
        if bridge and _fans_out(plan, readers):
            plan.bridge = True
        elif readers is None or not bulk:
            by_can_read.append(plan)
        else:
            _address_by_readers(plan, readers)
    _address_by_can_read(by_can_read)
    return [_pairs(plan) for plan in plans]
