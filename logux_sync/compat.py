"""The one place logux-sync relies on something Django or django-model-utils does not document. Each use
says why no public mechanism exists; tests/test_compat.py fails the day Django or model_utils changes it."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable
from typing import Any, overload

from django.db import models

# Django's descriptor of a concrete column (`Model.title`). Public in effect (every model uses it) but not
# documented: Django offers no public way to ask whether reading `obj.<attname>` only returns
# `obj.__dict__[attname]` once loaded. Model sync's tracker reads a loaded value straight from the
# instance dict when this holds (a field with a descriptor of its own, such as a file field, is read
# through it), which halves the cost of the snapshot a synced row takes on every load and save.
from django.db.models.query_utils import DeferredAttribute

# django-model-utils documents FieldTracker and the per-instance API it returns (has_changed, previous,
# changed, the `with tracker:` context), not FieldInstanceTracker as a class to extend, nor the copy it
# takes of saved values. The stock FieldTracker, used as its docs intend, wraps every tracked field's
# descriptor and takes a snapshot in every __init__: measured here at 2.29x (create) and 2.01x
# (change) a plain save in one save per transaction, over model sync's 2x budget, and it resets the
# snapshot after a save that raised, so the next save would not send those changes (see README "What
# it costs" for the command and the current figures). So the synced models keep the snapshot in the
# row's dict and offer model_utils' per-instance API as a view of it: SnapshotInstanceTracker subclasses
# FieldInstanceTracker (its constructor and its reading `saved_data`, `current()`, `fields` and
# `field_map` are the contract relied on), and snapshot_copy() copies as model_utils does
# (lightweight_deepcopy: a FieldFile without its instance). Pinned to model_utils 5.x.
from model_utils.tracker import FieldInstanceTracker, lightweight_deepcopy


def reads_instance_dict(descriptor: Any) -> bool:
    """Does `descriptor` return a loaded value straight from the instance dict (Django's column one)?"""
    return getattr(type(descriptor), "__get__", None) is DeferredAttribute.__get__


def is_in_memory_sqlite(connection: Any) -> bool:
    """Is `connection` an in-memory SQLite database (the test database Django makes for SQLite)?

    Such a database has no busy timeout between connections (a second one gets "database table is
    locked" at once), so model sync's sender thread cannot share it: sending then happens in the
    committing thread. Django's own check, DatabaseWrapper.is_in_memory_db(), is not documented; the
    names it recognises are."""
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict.get("NAME") or "")
    return name == ":memory:" or "mode=memory" in name


# ---- the synced models' field tracker (see the model_utils import above) ----

# The row's snapshot of its tracked fields' stored values (model_utils' `saved_data`), in its own dict.
SNAPSHOT = "_logux_saved"

# Immutable values, which the snapshot keeps as they are (a deep copy of a datetime or a UUID takes
# microseconds).
_ATOMIC = frozenset(
    {str, int, float, bool, bytes, type(None), datetime.date, datetime.datetime, datetime.time, datetime.timedelta}
    | {decimal.Decimal, uuid.UUID}
)


def snapshot_copy(value: Any) -> Any:
    """The value as a snapshot keeps it: copied against in-place changes, as model_utils copies it."""
    return value if type(value) in _ATOMIC else lightweight_deepcopy(value)


class SnapshotInstanceTracker(FieldInstanceTracker):
    """model_utils' per-instance tracker (`obj.logux_tracker`), a view of the snapshot the row keeps in
    its dict (see SnapshotFieldTracker). Without model_utils' descriptor wrappers, `previous` fetches the
    stored value of a field assigned before it was loaded."""

    def __init__(self, instance: models.Model, tracker: SnapshotFieldTracker) -> None:
        super().__init__(instance, tracker.fields, tracker.field_map)
        self.tracker: SnapshotFieldTracker = tracker

    @property  # type: ignore[override]
    def saved_data(self) -> dict[str, Any]:
        return self.instance.__dict__.setdefault(SNAPSHOT, {})  # type: ignore[no-any-return]

    @saved_data.setter
    def saved_data(self, value: dict[str, Any]) -> None:
        self.instance.__dict__[SNAPSHOT] = value

    def current(self, fields: Iterable[str] | None = None) -> dict[str, Any]:
        instance = self.instance
        data = instance.__dict__
        columns = self.tracker.columns
        if fields is None:  # the loaded ones (model_utils' deferred check misses a relation's attname)
            fields = [name for name in self.fields if columns[name][0] in data]
        values = {}
        for name in fields:
            attname, plain = columns[name]
            values[name] = data[attname] if plain and attname in data else getattr(instance, attname)
        return values

    def set_saved_fields(self, fields: Iterable[str] | None = None) -> None:
        if not self.instance.pk:
            self.saved_data = {}
        elif fields is None:
            self.saved_data = self.tracker.loaded(self.instance)
        else:
            self.saved_data.update({name: snapshot_copy(value) for name, value in self.current(fields).items()})

    def has_changed(self, field: str) -> bool:
        if field in self.fields and self.field_map[field] not in self.instance.__dict__:
            return False  # deferred, never read nor assigned
        return super().has_changed(field)

    def previous(self, field: str) -> Any:
        if field in self.fields and field not in self.saved_data and not self.instance._state.adding:
            self.tracker.load_stored(self.instance, [field])
        return self.saved_data.get(field)


class SnapshotFieldTracker:
    """What model_utils' FieldTracker does for the synced models, with a cheaper snapshot: no descriptor
    wrappers, no patched `__init__`, and a reset only after a save or refresh that succeeded.

    The snapshot is a plain dict in the row's own `__dict__` (SNAPSHOT), taken when the row is loaded
    (the model's from_db() calls `loaded()`) and after each successful save() or refresh_from_db() (the
    model's overrides call `reset()`; model_utils patches save_base() on the class instead, and resets
    after a save that raised too); a new row has none until its first save. The per-instance tracker is
    only a view of it, built when something asks for it (`obj.logux_tracker`), so building or saving a
    row builds none. Not a FieldTracker subclass: none of its machinery is used."""

    # Per tracked field: its attname, and whether its descriptor reads a loaded value from the instance dict.
    columns: dict[str, tuple[str, bool]]
    # Tracked field names by name and by attname (`update_fields` and `refresh_from_db` take either).
    names: dict[str, str]
    field_map: dict[str, str]

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = set(fields)

    def contribute_to_class(self, model: type[models.Model], name: str) -> None:
        """Install on `model` (a prepared class) as `name`; each row's view is kept as `_<name>`."""
        # model_utils wraps each tracked field's descriptor, which makes every read and assignment
        # check for deferred fields (a Python call each), so that a deferred field's stored value is
        # snapshotted when it is loaded or first assigned. Here a deferred field loaded later goes
        # through refresh_from_db() (Django's descriptor calls it; the model's override resets), and the
        # stored value of one assigned before it was loaded is fetched when a save or `previous()` needs it.
        self.name, self.attname = name, f"_{name}"
        self.model_class = model
        attnames = {f.name: f.attname for f in model._meta.fields}
        self.field_map = {name: attnames.get(name, name) for name in self.fields}
        self.columns = {
            name: (attname, reads_instance_dict(getattr(model, attname, None)))
            for name, attname in self.field_map.items()
        }
        self.names = {**{name: name for name in self.columns}, **{a: name for name, (a, _) in self.columns.items()}}
        setattr(model, name, self)

    @overload
    def __get__(self, instance: None, owner: type[models.Model]) -> SnapshotFieldTracker: ...

    @overload
    def __get__(self, instance: models.Model, owner: type[models.Model]) -> SnapshotInstanceTracker: ...

    def __get__(
        self, instance: models.Model | None, owner: type[models.Model]
    ) -> SnapshotFieldTracker | SnapshotInstanceTracker:
        if instance is None:
            return self
        tracker = instance.__dict__.get(self.attname)
        if tracker is None or tracker.instance is not instance:  # none yet, or copied with the row
            tracker = SnapshotInstanceTracker(instance, self)
            instance.__dict__[self.attname] = tracker
        return tracker  # type: ignore[no-any-return]

    def loaded(self, instance: models.Model, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The tracked fields' values loaded in the instance (all, or `names`), copied for a snapshot."""
        data = instance.__dict__
        values = {}
        columns = self.columns
        for name in columns if names is None else names:
            attname, plain = columns[name]
            if attname in data:
                values[name] = snapshot_copy(data[attname] if plain else getattr(instance, attname))
        return values

    def load_stored(self, instance: models.Model, names: list[str]) -> None:
        """Put the stored values of `names` in the snapshot, in one query; those still deferred are
        loaded into the instance too, as reading them would."""
        if instance.pk is None:
            return
        attnames = [self.columns[name][0] for name in names]
        manager = type(instance)._base_manager.db_manager(instance._state.db, hints={"instance": instance})
        row = manager.filter(pk=instance.pk).values_list(*attnames).first()
        if row is None:  # no stored row: nothing to compare with
            return
        data = instance.__dict__
        saved = data.setdefault(SNAPSHOT, {})
        for name, attname, value in zip(names, attnames, row, strict=True):
            if attname not in data:
                setattr(instance, attname, value)
            saved[name] = snapshot_copy(value)

    def reset(self, instance: models.Model, fields: Iterable[str] | None = None) -> None:
        """Take the snapshot again after a successful save or refresh: of every loaded field, or of
        `fields` (names or attnames, as `update_fields` and refresh_from_db() take them)."""
        data = instance.__dict__
        if fields is None:
            data[SNAPSHOT] = self.loaded(instance)
        else:  # a new dict: a copy of the row (copy.copy) keeps its own
            names = self.names
            loaded = self.loaded(instance, [names[f] for f in fields if f in names])
            data[SNAPSHOT] = {**data.get(SNAPSHOT, {}), **loaded}
