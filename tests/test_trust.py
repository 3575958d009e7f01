"""Model sync as a hostile logged-in client would try it: takeovers, forged times, unbounded state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from logux_sync.protocol import is_first_older
from logux_sync.registry import logux
from logux_sync.sync import delivery
from logux_sync.sync.clocks import field_clock, now_ms
from logux_sync.sync.models import LoguxSubscription
from logux_sync.testing import capture
from tests.test_app.models import Note, Task

from .conftest import Endpoint, action_command
from .test_sync import answers_of, user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sent() -> Iterator[delivery.Captured]:
    with capture() as pairs:
        yield pairs


def act(endpoint: Endpoint, action: dict, user_id: Any, time: float | None = None, node: str = "c:t") -> list[dict]:
    time = now_ms() if time is None else time
    return endpoint.answers(action_command(action, meta_id=f"{int(time)} {user_id}:{node} 0", time=time))


def subscribe(endpoint: Endpoint, channel: str, user_id: Any, node: str = "c:t", **extra: Any) -> list[dict]:
    return act(endpoint, {"type": "logux/subscribe", "channel": channel, **extra}, user_id, node=node)


def shape(answers: list[dict]) -> list[tuple[str, str | None]]:
    """The answers as a client learns of them: their kinds, and the reason of an undo."""
    return [(a["answer"], a.get("action", {}).get("reason")) for a in answers]


def undo_reason(answers: list[dict]) -> str:
    assert answers_of(answers) == ["approved", "action", "processed"], answers
    assert answers[1]["action"]["type"] == "logux/undo"
    return str(answers[1]["action"]["reason"])


def stored(model: type[Any]) -> list[dict[str, Any]]:
    return list(model._base_manager.order_by("pk").values())


# ---- 1. a create never overrides permissions -----------------------------------------------------


def test_a_create_over_a_row_the_author_may_not_read_is_refused_and_changes_nothing(
    endpoint: Endpoint, sent: list
) -> None:
    ann, bob = user("ann"), user("bob")
    Note.objects.create(id="n1", text="ann's secret", owner=ann)
    before, sent[:] = stored(Note), []
    takeover = {"type": "notes/create", "id": "n1", "fields": {"text": "mine now", "owner": bob.pk}}
    assert answers_of(act(endpoint, takeover, bob.pk)) == ["forbidden"]
    assert stored(Note) == before and sent == []
    # Bob's own create passes the same hook: the refusal is the existing row's rules, not can_create.
    own = {"type": "notes/create", "id": "n2", "fields": {"text": "mine", "owner": bob.pk}}
    assert answers_of(act(endpoint, own, bob.pk)) == ["approved", "processed"]
    # And his subscribe to ann's row learns nothing of it.
    assert shape(subscribe(endpoint, "notes/n1", bob.pk)) == shape(subscribe(endpoint, "notes/nope", bob.pk))
    assert undo_reason(subscribe(endpoint, "notes/n1", bob.pk)) == "notFound"


def test_a_create_over_a_readable_row_is_judged_as_a_change_of_it(endpoint: Endpoint) -> None:
    Task.objects.create(id="t1", title="A")
    creator = user("creator", "add_task", "view_task")  # may create, may not change
    before = stored(Task)
    create = {"type": "tasks/create", "id": "t1", "fields": {"title": "taken"}}
    assert answers_of(act(endpoint, create, creator.pk)) == ["forbidden"]
    assert stored(Task) == before
    editor = user("editor", "add_task", "view_task", "change_task")
    assert answers_of(act(endpoint, create, editor.pk, time=now_ms() + 1)) == ["approved", "processed"]
    assert Task.objects.get(pk="t1").title == "taken"


def test_field_level_rules_hold_for_a_create_over_an_existing_row(endpoint: Endpoint) -> None:
    owner = user("owner")
    Note.objects.create(id="n1", text="a", owner=owner)
    # Notes: an owner who is not staff may change `text` only.
    create = {"type": "notes/create", "id": "n1", "fields": {"text": "b", "pinned": True, "owner": owner.pk}}
    assert answers_of(act(endpoint, create, owner.pk, time=now_ms() + 1)) == ["forbidden"]
    assert Note.objects.get(pk="n1").pinned is False


def test_a_row_that_appears_between_access_and_process_is_judged_again(endpoint: Endpoint) -> None:
    ann, bob = user("ann"), user("bob")
    create = {"type": "notes/create", "id": "n1", "fields": {"text": "bob's", "owner": bob.pk}}
    handler_class = logux.actions.find("notes/create")
    assert handler_class is not None
    from logux_sync.protocol import Meta

    meta = Meta({"id": f"{now_ms()} {bob.pk}:c:t 0", "time": now_ms()})
    handler = handler_class(create, meta)
    assert handler.access(create, meta) is True  # no such row yet: a create bob may make
    Note.objects.create(id="n1", text="ann's", owner=ann)  # ann's create lands first
    from logux_sync.exceptions import Undo

    with pytest.raises(Undo) as undo:
        handler.process(create, meta)
    assert undo.value.reason == "denied"
    assert Note.objects.get(pk="n1").owner_id == ann.pk and Note.objects.get(pk="n1").text == "ann's"


def test_an_unreadable_row_answers_like_a_missing_one(endpoint: Endpoint, sent: list) -> None:
    ann, bob = user("ann"), user("bob")
    Note.objects.create(id="n1", text="ann's", owner=ann)
    before, sent[:] = stored(Note), []
    for action in (
        {"type": "notes/change", "id": "{id}", "fields": {"text": "x"}},
        {"type": "notes/delete", "id": "{id}"},
        {"type": "logux/subscribe", "channel": "notes/{id}"},
        {"type": "logux/subscribe", "channel": "notes/{id}", "creating": True},
    ):

        def made(row_id: str, action: dict = action) -> dict:
            return json.loads(json.dumps(action).replace("{id}", row_id))

        hidden = shape(act(endpoint, made("n1"), bob.pk))
        assert hidden == shape(act(endpoint, made("missing"), bob.pk)), action
    assert stored(Note) == before and sent == []
    assert not LoguxSubscription.objects.exists()  # bob's node is not remembered for ann's row


def test_hooks_receive_python_values(endpoint: Endpoint) -> None:
    bob = user("bob")
    seen: list[dict[str, Any]] = []
    hooks = Note.logux_options.hooks
    original = hooks.can_create

    def spy(user: Any, fields: dict[str, Any]) -> bool:
        seen.append(fields)
        return bool(original(user, fields))

    hooks.can_create = staticmethod(spy)
    try:
        # The owner as its wire form (the user's integer pk); as a string it is refused before the hook
        # sees it (tests/test_wire_types.py).
        create = {"type": "notes/create", "id": "n1", "fields": {"text": "t", "owner": bob.pk}}
        assert answers_of(act(endpoint, create, bob.pk)) == ["approved", "processed"]
    finally:
        hooks.can_create = original
    assert seen and all(fields["owner"] == bob.pk and type(fields["owner"]) is int for fields in seen)
    assert Note.objects.get(pk="n1").owner_id == bob.pk


# ---- 2. the database and every client agree -----------------------------------------------------


def _meta(clock: list[Any]) -> dict[str, Any]:
    return {"time": clock[0], "id": clock[1]}


@pytest.mark.parametrize("path", ["save", "update", "bulk_update"])
def test_a_server_edit_beats_a_client_clock_a_few_seconds_ahead(endpoint: Endpoint, sent: list, path: str) -> None:
    editor = user("editor", "add_task", "view_task", "change_task")
    act(endpoint, {"type": "tasks/create", "id": "t1", "fields": {"title": "A"}}, editor.pk)
    ahead = now_ms() + 5000  # within MAX_CLOCK_SKEW: Logux allows it
    change = {"type": "tasks/change", "id": "t1", "fields": {"title": "client"}}
    assert answers_of(act(endpoint, change, editor.pk, time=ahead)) == ["approved", "processed"]
    client_clock = field_clock(Task.objects.get(pk="t1").logux_clocks, "title")
    sent.clear()
    if path == "save":
        task = Task.objects.get(pk="t1")
        task.title = "server"
        task.save()
    elif path == "update":
        Task.objects.filter(pk="t1").update(title="server")
    else:
        task = Task.objects.get(pk="t1")
        task.title = "server"
        Task.objects.bulk_update([task], ["title"])
    task = Task.objects.get(pk="t1")
    assert task.title == "server"
    # The broadcast is newer than the client's edit, so every client takes it, and the stored clock is its.
    action, meta = sent[-1]
    assert action["fields"] == {"title": "server"}
    assert is_first_older(_meta(client_clock), meta) and meta["time"] > ahead
    assert field_clock(task.logux_clocks, "title") == [meta["time"], meta["id"]]
    # A client edit that is older than the server's loses, as it does on every client.
    late = {"type": "tasks/change", "id": "t1", "fields": {"title": "late"}}
    act(endpoint, late, editor.pk, time=ahead)
    assert Task.objects.get(pk="t1").title == "server"


def test_a_server_delete_is_stamped_after_the_row_clocks(endpoint: Endpoint, sent: list) -> None:
    editor = user("editor", "add_task", "view_task", "change_task")
    ahead = now_ms() + 5000
    act(endpoint, {"type": "tasks/create", "id": "t1", "fields": {"title": "A"}}, editor.pk, time=ahead)
    Task.objects.get(pk="t1").delete()
    assert sent[-1][0]["type"] == "tasks/deleted" and sent[-1][1]["time"] > ahead


@pytest.mark.parametrize(
    "action",
    [
        {"type": "tasks/create", "id": "t2", "fields": {"title": "pinned"}},
        {"type": "tasks/change", "id": "t1", "fields": {"title": "pinned"}},
        {"type": "tasks/delete", "id": "t1"},
    ],
)
def test_an_edit_stamped_beyond_the_allowed_skew_is_undone(endpoint: Endpoint, sent: list, action: dict) -> None:
    editor = user("editor", "add_task", "view_task", "change_task", "delete_task")
    Task.objects.create(id="t1", title="A")
    before, sent[:] = stored(Task), []
    answers = act(endpoint, action, editor.pk, time=now_ms() + 60_000)
    assert undo_reason(answers) == "clockSkew" and "MAX_CLOCK_SKEW" in answers[1]["action"]["details"]
    assert stored(Task) == before and sent == []
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "MAX_CLOCK_SKEW": 120}):
        assert answers_of(act(endpoint, action, editor.pk, time=now_ms() + 60_000)) == ["approved", "processed"]
    assert stored(Task) != before


# ---- 4. bounded resources per client ------------------------------------------------------------


def viewer() -> User:
    return user("viewer", "view_task")


def test_a_huge_filter_is_undone_and_stores_nothing(endpoint: Endpoint) -> None:
    u = viewer()
    answers = subscribe(endpoint, "tasks", u.pk, filter={"title": "x" * 900_000})
    assert undo_reason(answers) == "limit" and "MAX_FILTER_SIZE" in answers[1]["action"]["details"]
    assert not LoguxSubscription.objects.exists()
    # Just under the limit is fine.
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"title": "x" * 1000})) == ["approved", "processed"]


@pytest.mark.parametrize("value", [{"nested": "x" * 500}, ["x"] * 100, [1]])
def test_a_filter_compares_fields_with_scalars_only(endpoint: Endpoint, value: Any) -> None:
    u = viewer()
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"title": value})) == ["forbidden"]
    assert not LoguxSubscription.objects.exists()


@pytest.mark.parametrize("value", ["abc", [], ["title"], 1, True])
def test_a_filter_that_is_not_an_object_is_forbidden_and_loads_nothing(endpoint: Endpoint, value: Any) -> None:
    u = viewer()
    Task.objects.create(id="t1", title="A")
    # Refused like a filter naming an unknown field, not read as no filter (which loads every row).
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"nope": 1})) == ["forbidden"]
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter=value)) == ["forbidden"]
    assert not LoguxSubscription.objects.exists()
    # A null filter is no filter, as an absent one.
    loaded = subscribe(endpoint, "tasks", u.pk, filter=None)
    assert [a["action"]["type"] for a in loaded if a["answer"] == "action"] == ["logux/subscribed", "tasks/created"]


def test_subscriptions_per_node_and_per_user_are_bounded(endpoint: Endpoint) -> None:
    u = viewer()
    with override_settings(
        LOGUX_SYNC={"SECRET": "secret", "MAX_SUBSCRIPTIONS_PER_NODE": 3, "MAX_SUBSCRIPTIONS_PER_USER": 5}
    ):
        for n in range(3):
            assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"title": str(n)})) == ["approved", "processed"]
        answers = subscribe(endpoint, "tasks", u.pk, filter={"title": "one too many"})
        assert undo_reason(answers) == "limit" and "MAX_SUBSCRIPTIONS_PER_NODE" in answers[1]["action"]["details"]
        # Resubscribing (a reconnect) refreshes a remembered one.
        assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"title": "0"})) == ["approved", "processed"]
        for n in range(2):
            assert answers_of(subscribe(endpoint, "tasks", u.pk, node="d:t", filter={"title": str(n)}))[0] == "approved"
        answers = subscribe(endpoint, "tasks", u.pk, node="e:t", filter={"title": "x"})
        assert undo_reason(answers) == "limit" and "MAX_SUBSCRIPTIONS_PER_USER" in answers[1]["action"]["details"]
        Task.objects.create(id="t1", title="A")
        assert undo_reason(subscribe(endpoint, "tasks/t1", u.pk, node="e:t")) == "limit"
    assert LoguxSubscription.objects.count() == 5


def test_stored_keys_are_bounded_whatever_the_client_sends(endpoint: Endpoint) -> None:
    u = viewer()
    Task.objects.create(id="t1", title="A")
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"title": "y" * 1000}))[0] == "approved"
    assert answers_of(subscribe(endpoint, "projects/" + "9" * 18 + "/tasks", u.pk))[0] == "approved"
    long_node = "n" * 300
    assert undo_reason(subscribe(endpoint, "tasks/t1", u.pk, node=f"{long_node}:t")) == "limit"
    keys = list(LoguxSubscription.objects.values_list("filter_key", "node_id"))
    assert len(keys) == 2 and all(len(key) == 64 and len(node) <= 255 for key, node in keys)


# ---- readers: the bulk path trusts them, so they must say what can_read says -----------------------


def test_the_test_models_readers_agree_with_can_read() -> None:
    from logux_sync.testing import readers_disagreements

    ann, bob = user("ann"), user("bob")
    idle = user("idle", is_active=False)
    staff = user("staff", is_staff=True)
    for n, owner in enumerate((ann, bob, idle, staff)):
        Note.objects.create(id=f"n{n}", text="t", owner=owner, pinned=bool(n % 2))
    # An inactive owner counts as anonymous on both paths (load_user()), so agreement holds there too.
    assert readers_disagreements(Note) == []


def test_a_readers_wider_than_can_read_is_reported() -> None:
    from django.db.models import Q

    from logux_sync.testing import readers_disagreements

    ann = user("ann")
    user("bob")
    Note.objects.create(id="n1", text="ann's", owner=ann)
    hooks = Note.logux_options.hooks
    original = hooks.readers
    hooks.readers = staticmethod(lambda note: Q())  # everyone: wider than the owner-only can_read
    try:
        found = readers_disagreements(Note)
    finally:
        hooks.readers = original
    assert [(row.pk, who.username, says) for row, who, says in found] == [("n1", "bob", True)]
