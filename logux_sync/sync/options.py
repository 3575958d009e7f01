"""`LoguxMeta`: how a synced model is named and exposed on the wire."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from ..conf import logux_settings
from ..exceptions import SubscriptionLimit
from ..protocol import dumps

if TYPE_CHECKING:
    from .models import LoguxSynced

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLURAL = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


# The synced models by plural (filled by the model-sync app's ready()).
synced_models: dict[str, type[LoguxSynced]] = {}


class WireError(ValueError):
    """A value or field name from a client that the model cannot take."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def storable(value: Any) -> Any:
    """Refuse what a database cannot take in a query: integers beyond 64 bits, lone surrogates."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ValueError("the number is out of range")
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return value


# Types whose values are their own JSON (to_wire() returns them as they are).
_JSON_SCALARS = frozenset({str, int, bool, float, type(None)})


# The JSON types of a field's wire form (what `to_wire` makes of its values), by field class, most
# specific first. A field of a class not listed (JSONField, a custom field) takes any JSON value its
# `to_python` accepts.
_WIRE_TYPES: tuple[tuple[type[models.Field[Any, Any]], tuple[type, ...], str], ...] = (
    (models.JSONField, (), ""),
    (models.BooleanField, (bool,), "a boolean"),
    (models.IntegerField, (int,), "an integer"),  # also AutoField, BigIntegerField, Positive*...
    (models.FloatField, (int, float), "a number"),
    (models.DurationField, (int, float), "a number"),  # seconds
    (models.DecimalField, (str,), "a string"),  # the decimal's text: a float would round it
    (models.CharField, (str,), "a string"),
    (models.TextField, (str,), "a string"),
    (models.DateField, (str,), "a string"),  # also DateTimeField
    (models.TimeField, (str,), "a string"),
    (models.UUIDField, (str,), "a string"),
    (models.GenericIPAddressField, (str,), "a string"),
)

_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def wire_types(field: models.Field[Any, Any]) -> tuple[tuple[type, ...], str] | None:
    """The exact Python types of the JSON values a client may send for `field` (`NoneType` when the
    field is nullable) and their description, or None when any JSON value may be sent."""
    target = field
    while target.is_relation:  # a foreign key to a foreign key (a one-to-one primary key) is the last one's
        target = target.target_field  # type: ignore[attr-defined]
    for field_class, types, name in _WIRE_TYPES:
        if isinstance(target, field_class):
            if not types:
                return None
            return (*types, type(None)) if field.null else types, f"{name} or null" if field.null else name
    return None


def to_wire(value: Any) -> Any:
    """A Python value as the JSON value clients see (Django's JSON conventions)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.loads(dumps(value))


@dataclass
class LoguxOptions:
    """Parsed `LoguxMeta` of one model."""

    model: type[LoguxSynced]
    plural: str
    fields: tuple[str, ...]
    id_field: models.Field[Any, Any]
    channels: tuple[str, ...]
    read_only: bool
    subscription_ttl: int
    hooks: Any

    @property
    def attnames(self) -> list[str]:
        """Column attribute names of the synced fields, in `fields` order (`project_id` for `project`)."""
        return [attname for _, attname in self.named_attnames]

    @functools.cached_property
    def named_attnames(self) -> tuple[tuple[str, str], ...]:
        """`(name, attname)` of each synced field, in `fields` order."""
        return tuple((name, self.field(name).attname) for name in self.fields)

    @classmethod
    def from_model(cls, model: type[LoguxSynced]) -> LoguxOptions:
        meta = getattr(model, "LoguxMeta", None)
        label = model._meta.label
        if meta is None:
            raise TypeError(f"{label} subclasses LoguxSynced but declares no `class LoguxMeta`")
        plural = getattr(meta, "plural", None) or f"{model._meta.model_name}s"
        if not _PLURAL.match(plural):
            raise TypeError(f"{label}.LoguxMeta.plural {plural!r} must be a channel-safe name such as 'tasks'")
        id_field = model._meta.pk
        assert id_field is not None
        names = getattr(meta, "fields", None)
        if names is None:
            raise TypeError(f"{label}.LoguxMeta.fields must list the synced fields (a whitelist, like ModelForm)")
        fields = []
        for name in names:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                raise TypeError(f"{label}.LoguxMeta.fields names {name!r}, which is not a field") from None
            if not getattr(field, "concrete", False) or field.many_to_many or field is id_field:
                raise TypeError(f"{label}.LoguxMeta.fields: {name!r} must be a concrete, non-m2m, non-id field")
            fields.append(field.name)
        channels = tuple(getattr(meta, "channels", ()) or ())
        for channel in channels:
            for name in _PLACEHOLDER.findall(channel):
                if name not in fields:
                    raise TypeError(f"{label}.LoguxMeta.channels: {{{name}}} in {channel!r} is not a synced field")
        read_only = bool(getattr(meta, "read_only", False)) or isinstance(id_field, models.AutoField)
        return cls(
            model=model,
            plural=plural,
            fields=tuple(fields),
            id_field=id_field,
            channels=channels,
            read_only=read_only,
            subscription_ttl=int(getattr(meta, "subscription_ttl", 24 * 3600)),
            hooks=meta,
        )

    # ---- field values on the wire ----

    def field(self, name: str) -> models.Field[Any, Any]:
        return self.model._meta.get_field(name)  # type: ignore[return-value]

    def wire_value(self, obj: models.Model, name: str) -> Any:
        field = self.field(name)
        return to_wire(getattr(obj, field.attname))

    def wire_fields(self, obj: models.Model, names: Iterable[str] | None = None) -> dict[str, Any]:
        if names is not None:
            return {name: self.wire_value(obj, name) for name in names}
        # A loaded field's value is in the instance dict, where its descriptor (wrapped by the
        # FieldTracker, which makes every read cost a deferred-fields check) would read it.
        data = obj.__dict__
        wire = {}
        for name, attname in self.named_attnames:
            value = data[attname] if attname in data else getattr(obj, attname)
            wire[name] = value if type(value) in _JSON_SCALARS else to_wire(value)
        return wire

    def wire_id(self, obj: models.Model) -> str:
        return str(obj.__dict__[self.pk_attname])

    def id_problem(self, pk: Any) -> str | None:
        """Why a new row with this primary key could not be synced, or None."""
        if pk is not None and "/" in str(pk):
            return f'a synced row\'s id may not contain "/": its channel {self.plural}/<id> could not be subscribed'
        return None

    @functools.cached_property
    def pk_attname(self) -> str:
        return self.model._meta.pk.attname  # type: ignore[union-attr]

    def python_value(self, name: str, value: Any) -> Any:
        """A client's value for a synced field as the model stores it; WireError when it cannot be."""
        if name not in self.fields:
            raise WireError(f"{name!r} is not a synced field of {self.plural}")
        field = self.field(name)
        target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
        try:
            return storable(target.to_python(value))
        except (ValidationError, TypeError, ValueError, OverflowError) as exc:  # 10**400 for a FloatField
            raise WireError(str(exc), field=name) from None

    @functools.cached_property
    def _wire_types(self) -> dict[str, tuple[tuple[type, ...], str] | None]:
        return {name: wire_types(self.field(name)) for name in self.fields}

    def edited_value(self, name: str, value: Any) -> Any:
        """`python_value()` of a value a client's create or change sent, which must have the JSON type of
        the field's wire form: a coerced value (`"10"` or `10.5` for 10) would be what the database holds
        and the permission hooks judge, while the author's client keeps what it sent."""
        kind = self._wire_types.get(name)
        if kind is not None and type(value) not in kind[0]:
            got = _JSON_NAMES.get(type(value), "null")
            raise WireError(f"expected {kind[1]}, got {got}", field=name)
        return self.python_value(name, value)

    def instance_from_wire(self, wire_id: str, state: Mapping[str, Any]) -> models.Model:
        """An unsaved instance carrying a row's synced values (for permission checks on a gone row)."""
        obj = self.model()
        obj.pk = self.python_id(wire_id)
        for name, value in state.items():
            if name in self.fields:
                try:
                    setattr(obj, self.field(name).attname, self.python_value(name, value))
                except WireError:
                    pass
        return obj

    def python_id(self, value: Any) -> Any:
        """A row id as the model stores it (ids this side wrote: addressing, tombstones)."""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise WireError("id must be a string or a number")
        try:
            return storable(self.id_field.to_python(value))
        except (ValidationError, TypeError, ValueError) as exc:
            raise WireError(str(exc), field="id") from None

    def sent_id(self, value: Any) -> Any:
        """`python_id()` of an id a client sent, which must be the row's wire id (`wire_id()`, a string):
        `7`, `"07"` or `" 7"` would name row 7 on the server and another row on the client."""
        if type(value) is not str:
            raise WireError("id must be a string")
        pk = self.python_id(value)
        if str(pk) != value:
            raise WireError(f"{value!r} is not a wire id (the row's would be {str(pk)!r})", field="id")
        return pk

    def normalize_filter(self, raw: Any) -> dict[str, Any]:
        """A client's filter as `{field: wire value}`: only synced fields, each compared with one JSON
        scalar; SubscriptionLimit when it is larger than MAX_FILTER_SIZE."""
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise WireError("filter must be an object")
        for name, value in raw.items():
            if name not in self.fields:
                raise WireError(f"{name!r} is not a synced field of {self.plural}")
            if type(value) not in _JSON_SCALARS:
                raise WireError(f"filter: {name} must be compared with a string, a number, a boolean or null")
        size, limit = len(dumps(raw).encode("utf-8", "surrogatepass")), logux_settings.MAX_FILTER_SIZE
        if size > limit:
            raise SubscriptionLimit(f"the filter is {size} bytes, over LOGUX_SYNC['MAX_FILTER_SIZE'] ({limit})")
        return {name: to_wire(self.python_value(name, value)) for name, value in raw.items()}

    def orm_filter(self, wire_filter: Mapping[str, Any]) -> dict[str, Any]:
        return {self.field(name).attname: self.python_value(name, value) for name, value in wire_filter.items()}

    def matches(self, wire_filter: Mapping[str, Any], wire_fields: Mapping[str, Any]) -> bool:
        return all(wire_fields.get(name) == value for name, value in wire_filter.items())

    # ---- channels ----

    def row_channel(self, wire_id: str) -> str:
        return f"{self.plural}/{wire_id}"

    def derived_patterns(self) -> list[tuple[str, str]]:
        """`(template, logux pattern)`, e.g. `('projects/{project}/tasks', 'projects/:project/tasks')`."""
        return [(t, _PLACEHOLDER.sub(lambda m: ":" + m.group(1), t)) for t in self.channels]
