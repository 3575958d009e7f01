"""What logux_sync.compat relies on still holds in the installed Django."""

from __future__ import annotations

from django.db import models

from logux_sync.compat import reads_instance_dict
from tests.test_app.models import Task


def test_a_plain_columns_descriptor_reads_the_instance_dict() -> None:
    assert reads_instance_dict(Task.__dict__["title"])
    task = Task(id="t", title="loaded")
    task.__dict__["title"] = "from the dict"
    assert task.title == "from the dict"  # what the tracker relies on when the check holds


def test_a_descriptor_of_its_own_does_not() -> None:
    assert not reads_instance_dict(models.FileField().descriptor_class(models.FileField()))
    assert not reads_instance_dict(property(lambda self: 1))
    assert not reads_instance_dict(None)


def test_the_model_utils_hooks_the_synced_tracker_extends_are_there() -> None:
    """logux_sync.sync.models._Tracker extends django-model-utils' FieldTracker (pinned to 5.0.x): it
    replaces `patch_init` (no snapshot in every __init__), `finalize_class` (no descriptor wrappers) and
    `_patch` (the reset after save_base/refresh_from_db), and builds FieldInstanceTracker views. A
    release that renames or reshapes them fails here first."""
    import inspect

    from model_utils.tracker import FieldInstanceTracker, FieldTracker, lightweight_deepcopy

    assert list(inspect.signature(FieldTracker._patch).parameters) == ["self", "model", "method", "fields_kwarg"]
    assert list(inspect.signature(FieldTracker.patch_init).parameters) == ["self", "model"]
    assert list(inspect.signature(FieldTracker.patch_save).parameters) == ["self", "model"]
    assert list(inspect.signature(FieldInstanceTracker.__init__).parameters) == [
        "self",
        "instance",
        "fields",
        "field_map",
    ]
    assert lightweight_deepcopy([1, {"a": 2}]) == [1, {"a": 2}]
    # patch_save() still goes through _patch() for both methods the tracker resets after.
    source = inspect.getsource(FieldTracker.patch_save)
    assert "_patch(" in source and "save_base" in source and "refresh_from_db" in source


def test_an_in_memory_sqlite_database_is_recognised() -> None:
    from django.db import connection

    from logux_sync.compat import is_in_memory_sqlite

    # The test database Django made for tests/settings.py's ":memory:" (a shared-cache memory URI).
    assert is_in_memory_sqlite(connection) and connection.is_in_memory_db()
