"""Generic SyncMap handlers every synced model gets: create/change/delete and its channels."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min

from ..commands import ActionCommand, ChannelCommand
from ..conf import logux_settings
from ..encoded import EncodedPairs, quote
from ..exceptions import SubscriptionLimit, Undo
from ..protocol import Action, Meta, RawMeta, dumps
from .clocks import EVERY, clock_meta, derived_id, field_clock, is_newer, now_ms
from .fanout import bridge_mode, watch
from .models import LoguxSynced
from .options import LoguxOptions, WireError, to_wire
from .subscriptions import remember
from .tables import LoguxLateDelivery, LoguxTombstone

logger = logging.getLogger("logux_sync.sync")

# Client and server clocks may differ by this much (ms) when `since` is compared with delivery times.
CLOCK_SKEW_MS = 5000


def _edit_meta(meta: Meta) -> dict[str, Any]:
    return {"id": meta.id, "time": meta.time, "client": meta.client_id}


def _invalid(error: ValidationError) -> Undo:
    detail = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    return Undo("invalid", errors={k: [str(m) for m in v] for k, v in detail.items()})


class SyncedAction(ActionCommand):
    """Base of the generic create/change/delete handlers of one model.

    A row the author may not read answers exactly like a row that does not exist. Every rule is checked
    in `access()` and again in `process()` with the row locked, since the row may change in between."""

    model: ClassVar[type[LoguxSynced]]

    @property
    def opts(self) -> LoguxOptions:
        return self.model.logux_options

    def wire_id(self, action: Action) -> Any:
        return self.opts.sent_id(action.get("id"))

    def wire_fields(self, action: Action) -> dict[str, Any]:
        fields = action.get("fields", {})
        if not isinstance(fields, dict):
            raise WireError("fields must be an object")
        unknown = sorted(set(fields) - set(self.opts.fields))
        if unknown:
            raise WireError(f"not synced fields: {', '.join(unknown)}")
        return fields

    def python_values(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The client's field values as the model stores them, by field name (a foreign key as the
        target's primary key): what the permission hooks receive. Each must have the JSON type of its
        field's wire form (`LoguxOptions.edited_value`)."""
        return {name: self.opts.edited_value(name, value) for name, value in fields.items()}

    def checked(self, action: Action) -> tuple[Any, dict[str, Any]] | bool:
        """`(pk, python values)` for access(), or its answer: False for an id or field name the model
        cannot take; for a value it cannot take, True when logged in (process() undoes it as invalid)."""
        try:
            pk, fields = self.wire_id(action), self.wire_fields(action)
        except WireError:
            return False
        try:
            return pk, self.python_values(fields)
        except WireError:
            return bool(self.user.is_authenticated)

    def get(self, pk: Any, lock: bool = False) -> LoguxSynced | None:
        qs = self.model._default_manager.all()
        if lock:
            qs = qs.select_for_update()
        return qs.filter(pk=pk).first()

    def readable(self, pk: Any, lock: bool = False) -> LoguxSynced | None:
        """The row, or None when it does not exist or the author may not read it (the same answer)."""
        obj = self.get(pk, lock)
        return obj if obj is not None and obj.logux_can_read(self.user) else None

    def may_change(self, obj: LoguxSynced, values: dict[str, Any]) -> bool:
        allowed = obj.logux_can_change(self.user, values)
        if isinstance(allowed, bool):
            return allowed
        return set(values) <= set(allowed)

    def check_clock(self, meta: Meta) -> None:
        """Undo an edit stamped further ahead of the server's clock than MAX_CLOCK_SKEW allows: its
        clocks would make it win over every edit made before that time."""
        ahead = meta.time - now_ms()
        limit = logux_settings.MAX_CLOCK_SKEW * 1000
        if ahead > limit:
            raise Undo(
                "clockSkew",
                details=f"meta.time is {ahead / 1000:.1f} s ahead of the server's clock; at most "
                f"{limit / 1000:g} s are accepted (LOGUX_SYNC['MAX_CLOCK_SKEW'])",
            )

    def parse_or_undo(self, action: Action, meta: Meta) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        self.check_clock(meta)
        try:
            pk, fields = self.wire_id(action), self.wire_fields(action)
            return pk, fields, self.python_values(fields)
        except WireError as error:
            raise Undo("invalid", errors={error.field or "__all__": [error.message]}) from None

    def validate(self, obj: LoguxSynced, fields: Iterable[str] | None = None) -> None:
        exclude = None if fields is None else [f.name for f in obj._meta.fields if f.name not in set(fields)]
        try:
            obj.full_clean(exclude=exclude, validate_unique=fields is None)
        except ValidationError as error:
            raise _invalid(error) from None

    def apply_change(self, obj: LoguxSynced, fields: dict[str, Any], values: dict[str, Any], meta: Meta) -> None:
        """Apply the fields whose edit is newer than the field's clock (last write wins), then save."""
        clocks = obj.logux_clocks
        won = [name for name in fields if is_newer(meta, field_clock(clocks, name))]
        if not won:
            return  # an older edit arriving late changes nothing and is not broadcast
        for name in won:
            setattr(obj, self.opts.field(name).attname, values[name])
        self.validate(obj, won)
        obj._logux_meta = _edit_meta(meta)  # type: ignore[attr-defined]
        obj._logux_fields = won  # type: ignore[attr-defined]
        obj.save(update_fields=[self.opts.field(n).attname for n in won])


class CreateAction(SyncedAction):
    """`<plural>/create`. A create of an id that exists is judged as what it does: a change of that row
    under every change rule (readable, `can_change`), else refused like a forbidden create."""

    def access(self, action: Action, meta: Meta) -> bool:
        checked = self.checked(action)
        if isinstance(checked, bool):
            return checked
        pk, values = checked
        existing = self.get(pk)
        if existing is None:
            return self.model.logux_can_create(self.user, values)
        return existing.logux_can_read(self.user) and self.may_change(existing, values)

    def process(self, action: Action, meta: Meta) -> None:
        pk, fields, values = self.parse_or_undo(action, meta)
        with transaction.atomic():
            existing = self.get(pk, lock=True)
            if existing is not None:  # the create was delivered again, or raced: a change of the row
                if not (existing.logux_can_read(self.user) and self.may_change(existing, values)):
                    raise Undo("denied")
                self.apply_change(existing, fields, values, meta)
                return
            if not self.model.logux_can_create(self.user, values):  # the row existed at access()
                raise Undo("denied")
            opts = self.opts
            obj = self.model(**{opts.field(name).attname: value for name, value in values.items()})
            obj.pk = pk
            problem = opts.id_problem(pk)
            if problem is not None:  # refused like an empty or over-long id (full_clean's errors)
                raise Undo("invalid", errors={opts.id_field.name: [problem]})
            self.validate(obj)
            obj._logux_meta = _edit_meta(meta)  # type: ignore[attr-defined]
            obj.save(force_insert=True)
        # The author's store subscribed with `creating: true` before the row existed.
        try:
            remember(opts.plural, meta.node_id, meta.user_id, {}, opts.subscription_ttl, row_id=opts.wire_id(obj))
        except SubscriptionLimit as limit:
            logger.warning(
                "logux_sync: %s created %s/%s but is not subscribed to it: %s", meta.node_id, opts.plural, pk, limit
            )


class ChangeAction(SyncedAction):
    def access(self, action: Action, meta: Meta) -> bool:
        checked = self.checked(action)
        if isinstance(checked, bool):
            return checked
        pk, values = checked
        obj = self.readable(pk)
        if obj is None:
            return bool(self.user.is_authenticated)  # process() answers notFound
        return self.may_change(obj, values)

    def process(self, action: Action, meta: Meta) -> None:
        pk, fields, values = self.parse_or_undo(action, meta)
        with transaction.atomic():
            obj = self.readable(pk, lock=True)
            if obj is None:
                raise Undo("notFound")
            if not self.may_change(obj, values):
                raise Undo("denied")
            self.apply_change(obj, fields, values, meta)


class DeleteAction(SyncedAction):
    def access(self, action: Action, meta: Meta) -> bool:
        try:
            pk = self.wire_id(action)
        except WireError:
            return False
        obj = self.readable(pk)
        if obj is None:
            return bool(self.user.is_authenticated)  # deleting twice is harmless
        return obj.logux_can_delete(self.user)

    def process(self, action: Action, meta: Meta) -> None:
        self.check_clock(meta)
        with transaction.atomic():
            obj = self.readable(self.wire_id(action), lock=True)
            if obj is None:
                return
            if not obj.logux_can_delete(self.user):
                raise Undo("denied")
            obj._logux_meta = _edit_meta(meta)  # type: ignore[attr-defined]
            obj.delete()


# ---- channels ----------------------------------------------------------------------------


def snapshot(opts: LoguxOptions, obj: LoguxSynced, since: float | None = None) -> list[tuple[Action, RawMeta]]:
    """A row as `<plural>/changed` actions, its fields grouped by the time they last changed."""
    values = [getattr(obj, attname) for attname in opts.attnames]
    return snapshot_values(opts, opts.wire_id(obj), values, obj.logux_clocks, since)


def snapshot_values(
    opts: LoguxOptions,
    wire_id: str,
    values: Iterable[Any],
    clocks: Any,
    since: float | None = None,
    as_created: bool = False,
) -> list[tuple[Action, RawMeta]]:
    """`snapshot()` from a row's raw values (in `opts.fields` order) and clocks.

    With `as_created`, a row sent whole opens with `<plural>/created` carrying every field at its
    oldest clock, then `changed` for the newer groups: @logux/client's createFilter adds a row on
    `created` at once, while it builds a row from `changed` a microtask late and misses the next one."""
    wire = [to_wire(value) for value in values]
    created, changed = clock_groups(opts.fields, wire, clocks, since, as_created)
    pairs: list[tuple[Action, RawMeta]] = []
    if created is not None:
        action = {"type": f"{opts.plural}/created", "id": wire_id, "fields": dict(zip(opts.fields, wire, strict=True))}
        pairs.append((action, _load_meta(*created)))
    for clock, fields in changed:
        pairs.append(({"type": f"{opts.plural}/changed", "id": wire_id, "fields": fields}, _load_meta(*clock)))
    return pairs


Clock = tuple[float, str]


def clock_groups(
    fields: tuple[str, ...], values: list[Any], clocks: Any, since: float | None, as_created: bool
) -> tuple[Clock | None, list[tuple[Clock, dict[str, Any]]]]:
    """A row's fields grouped by the `(time, id)` of the edit that last set them, oldest first, without
    the groups older than `since`. With `as_created` and nothing left out, the oldest group is returned
    apart: the row goes out whole at that clock (`created`), then the newer groups (`changed`)."""
    if clocks and len(clocks) == 1 and EVERY in clocks:  # one clock for every field: the common case
        stored = [clocks[EVERY]]
    else:
        stored = [field_clock(clocks, name) for name in fields]
    if stored.count(stored[0]) == len(stored):  # one clock for the whole row
        clock = clock_meta(stored[0])
        key = (clock["time"], clock["id"]) if clock else (0, "")
        if since is not None and key[0] < since:
            return None, []
        return (key, []) if as_created else (None, [(key, dict(zip(fields, values, strict=True)))])
    groups: dict[Clock, dict[str, Any]] = {}
    for name, value, stored_clock in zip(fields, values, stored, strict=True):
        clock = clock_meta(stored_clock)
        key = (clock["time"], clock["id"]) if clock else (0, "")
        if since is None or key[0] >= since:
            groups.setdefault(key, {})[name] = value
    ordered = sorted(groups.items(), key=lambda item: item[0][0])
    if as_created and ordered and len(fields) == sum(len(group) for _, group in ordered):
        return ordered[0][0], ordered[1:]
    return None, ordered


def _load_meta(time: float, clock_id: str) -> RawMeta:
    """The meta of loaded fields: their clock's time, and an id that orders like the clock's edit."""
    if not time or clock_id.count(" ") != 2:
        return {"time": time} if time else {}
    return {"id": derived_id(clock_id), "time": time}


class SyncedChannel(ChannelCommand):
    model: ClassVar[type[LoguxSynced]]

    @property
    def opts(self) -> LoguxOptions:
        return self.model.logux_options

    def since_time(self) -> float | None:
        """The client's `since.time`, moved back to the oldest change delivered late after it: the
        client may hold newer actions than changes that reached the Logux server only later."""
        since = self.since
        time = since.get("time") if since else None
        if not isinstance(time, (int, float)) or isinstance(time, bool) or not math.isfinite(time):
            return None
        late = LoguxLateDelivery.objects.filter(delivered_at__gte=time - CLOCK_SKEW_MS).aggregate(t=Min("oldest_time"))
        return min(time, late["t"]) if late["t"] is not None else time

    def remember(self, meta: Meta, wire_filter: dict[str, Any], row_id: str = "", channel: str | None = None) -> None:
        """Remember the subscriber's node (see subscriptions.remember); over a limit, undo the subscribe."""
        opts = self.opts
        try:
            remember(opts.plural, meta.node_id, meta.user_id, wire_filter, opts.subscription_ttl, row_id, channel)
        except SubscriptionLimit as limit:
            raise Undo("limit", details=str(limit)) from None


class RowChannel(SyncedChannel):
    """`<plural>/<id>`: one row, for `syncMapTemplate` stores. A row the subscriber may not read
    answers exactly like one that does not exist."""

    def _obj(self) -> LoguxSynced | None:
        if not hasattr(self, "_cached_obj"):
            pk = self.opts.sent_id(self.params["id"])
            obj = self.model._default_manager.filter(pk=pk).first()
            self._cached_obj = obj if obj is not None and obj.logux_can_read(self.user) else None
        return self._cached_obj

    def access(self, action: Action, meta: Meta) -> bool:
        try:
            obj = self._obj()
        except WireError:
            return False
        if obj is None:
            # load() answers notFound, or nothing when the client is creating the row (read-only
            # models are never created by clients).
            creating = bool(action.get("creating")) and not self.opts.read_only
            return bool(self.user.is_authenticated) and (creating or not action.get("creating"))
        return True

    def load(self, action: Action, meta: Meta) -> list[tuple[Action, RawMeta]]:
        obj, opts = self._obj(), self.opts
        if obj is None:
            if action.get("creating"):
                # Nothing is remembered for a row that does not exist (made-up ids would fill the
                # table); the create itself subscribes its author's node (CreateAction.process).
                return []
            raise Undo("notFound")
        # Changes of the row then reach this node, each while its user may read the row.
        self.remember(meta, {}, row_id=opts.wire_id(obj))
        if action.get("creating"):
            return []
        return snapshot(opts, obj, self.since_time())


# Rows fetched from the database at a time by a list load (not the whole list: it may be large).
LOAD_CHUNK = 500


class ListChannel(SyncedChannel):
    """`<plural>` with a filter (`createFilter`) or a derived channel such as `projects/<id>/tasks`."""

    # The plural list tells the client each row is covered (`logux/subscribed`), so `createFilter`
    # does not subscribe row by row; changes reach the node through the remembered filter.
    mark_rows_subscribed: ClassVar[bool] = True

    def wire_filter(self) -> dict[str, Any]:
        # The filter as sent, not `self.filter` (None for a non-object): a string or an array is refused
        # like an unknown field, never read as no filter, which would load every readable row.
        return self.opts.normalize_filter(self.action.get("filter"))

    def access(self, action: Action, meta: Meta) -> bool:
        try:
            wire_filter = self.wire_filter()
        except SubscriptionLimit:
            return bool(self.user.is_authenticated)  # load() undoes it, saying which limit
        except WireError:
            return False
        return self.model.logux_can_subscribe(self.user, wire_filter, self.channel)

    def load(self, action: Action, meta: Meta) -> Iterator[tuple[Action, RawMeta] | EncodedPairs]:
        try:
            wire_filter = self.wire_filter()
        except SubscriptionLimit as limit:
            raise Undo("limit", details=str(limit)) from None
        self.remember(meta, wire_filter, channel=self.channel)
        # The rows stream: they are read, encoded and written a few hundred at a time.
        rows = self.rows(wire_filter, self.since_time())
        if not bridge_mode():
            return rows
        # The bridge watches this list for the node before any row of it is loaded (fanout.py).
        opening = watch(self.opts.plural, wire_filter, self.mark_rows_subscribed, self.opts.subscription_ttl)
        return itertools.chain([opening], rows)

    def rows(self, wire_filter: dict[str, Any], since: float | None) -> Iterator[tuple[Action, RawMeta] | EncodedPairs]:
        opts = self.opts
        rows = self.model._default_manager.filter(**opts.orm_filter(wire_filter)).order_by("pk")
        present: set[str] = set()
        # Each row's answers are written as JSON directly (see RowEncoder), a chunk of rows at a time.
        encode = RowEncoder(opts, self.mark_rows_subscribed)
        chunk = EncodedPairs()
        if self.model.logux_can_read_all(self.user):
            # Every row is readable: read plain values, no model instances.
            values_rows = rows.values_list("pk", *opts.attnames, "logux_clocks")
            for count, (pk, *values, clocks) in enumerate(values_rows.iterator(chunk_size=LOAD_CHUNK), 1):
                wire_id = str(pk)
                if since is not None:
                    present.add(wire_id)
                chunk += encode(wire_id, values, clocks, since)
                if count % LOAD_CHUNK == 0:
                    yield chunk
                    chunk = EncodedPairs()
        else:
            attnames = opts.attnames
            for count, obj in enumerate(rows.iterator(chunk_size=LOAD_CHUNK), 1):
                wire_id = opts.wire_id(obj)
                present.add(wire_id)
                if obj.logux_can_read(self.user):
                    chunk += encode(wire_id, [getattr(obj, name) for name in attnames], obj.logux_clocks, since)
                if count % LOAD_CHUNK == 0 and chunk:
                    yield chunk
                    chunk = EncodedPairs()
        if chunk:
            yield chunk
        if since is not None:
            yield from self.deleted_since(since, wire_filter, present)

    def deleted_since(
        self, since: float, wire_filter: dict[str, Any], present: set[str]
    ) -> list[tuple[Action, RawMeta]]:
        """Rows of this list deleted since the client's last sync, as `<plural>/deleted`: a client that
        was away (or whose Logux server restarted) missed those actions, and a load of the rows that
        exist would never tell it."""
        opts = self.opts
        pairs: list[tuple[Action, RawMeta]] = []
        for tomb in LoguxTombstone.objects.filter(plural=opts.plural, time__gte=since).order_by("time"):
            if tomb.row_id in present or not opts.matches(wire_filter, tomb.state):
                continue
            if opts.instance_from_wire(tomb.row_id, tomb.state).logux_can_read(self.user):  # type: ignore[attr-defined]
                present.add(tomb.row_id)
                pairs.append(
                    ({"type": f"{opts.plural}/deleted", "id": tomb.row_id}, _load_meta(tomb.time, tomb.edit_id))
                )
        return pairs


class RowEncoder:
    """A listed row's answers as JSON text (`EncodedPairs` items, see logux_sync.encoded):
    `logux/subscribed` for its channel when asked, then the actions `snapshot_values(as_created=True)`
    makes, written without building them."""

    def __init__(self, opts: LoguxOptions, mark_subscribed: bool):
        self.opts = opts
        self.fields = opts.fields
        # `{"channel":"<plural>/` (the row id is appended, escaped), or None.
        self.subscribed_start = '{"channel":' + quote(opts.row_channel(""))[:-1] if mark_subscribed else None
        self.created_end = f',"type":{quote(opts.plural + "/created")}}}'
        self.changed_end = f',"type":{quote(opts.plural + "/changed")}}}'
        # The fields object as `dumps` writes it (keys sorted): each value's position in the row and the
        # text before it (`{"done":`, `,"title":` ...).
        order = sorted(range(len(self.fields)), key=lambda index: self.fields[index])
        self.members = [
            (index, ("{" if n == 0 else ",") + quote(self.fields[index]) + ":") for n, index in enumerate(order)
        ]

    def fields_json(self, values: list[Any]) -> str:
        """`dumps(dict(zip(fields, values)))`, written directly when every value is a string, an int, a
        bool or None (JSON's own: no conversion), which is most rows."""
        parts = []
        for index, start in self.members:
            value = values[index]
            kind = type(value)
            if kind is str:
                parts.append(start + quote(value))
            elif kind is int:
                parts.append(start + str(value))
            elif kind is bool:
                parts.append(start + ("true" if value else "false"))
            elif value is None:
                parts.append(start + "null")
            else:
                return dumps(dict(zip(self.fields, values, strict=True)))
        return "".join(parts) + "}" if parts else "{}"

    def __call__(self, wire_id: str, values: list[Any], clocks: Any, since: float | None) -> list[tuple[str, str]]:
        fields = self.fields
        quoted_id = quote(wire_id)
        out: list[tuple[str, str]] = []
        if self.subscribed_start is not None:
            out.append((self.subscribed_start + quoted_id[1:] + ',"type":"logux/subscribed"}', ""))
        # The common row: one well-formed clock for every field (a create's, or a row edited whole).
        clock = clocks.get(EVERY) if clocks and len(clocks) == 1 else None
        if type(clock) is list and len(clock) == 2 and type(clock[0]) is int and clock[0] and type(clock[1]) is str:
            time, clock_id = clock
            if since is None or time >= since:
                action = '{"fields":' + self.fields_json(values) + ',"id":' + quoted_id
                out.append((action + self.created_end, _encoded_meta(time, clock_id)))
                return out
        created, changed = clock_groups(fields, values, clocks, since, as_created=True)
        if created is not None:
            action = '{"fields":' + self.fields_json(values) + ',"id":' + quoted_id
            out.append((action + self.created_end, _encoded_meta(*created)))
        for clock_key, group in changed:
            action = '{"fields":' + dumps(group) + ',"id":' + quoted_id
            out.append((action + self.changed_end, _encoded_meta(*clock_key)))
        return out


def _encoded_meta(time: float, clock_id: str) -> str:
    """`_load_meta()` as the members of an encoded meta (each followed by a comma)."""
    if type(time) is int and time and clock_id.count(" ") == 2:  # most clocks: written directly
        return '"id":' + quote(derived_id(clock_id)) + ',"time":' + str(time) + ","
    meta = _load_meta(time, clock_id)
    return dumps(meta)[1:-1] + "," if meta else ""


class DerivedChannel(ListChannel):
    mark_rows_subscribed = False

    def wire_filter(self) -> dict[str, Any]:
        return self.opts.normalize_filter(dict(self.params))
