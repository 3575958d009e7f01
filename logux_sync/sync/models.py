"""The `LoguxSynced` mixin, its queryset, and the remembered filter subscriptions."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import django
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.signals import class_prepared

from ..compat import SNAPSHOT, SnapshotFieldTracker, SnapshotInstanceTracker
from ..exceptions import UnsyncableId
from .changes import Entry, change_entry, is_muted
from .clocks import latest_time, server_meta, stamped
from .options import LoguxOptions, to_wire
from .outbox import queue_changes
from .tables import LoguxLateDelivery, LoguxOutbox, LoguxSubscription, LoguxTombstone

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+

# The synced fields' tracker (model_utils' per-instance API: `obj.logux_tracker.has_changed("title")`).
TRACKER = "logux_tracker"
# The edit a save() is making, for the post_save receiver: (changed fields, old wire values, meta).
PENDING = "_logux_pending"


def _obj_stamp(obj: LoguxSynced, overwritten: Iterable[str] = ()) -> dict[str, Any]:
    """The meta of the edit being saved: the client's (set once by the generic commands) or a fresh
    server one for ORM, admin and shell edits, newer than the clocks of the `overwritten` fields."""
    meta = obj.__dict__.pop("_logux_meta", None)
    if meta:
        return dict(meta)
    return server_meta(after=latest_time(obj.__dict__.get("logux_clocks"), overwritten))


class LoguxSyncedQuerySet(models.QuerySet[Any]):
    """Queryset paths that skip signals (`update`, `bulk_create`, `bulk_update`) still sync."""

    def _opts(self) -> LoguxOptions:
        return self.model.logux_options  # type: ignore[no-any-return]

    def update(self, **kwargs: Any) -> int:
        opts = self._opts()
        touched = [name for name in opts.fields if opts.field(name).attname in kwargs or name in kwargs]
        if not touched or is_muted():
            return super().update(**kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            before = {obj.pk: obj for obj in self.select_for_update().only(opts.id_field.attname, *opts.fields)}
            if not before:
                return 0
            count = super().update(**kwargs)
            after = list(self.model._base_manager.using(self.db).filter(pk__in=list(before)))
            changed_rows: list[Any] = []
            changes: list[Entry] = []
            for obj in after:
                old = opts.wire_fields(before[obj.pk])
                new = opts.wire_fields(obj)
                changed = [name for name in opts.fields if old[name] != new[name]]
                if not changed:
                    continue
                meta = server_meta(after=latest_time(obj.logux_clocks, changed))
                obj.logux_clocks = stamped(obj.logux_clocks, changed, meta, len(changed) == len(opts.fields))
                changed_rows.append(obj)
                changes.append(change_entry(opts, obj, "changed", changed, old, meta))
            if changed_rows:
                models.QuerySet(model=self.model, using=self.db).bulk_update(changed_rows, ["logux_clocks"])
            queue_changes(changes, self.db)
            return count

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        opts = self._opts()
        objs = list(objs)
        metas = []
        for obj in objs:
            _check_new_id(opts, obj.pk)
            meta = _obj_stamp(obj)
            obj.logux_clocks = stamped(None, list(opts.fields), meta, every=True)
            metas.append(meta)
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            changes: list[Entry] = [
                change_entry(opts, obj, "created", list(opts.fields), None, meta)
                for obj, meta in zip(created, metas, strict=True)
            ]
            queue_changes(changes, self.db)
            _reset_trackers(created)
        return created

    def bulk_update(self, objs: Iterable[Any], fields: Iterable[str], batch_size: int | None = None) -> int:
        opts = self._opts()
        objs, fields = list(objs), list(fields)
        synced = [name for name in fields if name in opts.fields]
        if not synced or not objs:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        with transaction.atomic(using=self.db, savepoint=False):
            stored = {
                o.pk: o
                for o in self.model._base_manager.using(self.db)
                .select_for_update()
                .filter(pk__in=[o.pk for o in objs])
                .only(opts.id_field.attname, "logux_clocks", *opts.fields)
            }
            changes: list[Entry] = []
            for obj in objs:
                before = stored.get(obj.pk)
                if before is None:
                    continue
                old = opts.wire_fields(before)
                changed = [name for name in synced if old[name] != opts.wire_value(obj, name)]
                meta = server_meta(after=latest_time(before.logux_clocks, changed))
                obj.logux_clocks = stamped(before.logux_clocks, changed, meta, len(changed) == len(opts.fields))
                if changed:
                    changes.append(change_entry(opts, obj, "changed", changed, old, meta))
            # A plain queryset: Django's bulk_update() calls update(), which must not broadcast again.
            plain: models.QuerySet[Any] = models.QuerySet(model=self.model, using=self.db)
            count = plain.bulk_update(objs, [*fields, "logux_clocks"], batch_size=batch_size)
            queue_changes(changes, self.db)
            _reset_trackers(objs)
            return count


def _check_new_id(opts: LoguxOptions, pk: Any) -> None:
    """Refuse to insert a row no client could subscribe to (a row saved before stays as it is)."""
    problem = opts.id_problem(pk)
    if problem is not None:
        raise UnsyncableId(f"{opts.model._meta.label} {pk!r}: {problem}")


def _reset_trackers(objs: Iterable[Any]) -> None:
    for obj in objs:
        obj.__dict__[SNAPSHOT] = {} if obj.pk is None else getattr(type(obj), TRACKER).loaded(obj)


LoguxSyncedManager = models.Manager.from_queryset(LoguxSyncedQuerySet)


class LoguxSynced(models.Model):
    """Mixin for models whose rows live in every subscribed browser (Logux SyncMap on the wire).

    Declare `class LoguxMeta: plural = "tasks"; fields = [...]` (and optionally `channels`).
    """

    # Per synced field, `[time, id]` of the edit that set its value: the Logux clocks that decide
    # last-write-wins. A column on the row (not a side table) so a snapshot and a conflict check
    # each read one row, and a save writes one row.
    logux_clocks = models.JSONField(default=dict, editable=False, blank=True)

    objects = LoguxSyncedManager()

    # The model's parsed LoguxMeta (plural, fields, channels, read_only, hooks), set when the class is prepared.
    logux_options: ClassVar[LoguxOptions]
    # Each concrete synced model's tracker of its synced fields, set when the class is prepared.
    logux_tracker: SnapshotInstanceTracker

    class Meta:
        abstract = True

    # ---- saving ----

    def save(self, *args: Any, **kwargs: Any) -> None:
        if args and django.VERSION < (6, 0):
            # Django 5.2 still takes (force_insert, force_update, using, update_fields) positionally,
            # deprecated (6.0 refuses them): read as the keywords they stand for, warned about as Django does.
            warnings.warn("Passing positional arguments to save() is deprecated", DeprecationWarning, stacklevel=2)
            kwargs.update(zip(("force_insert", "force_update", "using", "update_fields"), args, strict=False))
            args = ()
        opts = self.logux_options
        creating = self._state.adding
        if creating:
            _check_new_id(opts, self.pk)
        # The generic commands name the fields a client edit won, changed value or not: their clocks move.
        explicit = self.__dict__.pop("_logux_fields", None)
        saved = None if creating else self._saved_values()
        if saved is None:
            changed = list(opts.fields)
        elif explicit is not None:
            changed = [name for name in opts.fields if name in explicit]
        else:
            changed = self._changed_fields(saved)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:  # names or attnames
            changed = [n for n, a in opts.named_attnames if n in changed and (n in update_fields or a in update_fields)]
        meta = _obj_stamp(self, changed)
        if changed:
            self.logux_clocks = stamped(self.logux_clocks, changed, meta, len(changed) == len(opts.fields))
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "logux_clocks"}
        using = kwargs.get("using")
        if using is None:  # handed to Model.save() too, which would ask the router again
            using = kwargs["using"] = router.db_for_write(type(self), instance=self)
        # The post_save receiver (signals.on_post_save) queues exactly this edit.
        self.__dict__[PENDING] = (changed, None if saved is None else self._old_wire(saved, changed), meta)
        # The row and its outbox entry commit together, even in autocommit: a failure in queueing it
        # must not leave the row saved without it.
        try:
            with transaction.atomic(using=using, savepoint=False):
                super().save(*args, **kwargs)
        finally:
            self.__dict__.pop(PENDING, None)  # the receiver took it, unless the save failed first
        # Only now: a save that raised leaves its changes to be found by the next save.
        getattr(type(self), TRACKER).reset(self, kwargs.get("update_fields"))

    def refresh_from_db(
        self,
        using: str | None = None,
        fields: Iterable[str] | None = None,
        from_queryset: models.QuerySet[Any] | None = None,
    ) -> None:
        # Django's descriptor loads a deferred field through this too: its value joins the snapshot.
        fields = None if fields is None else list(fields)
        super().refresh_from_db(using, fields, from_queryset)
        getattr(type(self), TRACKER).reset(self, fields)

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> Self:
        # Whatever else Django passes (6.1's `fetch_mode`; none on 5.2) goes through unchanged.
        instance = super().from_db(db, field_names, values, **kwargs)
        instance.__dict__[SNAPSHOT] = getattr(cls, TRACKER).loaded(instance)  # the values loaded
        return instance

    def _saved_values(self) -> dict[str, Any]:
        """The synced fields' stored values (the tracker's snapshot). Those missing from it (deferred
        when the row was loaded) are fetched first, in one query, and the ones still deferred loaded:
        a save compares the assigned ones and sends the others' values."""
        saved: dict[str, Any] = self.__dict__.setdefault(SNAPSHOT, {})
        missing = [name for name in self.logux_options.fields if name not in saved]
        if missing:
            getattr(type(self), TRACKER).load_stored(self, missing)
        return saved

    def _changed_fields(self, saved: dict[str, Any]) -> list[str]:
        """The synced fields whose value differs from the stored one (`tracker.has_changed`)."""
        data = self.__dict__
        pairs = self.logux_options.named_attnames
        return [name for name, attname in pairs if attname in data and saved.get(name) != data[attname]]

    def _old_wire(self, saved: dict[str, Any], changed: list[str]) -> dict[str, Any]:
        """The row's synced values before this save: the stored ones for `changed` fields."""
        data = self.__dict__
        old = {}
        for name, attname in self.logux_options.named_attnames:
            if name in changed:
                value = saved.get(name)
            else:
                value = data[attname] if attname in data else getattr(self, attname)
            old[name] = to_wire(value)
        return old

    # ---- permission hooks: override on the model, or define the same names on LoguxMeta ----

    def _perm(self, action: str) -> str:
        return f"{self._meta.app_label}.{action}_{self._meta.model_name}"

    def logux_can_read(self, user: Any) -> bool:
        """May `user` receive this row? Default: Django's `view` permission (model- or object-level)."""
        hook = getattr(self.logux_options.hooks, "can_read", None)
        if hook is not None:
            return bool(hook(user, self))
        perm = self._perm("view")
        return bool(user.has_perm(perm) or user.has_perm(perm, self))

    def logux_readers(self) -> Q | bool | None:
        """Who may receive this row, in bulk: a `Q` over the user model (only active users match; an
        anonymous subscriber never does), True for every subscriber, anonymous ones included, False for
        none, or None to ask `logux_can_read` per subscriber's user. Must select exactly the users
        `can_read` admits. Default: `LoguxMeta.readers(obj)` if defined, else None."""
        hook = getattr(self.logux_options.hooks, "readers", None)
        if hook is None:
            return None
        readers = hook(self)
        if readers is not None and not isinstance(readers, (Q, bool)):
            raise TypeError(f"{type(self).__name__}.LoguxMeta.readers must return a Q, a bool or None")
        return readers  # type: ignore[no-any-return]

    @classmethod
    def logux_can_read_all(cls, user: Any) -> bool:
        """True when `user` may read every row without a per-row check: the default `can_read` and a
        model-level `view` permission. Lets a list load skip building model instances."""
        if getattr(cls.logux_options.hooks, "can_read", None) is not None:
            return False
        if getattr(cls.logux_can_read, "__func__", cls.logux_can_read) is not LoguxSynced.logux_can_read:
            return False
        return bool(user.has_perm(f"{cls._meta.app_label}.view_{cls._meta.model_name}"))

    @classmethod
    def logux_can_subscribe(cls, user: Any, filter: dict[str, Any], channel: str) -> bool:
        """May `user` subscribe to a list of rows (plural channel with `filter`, or a derived channel)?"""
        hook = getattr(cls.logux_options.hooks, "can_subscribe", None)
        if hook is not None:
            return bool(hook(user, filter, channel))
        return bool(user.has_perm(f"{cls._meta.app_label}.view_{cls._meta.model_name}"))

    @classmethod
    def logux_can_create(cls, user: Any, fields: dict[str, Any]) -> bool:
        """May `user` create a row with these fields? Default: Django's `add` permission."""
        hook = getattr(cls.logux_options.hooks, "can_create", None)
        if hook is not None:
            return bool(hook(user, fields))
        return bool(user.has_perm(f"{cls._meta.app_label}.add_{cls._meta.model_name}"))

    def logux_can_change(self, user: Any, fields: dict[str, Any]) -> bool | Iterable[str]:
        """May `user` change these fields? Return a bool, or the names of the fields it may change."""
        hook = getattr(self.logux_options.hooks, "can_change", None)
        if hook is not None:
            return hook(user, self, fields)  # type: ignore[no-any-return]
        perm = self._perm("change")
        return bool(user.has_perm(perm) or user.has_perm(perm, self))

    def logux_can_delete(self, user: Any) -> bool:
        """May `user` delete this row? Default: Django's `delete` permission."""
        hook = getattr(self.logux_options.hooks, "can_delete", None)
        if hook is not None:
            return bool(hook(user, self))
        perm = self._perm("delete")
        return bool(user.has_perm(perm) or user.has_perm(perm, self))


def _prepare(sender: type[models.Model], **kwargs: Any) -> None:
    """Give each concrete synced model its options and its tracker; its handlers and signal receivers
    are connected by the model-sync app (LoguxModelSyncConfig.ready())."""
    if not issubclass(sender, LoguxSynced) or sender._meta.abstract or sender._meta.proxy:
        return
    opts = LoguxOptions.from_model(sender)
    sender.logux_options = opts
    SnapshotFieldTracker(opts.fields).contribute_to_class(sender, TRACKER)


class_prepared.connect(_prepare, dispatch_uid="logux_sync.sync.prepare")

__all__ = ["LoguxLateDelivery", "LoguxOutbox", "LoguxSubscription", "LoguxSynced", "LoguxTombstone"]
