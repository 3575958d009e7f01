"""A client's values and ids must have the JSON type of the field's wire form: nothing is coerced, so the
value the database holds is the value the author's client holds (it is left out of the broadcast)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import models

from logux_sync.exceptions import UnsyncableId
from logux_sync.sync import delivery
from logux_sync.sync.options import WireError, wire_types
from logux_sync.testing import capture
from tests.test_app.models import Counter, Note, Project, Task

from .conftest import Endpoint
from .test_sync import answers_of, user
from .test_trust import act, stored

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sent() -> Iterator[delivery.Captured]:
    with capture() as pairs:
        yield pairs


def invalid_errors(answers: list[dict]) -> dict[str, list[str]]:
    """The `errors` of the `invalid` undo a validation failure gets: approved, undo, processed."""
    assert answers_of(answers) == ["approved", "action", "processed"], answers
    undo = answers[1]["action"]
    assert undo["type"] == "logux/undo" and undo["reason"] == "invalid", undo
    return dict(undo["errors"])


@pytest.fixture
def hooks_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The values Note's permission hooks were asked about."""
    seen: list[tuple[str, Any]] = []
    meta = Note.LoguxMeta
    create, change = meta.can_create, meta.can_change
    monkeypatch.setattr(meta, "can_create", staticmethod(lambda u, f: seen.append(("create", f)) or create(u, f)))
    monkeypatch.setattr(meta, "can_change", staticmethod(lambda u, o, f: seen.append(("change", f)) or change(u, o, f)))
    return seen


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"title": 123}, "title", "a string"),
        ({"title": None}, "title", "a string"),
        ({"title": ["x"]}, "title", "a string"),
        ({"done": 1}, "done", "a boolean"),
        ({"done": "true"}, "done", "a boolean"),
        ({"project": "1"}, "project", "an integer or null"),
        ({"project": 1.5}, "project", "an integer or null"),
        ({"project": 1.0}, "project", "an integer or null"),
        ({"project": True}, "project", "an integer or null"),
    ],
)
def test_a_change_of_the_wrong_json_type_is_undone_invalid_and_saves_nothing(
    endpoint: Endpoint, sent: list, fields: dict, field: str, expected: str
) -> None:
    u = user("ann", "change_task", "view_task")
    project = Project.objects.create(pk=1, name="p")
    Task.objects.create(id="t1", title="A", project=project)
    before, sent[:] = stored(Task), []
    errors = invalid_errors(act(endpoint, {"type": "tasks/change", "id": "t1", "fields": fields}, u.pk))
    assert list(errors) == [field] and f"expected {expected}" in errors[field][0], errors
    assert stored(Task) == before and sent == []


def test_values_of_the_wire_type_are_taken_as_they_are(endpoint: Endpoint) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    Project.objects.create(pk=1, name="p")
    create = {"type": "tasks/create", "id": "x1", "fields": {"title": "A", "done": True, "project": 1}}
    assert answers_of(act(endpoint, create, u.pk)) == ["approved", "processed"]
    change = {"type": "tasks/change", "id": "x1", "fields": {"project": None, "done": False}}
    assert answers_of(act(endpoint, change, u.pk)) == ["approved", "processed"]
    assert Task.objects.values_list("title", "done", "project").get() == ("A", False, None)


@pytest.mark.parametrize(
    "owner", [str, lambda pk: pk + 0.5, float, lambda pk: True], ids=["string", "fraction", "integral float", "true"]
)
def test_a_create_of_the_wrong_json_type_is_refused_before_any_permission_hook(
    endpoint: Endpoint, sent: list, hooks_seen: list, owner: Any
) -> None:
    ann = user("ann")
    # Each is ann's pk coerced (10.5 truncated to 10): can_create would approve it on a value not sent.
    value = owner(ann.pk)
    create = {"type": "notes/create", "id": "n1", "fields": {"text": "x", "owner": value}}
    errors = invalid_errors(act(endpoint, create, ann.pk))
    assert list(errors) == ["owner"] and "expected an integer" in errors["owner"][0]
    assert hooks_seen == [] and stored(Note) == [] and sent == []


def test_a_change_of_the_wrong_json_type_reaches_no_permission_hook(endpoint: Endpoint, hooks_seen: list) -> None:
    ann = user("ann")
    Note.objects.create(id="n1", text="x", owner=ann)
    before, hooks_seen[:] = stored(Note), []
    errors = invalid_errors(act(endpoint, {"type": "notes/change", "id": "n1", "fields": {"text": 5}}, ann.pk))
    assert list(errors) == ["text"] and hooks_seen == [] and stored(Note) == before


@pytest.mark.parametrize("bad_id", [7, 7.0, True, None, ["x"], {"a": 1}])
def test_an_id_that_is_not_a_string_is_forbidden(endpoint: Endpoint, sent: list, bad_id: Any) -> None:
    u = user("ann", "add_task", "change_task", "view_task", "delete_task")
    Task.objects.create(id="7", title="A")
    before, sent[:] = stored(Task), []
    for action in (
        {"type": "tasks/create", "id": bad_id, "fields": {"title": "B"}},
        {"type": "tasks/change", "id": bad_id, "fields": {"title": "B"}},
        {"type": "tasks/delete", "id": bad_id},
    ):
        assert answers_of(act(endpoint, action, u.pk)) == ["forbidden"], action
    assert stored(Task) == before and sent == []


def test_an_integer_pk_takes_only_its_wire_id(endpoint: Endpoint) -> None:
    """Wire ids are `str(pk)`: "7" names row 7; 7, "07" and " 7" would be other ids to the client."""
    counters = Counter.logux_options
    assert counters.sent_id("7") == 7
    for bad in ("07", " 7", "7.0", "+7", 7):
        with pytest.raises(ValueError):
            counters.sent_id(bad)
    # Ids this side wrote (addressing, tombstones) are read as before: a refusal there would stop delivery.
    assert counters.python_id("07") == counters.python_id(7) == 7
    u = user("ann", "view_counter")
    Counter.objects.create(pk=7)
    subscribe = {"type": "logux/subscribe", "channel": "counters/7"}
    assert answers_of(act(endpoint, subscribe, u.pk)) == ["approved", "action", "processed"]
    assert answers_of(act(endpoint, {**subscribe, "channel": "counters/07"}, u.pk)) == ["forbidden"]


@pytest.mark.parametrize(
    ("field", "types"),
    [
        (models.CharField(max_length=5), {str}),
        (models.TextField(), {str}),
        (models.SlugField(), {str}),
        (models.DateField(), {str}),
        (models.DateTimeField(), {str}),
        (models.TimeField(), {str}),
        (models.UUIDField(), {str}),
        (models.DecimalField(max_digits=5, decimal_places=2), {str}),
        (models.BooleanField(), {bool}),
        (models.IntegerField(), {int}),
        (models.PositiveSmallIntegerField(), {int}),
        (models.BigIntegerField(null=True), {int, type(None)}),
        (models.FloatField(), {int, float}),
        (models.CharField(max_length=5, null=True), {str, type(None)}),
    ],
)
def test_wire_types_follow_what_to_wire_emits(field: models.Field, types: set[type]) -> None:
    kind = wire_types(field)
    assert kind is not None and set(kind[0]) == types


def test_a_json_field_takes_any_json() -> None:
    assert wire_types(models.JSONField()) is None


# ---- a row id with "/" could never be subscribed (`tasks/a/b` is no row channel) ----------------


@pytest.mark.parametrize("row_id", ["a/b", "/", "a/"])
def test_a_create_of_an_id_with_a_slash_is_undone_invalid_like_an_empty_id(
    endpoint: Endpoint, sent: list, row_id: str
) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    empty = invalid_errors(act(endpoint, {"type": "tasks/create", "id": "", "fields": {"title": "A"}}, u.pk))
    errors = invalid_errors(act(endpoint, {"type": "tasks/create", "id": row_id, "fields": {"title": "A"}}, u.pk))
    assert list(errors) == list(empty) == ["id"] and '"/"' in errors["id"][0], errors
    assert stored(Task) == [] and sent == []


def test_django_refuses_to_create_a_synced_row_whose_id_has_a_slash(sent: list) -> None:
    with pytest.raises(UnsyncableId, match='"/"'):
        Task.objects.create(id="a/b", title="A")
    with pytest.raises(UnsyncableId):
        Task.objects.bulk_create([Task(id="ok", title="A"), Task(id="a/b", title="B")])
    assert stored(Task) == [] and sent == []
    # A row saved before this check still saves: it is not made worse.
    Task.objects.create(id="ok", title="A")
    Task.objects.filter(pk="ok").update(id="old/row")
    task = Task.objects.get(pk="old/row")
    task.title = "B"
    task.save()
    assert Task.objects.get(pk="old/row").title == "B"


def test_a_number_too_large_for_a_float_field_is_a_wire_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """float(10**400) raises OverflowError, which is neither a ValueError nor a TypeError."""
    opts = Counter.logux_options
    monkeypatch.setattr(opts, "field", lambda name: models.FloatField(name=name))
    with pytest.raises(WireError, match="value"):
        opts.python_value("value", 10**400)
    assert opts.python_value("value", 2) == 2.0
