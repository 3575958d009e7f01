from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.test import override_settings
from model_utils.tracker import FieldInstanceTracker

import logux_sync
from logux_sync.sync import changes as sync_changes
from logux_sync.sync import delivery, outbox
from logux_sync.sync.clocks import field_clock, now_ms
from logux_sync.sync.models import LoguxLateDelivery, LoguxSubscription
from logux_sync.testing import capture
from tests.test_app.models import Counter, Note, Project, Task

from .conftest import Endpoint, action_command

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sent() -> Iterator[delivery.Captured]:
    with capture() as pairs:
        yield pairs


@pytest.fixture
def requests(sent: delivery.Captured) -> list[list[tuple[dict, dict]]]:
    """Every request model sync would make."""
    return sent.requests


def types(pairs: list[tuple[dict, dict]]) -> list[str]:
    return [action["type"] for action, _ in pairs]


def user(name: str, *perms: str, **extra: Any) -> User:
    u = User.objects.create_user(name, password="pw", **extra)
    for codename in perms:
        u.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=u.pk)  # fresh permission cache


# ---- server-side changes ---------------------------------------------------------------------


def test_create_change_delete_broadcast(sent: list) -> None:
    task = Task.objects.create(id="t1", title="A")
    task.title = "B"
    task.save()
    task.delete()
    assert [a for a, _ in sent] == [
        {"type": "tasks/created", "id": "t1", "fields": {"title": "A", "done": False, "project": None}},
        {"type": "tasks/changed", "id": "t1", "fields": {"title": "B"}},
        {"type": "tasks/deleted", "id": "t1"},
    ]
    # Never to a channel as a whole: only to nodes that subscribed and may read the row (none here).
    assert all(meta["nodes"] == [] and "channels" not in meta for _, meta in sent)
    assert all(isinstance(meta["time"], int) and " server:" in meta["id"] for _, meta in sent)


def test_a_post_save_receiver_that_saves_again_sends_after_the_save_it_follows(sent: list) -> None:
    from django.db.models.signals import post_save

    def again(sender: Any, instance: Task, created: bool, **kwargs: Any) -> None:
        if created:
            instance.title = "set by a receiver"
            instance.save()

    post_save.connect(again, sender=Task)
    try:
        with transaction.atomic():
            Task.objects.create(id="t1", title="A")
    finally:
        post_save.disconnect(again, sender=Task)
    assert types(sent) == ["tasks/created", "tasks/changed"]
    # The create's title was overwritten before delivery, so it goes without it (see _still_current).
    created, changed = (action["fields"] for action, _ in sent)
    assert created == {"done": False, "project": None} and changed == {"title": "set by a receiver"}


def test_unsynced_field_change_sends_nothing(sent: list) -> None:
    task = Task.objects.create(id="t1", title="A")
    sent.clear()
    task.secret = "x"
    task.save()
    task.save()
    assert sent == []


def test_clocks_stamp_only_changed_fields() -> None:
    task = Task.objects.create(id="t1", title="A")
    first = task.logux_clocks
    assert list(first) == ["*"]  # a create sets every field: one clock for all
    task.done = True
    task.save()
    task.refresh_from_db()
    assert task.logux_clocks["*"] == first["*"] and set(task.logux_clocks) == {"*", "done"}
    assert field_clock(task.logux_clocks, "title") == first["*"]
    assert field_clock(task.logux_clocks, "done") != first["*"]
    task.title, task.done, task.project = "B", False, Project.objects.create(name="P")
    task.save(update_fields=["title", "done", "project"])  # every field again
    task.refresh_from_db()
    assert list(task.logux_clocks) == ["*"] and task.logux_clocks["*"] != first["*"]


def test_update_fields_adds_clocks() -> None:
    task = Task.objects.create(id="t1", title="A")
    task.title = "B"
    task.save(update_fields=["title"])
    task.refresh_from_db()
    assert task.title == "B" and field_clock(task.logux_clocks, "title")[0] >= field_clock(task.logux_clocks, "done")[0]


def test_update_fields_given_positionally_as_django_5_2_still_takes_them(requests: list) -> None:
    """Django 5.2 still takes save(force_insert, force_update, using, update_fields) positionally
    (deprecated; 6.0 refuses it): only those fields are stamped, saved and sent, as with the keyword."""
    task = Task.objects.create(id="t1", title="A")
    task.title, task.done = "B", True
    if django.VERSION >= (6, 0):
        with pytest.raises(TypeError):
            task.save(False, False, None, ["title"])
        return
    with pytest.warns(Warning, match="positional arguments"):
        task.save(False, False, None, ["title"])
    stored = Task.objects.get(pk="t1")
    assert (stored.title, stored.done) == ("B", False)
    assert field_clock(stored.logux_clocks, "title") != field_clock(stored.logux_clocks, "done")
    assert [action["fields"] for action, _ in requests[-1]] == [{"title": "B"}]
    assert task.logux_tracker.changed() == {"done": False}  # not saved: still a change


def test_one_transaction_one_request(requests: list) -> None:
    with transaction.atomic():
        for i in range(5):
            Task.objects.create(id=f"t{i}", title=str(i))
    assert len(requests) == 1 and len(requests[0]) == 5


def test_rollback_sends_nothing(requests: list) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Task.objects.create(id="t1", title="A")
        raise RuntimeError
    assert requests == []
    Task.objects.create(id="t2", title="B")
    assert [types(r) for r in requests] == [["tasks/created"]]


def test_savepoint_rollback_drops_only_its_changes(requests: list) -> None:
    with transaction.atomic():
        Task.objects.create(id="t1", title="kept")
        try:
            with transaction.atomic():
                Task.objects.create(id="t2", title="dropped")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [[a["id"] for a, _ in r] for r in requests] == [["t1"]]


def test_muted_and_disabled(sent: list) -> None:
    with logux_sync.muted():
        Task.objects.create(id="t1", title="A")
    with override_settings(LOGUX_SYNC={"SECRET": "s", "SYNC_ENABLED": False}):
        Task.objects.create(id="t2", title="B")
    assert sent == []


def test_raw_fixture_save_sends_nothing(sent: list, tmp_path: Any) -> None:
    from django.core.management import call_command

    fixture = tmp_path / "tasks.json"
    fixture.write_text('[{"model": "test_app.task", "pk": "f1", "fields": {"title": "F", "logux_clocks": {}}}]')
    call_command("loaddata", str(fixture), verbosity=0)
    assert Task.objects.filter(pk="f1").exists() and sent == []


def test_queryset_update(sent: list) -> None:
    Task.objects.create(id="t1", title="A")
    Task.objects.create(id="t2", title="A", done=True)
    sent.clear()
    assert Task.objects.filter(title="A").update(done=True) == 2
    assert [a for a, _ in sent] == [{"type": "tasks/changed", "id": "t1", "fields": {"done": True}}]
    t1 = Task.objects.get(pk="t1")
    assert field_clock(t1.logux_clocks, "done")[0] >= field_clock(t1.logux_clocks, "title")[0]


def test_queryset_bulk_create_and_bulk_update(sent: list) -> None:
    tasks = Task.objects.bulk_create([Task(id="a", title="1"), Task(id="b", title="2")])
    assert types(sent) == ["tasks/created", "tasks/created"]
    sent.clear()
    tasks[0].title = "changed"
    Task.objects.bulk_update(tasks, ["title"])
    assert [a for a, _ in sent] == [{"type": "tasks/changed", "id": "a", "fields": {"title": "changed"}}]
    assert "title" in Task.objects.get(pk="a").logux_clocks


def test_queryset_delete(sent: list) -> None:
    Task.objects.create(id="t1", title="A")
    Task.objects.create(id="t2", title="B")
    sent.clear()
    Task.objects.all().delete()
    assert sorted(a["id"] for a, _ in sent) == ["t1", "t2"] and set(types(sent)) == {"tasks/deleted"}


def test_moving_between_derived_channels_reaches_both(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "view_task")
    p1, p2, p3 = (Project.objects.create(name=str(i)) for i in range(3))
    for node, project in (("a:1", p1), ("b:1", p2), ("c:1", p3)):
        assert answers_of(subscribe(endpoint, f"projects/{project.pk}/tasks", u.pk, node=node))[0] == "approved"
    task = Task.objects.create(id="t1", title="A", project=p1)
    assert sent[-1][1]["nodes"] == [f"{u.pk}:a:1"]
    task.project = p2
    task.save()
    action, meta = sent[-1]
    assert action["fields"] == {"project": p2.pk}
    assert sorted(meta["nodes"]) == [f"{u.pk}:a:1", f"{u.pk}:b:1"]  # old and new channel, not p3's


def test_row_subscriber_stops_receiving_when_it_may_no_longer_read(endpoint: Endpoint, sent: list) -> None:
    ann, bob = user("ann"), user("bob")
    Note.objects.create(id="n1", text="mine", owner=ann)
    assert answers_of(subscribe(endpoint, "notes/n1", ann.pk, node="a:1"))[:1] == ["approved"]
    note = Note.objects.get(pk="n1")
    note.text = "still mine"
    note.save()
    assert sent[-1][1]["nodes"] == [f"{ann.pk}:a:1"]
    note.owner = bob
    note.save()
    note.text = "bob's now"
    note.save()
    assert sent[-1][1]["nodes"] == []  # ann's node is subscribed but may not read the row any more


def test_creator_node_gets_later_changes(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "view_task", "add_task")
    assert answers_of(subscribe(endpoint, "tasks/new1", u.pk, node="a:1", creating=True)) == ["approved", "processed"]
    assert not LoguxSubscription.objects.exists()  # nothing is remembered for a row that does not exist
    create = {"type": "tasks/create", "id": "new1", "fields": {"title": "mine"}}
    endpoint.answers(action_command(create, meta_id=f"10 {u.pk}:a:1 0", time=10))
    Task.objects.filter(pk="new1").update(title="changed elsewhere")
    assert sent[-1][1]["nodes"] == [f"{u.pk}:a:1"]


def test_creating_subscriptions_store_nothing_and_read_only_models_refuse_them(endpoint: Endpoint) -> None:
    nobody = user("nobody")
    assert answers_of(subscribe(endpoint, "tasks/made-up", nobody.pk, creating=True)) == ["approved", "processed"]
    assert answers_of(subscribe(endpoint, "counters/77", nobody.pk, creating=True)) == ["forbidden"]
    assert not LoguxSubscription.objects.exists()


# ---- client edits through the endpoint --------------------------------------------------------


def edit(endpoint: Endpoint, action: dict, user_id: int | str, time: float, counter: int = 0) -> list[dict]:
    return endpoint.answers(action_command(action, meta_id=f"{int(time)} {user_id}:c:t {counter}", time=time))


def answers_of(answers: list[dict]) -> list[str]:
    return [a["answer"] for a in answers]


def test_client_create_change_delete(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "add_task", "change_task", "view_task", "delete_task")
    create = {"type": "tasks/create", "id": "x1", "fields": {"title": "Hi"}}
    assert answers_of(edit(endpoint, create, u.pk, 1000)) == ["approved", "processed"]
    task = Task.objects.get(pk="x1")
    assert task.title == "Hi" and field_clock(task.logux_clocks, "title") == [1000, f"1000 {u.pk}:c:t 0"]
    action, meta = sent[-1]
    assert action == {"type": "tasks/created", "id": "x1", "fields": {"title": "Hi", "done": False, "project": None}}
    assert meta["time"] == 1000 and meta["excludeClients"] == [f"{u.pk}:c"]
    assert meta["id"] != f"1000 {u.pk}:c:t 0"  # Logux drops an action whose id its log holds

    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"title": "New"}}, u.pk, 2000)
    assert Task.objects.get(pk="x1").title == "New"
    assert sent[-1][0] == {"type": "tasks/changed", "id": "x1", "fields": {"title": "New"}}

    edit(endpoint, {"type": "tasks/delete", "id": "x1"}, u.pk, 3000)
    assert not Task.objects.filter(pk="x1").exists()
    assert sent[-1][0] == {"type": "tasks/deleted", "id": "x1"}


def test_last_write_wins_per_field(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A"}}, u.pk, 1000)
    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"title": "new", "done": True}}, u.pk, 3000)
    sent.clear()
    # An older edit arrives late: title and done keep the newer values, nothing is broadcast.
    answers = edit(
        endpoint, {"type": "tasks/change", "id": "x1", "fields": {"title": "old", "done": False}}, u.pk, 2000
    )
    assert answers_of(answers) == ["approved", "processed"]
    task = Task.objects.get(pk="x1")
    assert (task.title, task.done) == ("new", True) and sent == []
    # Same time: the node id then the counter (as a number) decide.
    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"title": "c9"}}, u.pk, 3000, counter=9)
    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"title": "c10"}}, u.pk, 3000, counter=10)
    assert Task.objects.get(pk="x1").title == "c10"


def test_replayed_change_changes_nothing(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A"}}, u.pk, 1000)
    change = {"type": "tasks/change", "id": "x1", "fields": {"title": "B"}}
    edit(endpoint, change, u.pk, 2000)
    sent.clear()
    edit(endpoint, change, u.pk, 2000)
    assert sent == [] and Task.objects.get(pk="x1").title == "B"


def test_invalid_edit_is_undone_and_saves_nothing(endpoint: Endpoint, sent: list) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    answers = edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A" * 500}}, u.pk, 1000)
    assert answers_of(answers) == ["approved", "action", "processed"]
    undo = answers[1]["action"]
    assert undo["type"] == "logux/undo" and undo["reason"] == "invalid" and "title" in undo["errors"]
    assert not Task.objects.exists() and sent == []
    answers = edit(endpoint, {"type": "tasks/create", "id": "x2", "fields": {"done": "maybe"}}, u.pk, 1000)
    assert answers[1]["action"]["reason"] == "invalid" and not Task.objects.exists()


def test_unknown_or_unsynced_field_is_forbidden(endpoint: Endpoint) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    answers = edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"secret": "s"}}, u.pk, 1000)
    assert answers_of(answers) == ["forbidden"] and not Task.objects.exists()


def test_change_of_missing_row_is_undone_not_found(endpoint: Endpoint) -> None:
    u = user("ann", "change_task", "view_task")
    answers = edit(endpoint, {"type": "tasks/change", "id": "nope", "fields": {"title": "x"}}, u.pk, 1000)
    assert answers[1]["action"]["reason"] == "notFound"


def test_default_permissions_follow_django(endpoint: Endpoint) -> None:
    viewer = user("viewer", "view_task")
    answers = edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A"}}, viewer.pk, 1000)
    assert answers_of(answers) == ["forbidden"]
    Task.objects.create(id="t1", title="A")
    for action in (
        {"type": "tasks/change", "id": "t1", "fields": {"title": "B"}},
        {"type": "tasks/delete", "id": "t1"},
    ):
        assert answers_of(edit(endpoint, action, viewer.pk, 1000)) == ["forbidden"]
    assert Task.objects.get(pk="t1").title == "A"
    anonymous = endpoint.answers(action_command({"type": "logux/subscribe", "channel": "tasks/t1"}, "1 false:c:t 0"))
    assert answers_of(anonymous) == ["forbidden"]


def test_field_level_change_permission(endpoint: Endpoint) -> None:
    owner = user("owner")
    with logux_sync.muted():
        Note.objects.bulk_create([Note(id="n1", text="a", owner=owner, logux_clocks={})])
    now = now_ms() + 1000  # newer than the create's stamp
    assert answers_of(
        edit(endpoint, {"type": "notes/change", "id": "n1", "fields": {"pinned": True}}, owner.pk, now + 1)
    ) == ["forbidden"]
    assert answers_of(
        edit(endpoint, {"type": "notes/change", "id": "n1", "fields": {"text": "b"}}, owner.pk, now + 2)
    ) == [
        "approved",
        "processed",
    ]
    other = user("other")  # may not read n1: answered as for a row that does not exist
    answers = edit(endpoint, {"type": "notes/change", "id": "n1", "fields": {"text": "c"}}, other.pk, now + 3)
    assert answers_of(answers) == ["approved", "action", "processed"] and answers[1]["action"]["reason"] == "notFound"
    assert Note.objects.get(pk="n1").text == "b"


def test_autofield_model_is_read_only() -> None:
    from logux_sync.registry import logux

    assert logux.actions.find("counters/create") is None
    assert logux.channels.find("counters/1") is not None
    assert Counter.logux_options.read_only


# ---- subscriptions ----------------------------------------------------------------------------


def subscribe(endpoint: Endpoint, channel: str, user_id: Any, node: str = "c:t", **extra: Any) -> list[dict]:
    action = {"type": "logux/subscribe", "channel": channel, **extra}
    return endpoint.answers(action_command(action, meta_id=f"5 {user_id}:{node} 0", time=5))


def test_row_snapshot_grouped_by_time_and_since(endpoint: Endpoint) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A"}}, u.pk, 1000)
    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"done": True}}, u.pk, 2000)
    answers = subscribe(endpoint, "tasks/x1", u.pk)
    loaded = [(a["action"], a["meta"]) for a in answers if a["answer"] == "action"]
    # Each group carries an id that orders like the edit that set it (see clocks.derived_id).
    ids = [meta.pop("id") for _, meta in loaded]
    assert [i.split(" ", 1)[1] for i in ids] == [f"{u.pk}:c:t 0", f"{u.pk}:c:t 0"]
    assert all(int(i.split(" ")[0]) > 10**13 for i in ids)
    assert loaded == [
        (
            {"type": "tasks/changed", "id": "x1", "fields": {"title": "A", "project": None}},
            {"nodes": [f"{u.pk}:c:t"], "time": 1000},
        ),
        ({"type": "tasks/changed", "id": "x1", "fields": {"done": True}}, {"nodes": [f"{u.pk}:c:t"], "time": 2000}),
    ]
    LoguxLateDelivery.objects.all().delete()  # edits stamped 1970 look delivered late: not the case here
    answers = subscribe(endpoint, "tasks/x1", u.pk, since={"id": "1500 x:y:z 0", "time": 1500})
    assert [a["action"]["fields"] for a in answers if a["answer"] == "action"] == [{"done": True}]


def test_row_subscribe_creating_and_not_found(endpoint: Endpoint) -> None:
    u = user("ann", "view_task")
    assert answers_of(subscribe(endpoint, "tasks/new", u.pk, creating=True)) == ["approved", "processed"]
    answers = subscribe(endpoint, "tasks/missing", u.pk)
    assert answers_of(answers) == ["approved", "action", "processed"]
    assert answers[1]["action"]["reason"] == "notFound" and answers[1]["action"]["type"] == "logux/undo"


def test_filter_subscribe_loads_matching_rows_and_remembers_node(endpoint: Endpoint) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    u = user("ann", "view_task")
    p = Project.objects.create(name="p")

    def load(rows: int) -> tuple[int, list[dict]]:
        Task.objects.bulk_create([Task(id=f"t{i:03}", title=str(i), project=p if i % 2 else None) for i in rows])
        with CaptureQueriesContext(connection) as queries:
            answers = subscribe(endpoint, "tasks", u.pk, filter={"project": p.pk})
        return len(queries), [a["action"] for a in answers if a["answer"] == "action"]

    load(range(0))  # the first subscribe also inserts the remembered subscription
    few, _ = load(range(10))
    many, loaded = load(range(10, 200))
    assert many == few  # a fixed number of queries, whatever the row count
    assert [a["type"] for a in loaded[:2]] == ["logux/subscribed", "tasks/created"]
    assert {a["id"] for a in loaded if a["type"] == "tasks/created"} == {f"t{i:03}" for i in range(1, 200, 2)}
    sub = LoguxSubscription.objects.get()
    assert (sub.plural, sub.node_id, sub.filter) == ("tasks", f"{u.pk}:c:t", {"project": p.pk})


def test_filter_on_unsynced_field_is_forbidden(endpoint: Endpoint) -> None:
    u = user("ann", "view_task")
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"secret": "x"})) == ["forbidden"]
    assert not LoguxSubscription.objects.exists()


def test_changes_reach_only_matching_readers(endpoint: Endpoint, sent: list) -> None:
    ann, bob = user("ann"), user("bob")
    subscribe(endpoint, "notes", ann.pk, node="a:1", filter={"owner": ann.pk})
    subscribe(endpoint, "notes", bob.pk, node="b:1", filter={"owner": bob.pk})
    # A forged subscription of bob's node to ann's filter is refused at subscribe time...
    assert answers_of(subscribe(endpoint, "notes", bob.pk, node="b:2", filter={"owner": ann.pk})) == ["forbidden"]
    # ...and even a node remembered with a matching filter gets only rows its user may read.
    LoguxSubscription.objects.create(
        node_id=f"{bob.pk}:b:3",
        user_id=str(bob.pk),
        plural="notes",
        filter_key="{}",
        filter={},
        expires_at=LoguxSubscription.objects.get(node_id=f"{ann.pk}:a:1").expires_at,
    )
    sent.clear()
    Note.objects.create(id="n1", text="ann's", owner=ann)
    # The list node is told the row's channel is covered (as a list load does), then gets the row.
    assert [(a["type"], m["nodes"]) for a, m in sent] == [
        ("logux/subscribed", [f"{ann.pk}:a:1"]),
        ("notes/created", [f"{ann.pk}:a:1"]),
    ]
    assert sent[0][0]["channel"] == "notes/n1"
    assert not any("channels" in meta for _, meta in sent)


def test_author_node_is_excluded_from_nodes(endpoint: Endpoint, sent: list) -> None:
    ann = user("ann")
    subscribe(endpoint, "notes", ann.pk, node="a:1", filter={"owner": ann.pk})
    subscribe(endpoint, "notes", ann.pk, node="b:1", filter={"owner": ann.pk})
    sent.clear()
    edit(endpoint, {"type": "notes/create", "id": "n1", "fields": {"text": "x", "owner": ann.pk}}, f"{ann.pk}:a", 10)
    [(_, marked), (_, meta)] = sent
    assert marked["nodes"] == meta["nodes"] == [f"{ann.pk}:b:1"] and meta["excludeClients"] == [f"{ann.pk}:a"]


def test_derived_channel_subscribe(endpoint: Endpoint) -> None:
    u = user("ann", "view_task")
    p = Project.objects.create(name="p")
    Task.objects.create(id="in", title="in", project=p)
    Task.objects.create(id="out", title="out")
    answers = subscribe(endpoint, f"projects/{p.pk}/tasks", u.pk)
    assert [a["action"]["id"] for a in answers if a["answer"] == "action"] == ["in"]
    assert answers_of(subscribe(endpoint, "projects/abc/tasks", u.pk)) == ["forbidden"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_after_commit_delivery_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The batch is a robust on_commit callback: Django logs its failure under the callback's
    # __qualname__, which an instance lacks unless it is given one.
    def fail(batch: str, using: str) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(delivery, "after_commit", fail)
    ann = user("ann")
    with transaction.atomic():
        Note.objects.create(id="n1", text="x", owner=ann)
    assert Note.objects.filter(id="n1").exists()
    assert any("_Wake" in r.getMessage() and r.exc_info for r in caplog.records), caplog.text


def test_derived_ids_order_like_the_edit_they_come_from() -> None:
    from logux_sync.protocol import is_first_older
    from logux_sync.sync.clocks import derived_id

    edits = ["5 10:a:t 0", "5 10:a:t2 0", "5 10:a:t 1", "5 9:b:c 0", "5 10:a 0", "6 1:x:y 0", "5 server:ab 3"]
    for first in edits:
        for second in edits:
            if first == second:
                continue
            expected = is_first_older({"id": first, "time": 5}, {"id": second, "time": 5})
            assert is_first_older({"id": derived_id(first), "time": 5}, {"id": second, "time": 5}) == expected
            assert is_first_older({"id": first, "time": 5}, {"id": derived_id(second), "time": 5}) == expected
    assert derived_id(edits[0]) != derived_id(edits[0])  # unique: the Logux server drops repeated ids
    assert is_first_older({"id": edits[0], "time": 5}, {"id": derived_id(edits[0]), "time": 5})


def test_a_forked_process_makes_ids_of_its_own() -> None:
    """Workers forked after import (gunicorn --preload) must not repeat each other's ids: the Logux
    server drops an action whose id it has seen."""
    import json
    import os

    from logux_sync.sync.clocks import derived_id, server_meta

    edit = "5 10:a:t 0"
    server_meta()  # the parent has made ids before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave without running pytest's teardown
        try:
            os.write(write, json.dumps([server_meta()["id"], derived_id(edit)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_id, child_derived = json.loads(pipe.read())
    assert os.waitpid(pid, 0)[1] == 0
    parent_id, parent_derived = server_meta()["id"], derived_id(edit)
    assert child_id.split(" ")[1] != parent_id.split(" ")[1]  # node ids
    assert child_derived != parent_derived  # the same edit's derived ids: nonces


def test_values_a_database_cannot_take_are_refused_not_errors(endpoint: Endpoint) -> None:
    u = user("ann", "view_task", "add_task")
    assert answers_of(subscribe(endpoint, "tasks", u.pk, filter={"project": 10**30})) == ["forbidden"]
    assert answers_of(subscribe(endpoint, "tasks/\ud800", u.pk)) == ["forbidden"]
    assert not LoguxSubscription.objects.exists()


def test_a_change_that_hides_or_shows_a_row_reaches_readers_as_deleted_or_created(
    endpoint: Endpoint, sent: list
) -> None:
    ann, bob = user("ann"), user("bob")
    Note.objects.create(id="n1", text="x", owner=ann)
    subscribe(endpoint, "notes", ann.pk, node="a:1", filter={"owner": ann.pk})
    LoguxSubscription.objects.create(  # bob watches every note (as a staff list would)
        node_id=f"{bob.pk}:b:1",
        user_id=str(bob.pk),
        plural="notes",
        filter_key="{}",
        filter={},
        expires_at=LoguxSubscription.objects.get().expires_at,
    )
    note = Note.objects.get(pk="n1")
    note.owner = bob  # ann may no longer read it, bob now may
    note.save()
    by_type = {action["type"]: (action, meta) for action, meta in sent[-3:]}
    assert by_type["notes/changed"][1]["nodes"] == []
    assert by_type["notes/deleted"][1]["nodes"] == [f"{ann.pk}:a:1"]
    created, meta = by_type["notes/created"]
    assert meta["nodes"] == [f"{bob.pk}:b:1"]
    assert created["fields"] == {"text": "x", "pinned": False, "owner": bob.pk}


def test_a_derived_channel_and_a_list_with_the_same_filter_are_separate_subscriptions(endpoint: Endpoint) -> None:
    from logux_sync.sync.subscriptions import forget, subscription_key

    u = user("ann", "view_task")
    p = Project.objects.create(name="p")
    subscribe(endpoint, "tasks", u.pk, node="a:1", filter={"project": p.pk})
    subscribe(endpoint, f"projects/{p.pk}/tasks", u.pk, node="a:1")
    assert LoguxSubscription.objects.count() == 2
    assert forget(f"{u.pk}:a:1", "tasks", subscription_key(f"projects/{p.pk}/tasks", {"project": p.pk})) == 1
    assert LoguxSubscription.objects.get().filter_key == subscription_key("tasks", {"project": p.pk})


def test_list_load_opens_each_row_with_created_then_newer_fields_as_changed(endpoint: Endpoint) -> None:
    u = user("ann", "add_task", "change_task", "view_task")
    edit(endpoint, {"type": "tasks/create", "id": "x1", "fields": {"title": "A"}}, u.pk, 1000)
    edit(endpoint, {"type": "tasks/change", "id": "x1", "fields": {"done": True}}, u.pk, 2000)
    answers = subscribe(endpoint, "tasks", u.pk, filter={})
    loaded = [(a["action"], a["meta"].get("time")) for a in answers if a["answer"] == "action"][1:]
    assert loaded == [
        ({"type": "tasks/created", "id": "x1", "fields": {"title": "A", "done": True, "project": None}}, 1000),
        ({"type": "tasks/changed", "id": "x1", "fields": {"done": True}}, 2000),
    ]
    # Resubscribing with `since` sends only the newer fields, as changed.
    LoguxLateDelivery.objects.all().delete()  # edits stamped 1970 look delivered late: not the case here
    answers = subscribe(endpoint, "tasks", u.pk, filter={}, since={"id": "1500 x:y:z 0", "time": 1500})
    assert [a["action"] for a in answers if a["answer"] == "action"][1:] == [
        {"type": "tasks/changed", "id": "x1", "fields": {"done": True}}
    ]


def test_resubscribe_with_since_learns_of_missed_deletions(endpoint: Endpoint) -> None:
    ann, bob = user("ann"), user("bob")
    for note_id, owner in (("gone", ann), ("kept", ann), ("bobs", bob)):
        Note.objects.create(id=note_id, text=note_id, owner=owner)
    since = field_clock(Note.objects.get(pk="gone").logux_clocks, "text")[0]
    Note.objects.filter(pk__in=["gone", "bobs"]).delete()
    answers = subscribe(endpoint, "notes", ann.pk, filter={"owner": ann.pk}, since={"id": "1 x:y:z 0", "time": since})
    deleted = [a["action"] for a in answers if a["answer"] == "action" and a["action"]["type"] == "notes/deleted"]
    assert deleted == [{"type": "notes/deleted", "id": "gone"}]  # not bob's note: not ann's list, nor hers to read
    answers = subscribe(endpoint, "notes", ann.pk, filter={"owner": ann.pk})
    assert not [a for a in answers if a["answer"] == "action" and a["action"]["type"] == "notes/deleted"]


def test_a_node_subscribed_to_a_row_and_a_list_gets_each_action_once(endpoint: Endpoint, sent: list) -> None:
    ann = user("ann")
    Note.objects.create(id="n1", text="x", owner=ann)
    subscribe(endpoint, "notes", ann.pk, node="a:1", filter={"owner": ann.pk})
    subscribe(endpoint, "notes/n1", ann.pk, node="a:1")
    note = Note.objects.get(pk="n1")
    note.text = "y"
    note.save()
    assert sent[-1][1]["nodes"] == [f"{ann.pk}:a:1"]
    note.owner = user("bob")
    note.save()
    gone = [meta["nodes"] for action, meta in sent if action["type"] == "notes/deleted"]
    assert gone == [[f"{ann.pk}:a:1"]]


# ---- what a save sends, read cheaply --------------------------------------------------------------


@pytest.fixture
def changes(monkeypatch: pytest.MonkeyPatch) -> list[sync_changes.Change]:
    """Every Change written to the outbox."""
    made: list[sync_changes.Change] = []
    enqueue = outbox.enqueue

    def recording(entries: list[dict[str, Any]], using: str = "default") -> None:
        made.extend(sync_changes.Change.from_json(entry) for entry in entries if sync_changes.is_change(entry))
        enqueue(entries, using)

    monkeypatch.setattr(outbox, "enqueue", recording)
    return made


def test_a_change_carries_the_old_and_new_values(changes: list[sync_changes.Change]) -> None:
    first, second = Project.objects.create(name="1"), Project.objects.create(name="2")
    task = Task.objects.create(id="t1", title="A", project=first)
    task.title, task.project = "B", second
    task.save()
    assert changes[-1].fields == {"title": "B", "project": second.pk}
    assert changes[-1].old == {"title": "A", "done": False, "project": first.pk}
    assert changes[-1].new == {"title": "B", "done": False, "project": second.pk}
    task.save()  # nothing changed since
    assert len(changes) == 2


@pytest.mark.parametrize("loaded", [("id",), ("id", "title"), ("id", "done", "project")])
def test_deferred_fields_are_loaded_for_old_values_and_never_count_as_changed(
    changes: list[sync_changes.Change], loaded: tuple[str, ...]
) -> None:
    project = Project.objects.create(name="1")
    Task.objects.create(id="t1", title="A", done=True, project=project)
    task = Task.objects.only(*loaded).get(pk="t1")
    task.save()
    assert len(changes) == 1  # the create only
    task = Task.objects.only(*loaded).get(pk="t1")
    task.title = "B"
    task.save()
    assert changes[-1].fields == {"title": "B"}
    assert changes[-1].old == {"title": "A", "done": True, "project": project.pk}
    assert changes[-1].new == {"title": "B", "done": True, "project": project.pk}
    stored = Task.objects.get(pk="t1")
    assert stored.title == "B" and field_clock(stored.logux_clocks, "title") != field_clock(stored.logux_clocks, "done")


def test_the_tracker_still_follows_fields_loaded_late() -> None:
    Task.objects.create(id="t1", title="A")
    task = Task.objects.only("id").get(pk="t1")
    tracker = task.logux_tracker
    assert not tracker.has_changed("title") and task.title == "A"  # loaded on first read
    task.title = "B"
    assert tracker.has_changed("title") and tracker.previous("title") == "A"
    assert tracker.changed() == {"title": "A"}
    task = Task.objects.defer("title").get(pk="t1")
    task.title = "C"  # set before it was ever read: the tracker loads the saved value first
    assert task.logux_tracker.previous("title") == "A"
    assert task.logux_tracker.has_changed("title")


@pytest.mark.parametrize("load", ["get", "iterator", "prefetch", "raw", "refresh"])
def test_rows_however_loaded_send_only_their_changed_fields(changes: list[sync_changes.Change], load: str) -> None:
    project = Project.objects.create(name="p")
    Task.objects.create(id="t1", title="A", project=project)
    if load == "get":
        task = Task.objects.get(pk="t1")
    elif load == "iterator":
        task = next(Task.objects.filter(pk="t1").iterator())
    elif load == "prefetch":
        task = Project.objects.prefetch_related("task_set").get().task_set.all()[0]
    elif load == "raw":
        task = next(iter(Task.objects.raw("SELECT * FROM test_app_task")))
    else:
        task = Task.objects.only("id").get()
        task.refresh_from_db()
    task.title = "B"
    task.save()
    assert (changes[-1].kind, changes[-1].fields) == ("changed", {"title": "B"})
    assert changes[-1].old is not None and changes[-1].old["title"] == "A"


def test_a_new_rows_tracker_takes_its_snapshot_when_saved(changes: list[sync_changes.Change]) -> None:
    task = Task(id="t1", title="A")
    assert task.logux_tracker.saved_data == {}
    task.save()
    assert (changes[-1].kind, changes[-1].fields) == ("created", {"title": "A", "done": False, "project": None})
    assert task.logux_tracker.saved_data == {"title": "A", "done": False, "project": None}
    task.done = True
    task.save()
    assert (changes[-1].kind, changes[-1].fields) == ("changed", {"done": True})


def test_a_failed_save_leaves_its_changes_to_the_next_save(changes: list[sync_changes.Change]) -> None:
    from django.db.models.signals import pre_save

    Task.objects.create(id="t1", title="A")
    task = Task.objects.get(pk="t1")
    task.title = "B"

    def fail(**kwargs: Any) -> None:
        raise RuntimeError("refused")

    pre_save.connect(fail, sender=Task, dispatch_uid="test.fail")
    try:
        with pytest.raises(RuntimeError):
            task.save()
    finally:
        pre_save.disconnect(sender=Task, dispatch_uid="test.fail")
    assert task.logux_tracker.has_changed("title")
    assert "_logux_pending" not in task.__dict__  # nothing of the failed save stays on the row
    pickle.loads(pickle.dumps(task))
    task.save()
    assert changes[-1].kind == "changed" and changes[-1].fields == {"title": "B"}
    assert not task.logux_tracker.has_changed("title")
    task.title = "C"
    task.done = True
    task.save(update_fields=["title"])  # `done` is not saved, so it still counts as changed
    assert changes[-1].fields == {"title": "C"}
    assert task.logux_tracker.changed() == {"done": False}


@pytest.mark.parametrize("loaded", [None, ("id", "project"), ("id", "title", "project")])
def test_the_trackers_snapshot_is_model_utils_own(loaded: tuple[str, ...] | None) -> None:
    project = Project.objects.create(name="1")
    Task.objects.create(id="t1", title="A", project=project)
    for task in (Task.objects.get(pk="t1") if loaded is None else Task.objects.only(*loaded).get(pk="t1"), Task()):
        tracker = task.logux_tracker
        assert type(tracker) is not FieldInstanceTracker
        assert tracker.current() == FieldInstanceTracker.current(tracker)
        assert tracker.current(["title"]) == FieldInstanceTracker.current(tracker, ["title"])
        ours = dict(tracker.saved_data)
        FieldInstanceTracker.set_saved_fields(tracker)
        assert ours == tracker.saved_data


def test_loading_a_row_with_a_deferred_relation_loads_nothing_more(django_assert_num_queries: Any) -> None:
    # model_utils' snapshot takes a relation's name for its attname when it skips deferred fields,
    # and loads `project_id`: a query per row.
    Task.objects.create(id="t1", title="A", project=Project.objects.create(name="1"))
    with django_assert_num_queries(1):
        task = Task.objects.only("id", "title").get(pk="t1")
        assert task.logux_tracker.current() == task.logux_tracker.saved_data == {"title": "A"}
        assert task.get_deferred_fields() == {"done", "project_id", "secret", "logux_clocks"}


def test_a_row_built_in_python_gets_its_tracker_when_first_asked(changes: list[sync_changes.Change]) -> None:
    task = Task(id="t1", title="A")
    assert not any(isinstance(value, FieldInstanceTracker) for value in vars(task).values())  # nothing built yet
    assert task.logux_tracker.saved_data == {}
    assert task.logux_tracker.has_changed("title")
    task = Task(id="t2", title="B")
    task.save()  # the first access: the save takes the snapshot
    task.title = "C"
    assert task.logux_tracker.changed() == {"title": "B"}
    fresh = Task(id="t2", title="x")
    fresh.refresh_from_db()  # reloaded before any access: the snapshot is the values loaded
    assert fresh.logux_tracker.saved_data == {"title": "B", "done": False, "project": None}


@pytest.mark.parametrize("how", ["new", "created", "loaded", "deferred"])
def test_a_pickled_row_keeps_its_tracking(changes: list[sync_changes.Change], how: str) -> None:
    if how == "new":
        task = Task(id="t1", title="A")
    else:
        Task.objects.create(id="t1", title="A")
        task = Task(id="t1", title="A") if how == "created" else Task.objects.get(pk="t1")
        if how == "created":
            task.save()
        elif how == "deferred":
            task = Task.objects.only("id").get(pk="t1")
    task = pickle.loads(pickle.dumps(task))
    task.title = "B"
    if how != "new":
        assert task.logux_tracker.changed() == {"title": "A"}
    task.save()
    assert changes[-1].fields == ({"title": "B", "done": False, "project": None} if how == "new" else {"title": "B"})
    assert changes[-1].old == (None if how == "new" else {"title": "A", "done": False, "project": None})
    task = pickle.loads(pickle.dumps(task))
    task.title = "C"
    task.save()
    assert (changes[-1].fields, changes[-1].old) == ({"title": "C"}, {"title": "B", "done": False, "project": None})


@pytest.mark.parametrize("load", ["only", "defer"])
def test_a_field_assigned_before_it_was_loaded_is_compared_with_its_stored_value(
    changes: list[sync_changes.Change], load: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, second = Project.objects.create(name="1"), Project.objects.create(name="2")
    Task.objects.create(id="t1", title="A", done=True, project=first)

    def loaded() -> Task:
        rows = Task.objects.only("id") if load == "only" else Task.objects.defer("title", "done", "project")
        return rows.get(pk="t1")

    task = loaded()
    task.title, task.project = "A", second  # the stored title again, a new project
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        task.save()  # (the delivery after the commit reads the row again)
    read = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and '"test_app_task"."title"' in q["sql"]]
    assert len(read) == 1  # the stored values, in one query
    assert changes[-1].fields == {"project": second.pk}
    assert changes[-1].old == {"title": "A", "done": True, "project": first.pk}
    task = loaded()
    task.title = "A"
    task.save()
    assert len(changes) == 2  # nothing changed
    task = loaded()
    task.title = "B"
    assert task.logux_tracker.previous("title") == "A"
    task.save(update_fields=["title"])
    assert changes[-1].fields == {"title": "B"}
    assert changes[-1].old == {"title": "A", "done": True, "project": second.pk}
    task.project_id = first.pk
    task.save(update_fields=["project_id"])  # an attname: the change is sent, the snapshot follows
    assert changes[-1].fields == {"project": first.pk} and changes[-1].old["project"] == second.pk
    assert task.logux_tracker.changed() == {}
    task = loaded()
    task.done = False
    task.refresh_from_db()  # reloads it: nothing changed
    assert task.logux_tracker.changed() == {} and task.done
    task.title = "C"
    task.refresh_from_db(fields=["done"])  # `title` keeps its assigned value and its stored one
    assert task.logux_tracker.changed() == {"title": "B"}


def test_the_snapshot_lives_in_the_row_and_the_tracker_is_a_view_of_it(changes: list[sync_changes.Change]) -> None:
    import copy

    task = Task.objects.create(id="t1", title="A")
    assert not any(isinstance(value, FieldInstanceTracker) for value in vars(task).values())  # a save builds none
    task.title = "B"
    clone = copy.copy(task)
    assert clone.logux_tracker.instance is clone and task.logux_tracker.instance is task
    clone.title = "C"
    assert (task.logux_tracker.changed(), clone.logux_tracker.changed()) == ({"title": "A"}, {"title": "A"})
    task.logux_tracker.set_saved_fields()
    assert not task.logux_tracker.changed() and clone.logux_tracker.changed() == {"title": "A"}


def test_the_snapshot_copies_only_mutable_values() -> None:
    import datetime
    import decimal
    import uuid

    from logux_sync.compat import snapshot_copy

    for value in (datetime.datetime.now(), datetime.date.today(), decimal.Decimal("1.5"), uuid.uuid4(), "s", None):
        assert snapshot_copy(value) is value
    nested = {"a": [1]}
    assert snapshot_copy(nested) == nested and snapshot_copy(nested)["a"] is not nested["a"]


@pytest.mark.parametrize(
    "text",
    [
        '{"*": [1, "1 server:x 0"]}',
        '{"title": [1.5, "a"], "*": null}',
        " {} ",
        "{}",
        "[1, 2]",
        '"x"',
        "nul",
        "{} x",
        "",
    ],
)
def test_the_clocks_column_reads_as_jsonfield_reads(text: str) -> None:
    from django.db import connection, models

    field = Task._meta.get_field("logux_clocks")
    assert field.from_db_value(text, None, connection) == models.JSONField.from_db_value(field, text, None, connection)
