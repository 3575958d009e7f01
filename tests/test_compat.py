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


def test_model_utils_instance_tracker_still_takes_what_ours_gives_it(db: None) -> None:
    """logux_sync.compat.SnapshotInstanceTracker subclasses model_utils' FieldInstanceTracker (5.x): it
    passes (instance, fields, field_map) and relies on model_utils' has_changed / changed / the `with`
    context reading `saved_data`, `current()` and `field_map`. A release that reshapes them fails here."""
    import inspect

    from model_utils.tracker import FieldInstanceTracker

    signature = inspect.signature(FieldInstanceTracker.__init__)
    assert list(signature.parameters) == ["self", "instance", "fields", "field_map"]
    task = Task.objects.create(id="t1", title="A")
    tracker = task.logux_tracker
    assert isinstance(tracker, FieldInstanceTracker) and tracker.field_map["project"] == "project_id"
    task.title = "B"
    tracker.saved_data = {**tracker.saved_data, "done": True}  # model_utils must read our snapshot
    assert FieldInstanceTracker.has_changed(tracker, "title") and FieldInstanceTracker.has_changed(tracker, "done")
    assert FieldInstanceTracker.changed(tracker) == {"title": "A", "done": True}
    assert FieldInstanceTracker.previous(tracker, "title") == "A"
    with tracker:  # model_utils' context takes the snapshot again on exit, through set_saved_fields()
        task.title = "C"
    assert tracker.saved_data["title"] == "C" and not tracker.changed()


def test_model_utils_copy_keeps_a_file_without_its_row() -> None:
    """snapshot_copy() copies a mutable value with model_utils' lightweight_deepcopy, which copies a
    FieldFile without deep-copying the row it belongs to."""
    from django.db.models.fields.files import FieldFile
    from model_utils.tracker import lightweight_deepcopy

    from logux_sync.compat import snapshot_copy

    task = Task(id="t1", title="A")
    field = models.FileField(name="file")
    original = FieldFile(task, field, "a.txt")
    copied = lightweight_deepcopy(original)
    assert copied == original and copied is not original and copied.name == "a.txt"
    assert snapshot_copy(original) == original and snapshot_copy([1, {"a": 2}]) == [1, {"a": 2}]


def test_an_in_memory_sqlite_database_is_recognised() -> None:
    from django.db import connection

    from logux_sync.compat import is_in_memory_sqlite

    # The test database Django made for tests/settings.py's ":memory:" (a shared-cache memory URI).
    assert is_in_memory_sqlite(connection) and connection.is_in_memory_db()
