"""Who receives a change (logux_sync.sync.addressing): the bulk path (`LoguxMeta.readers`, one query
joining subscriptions with readers) and the per-object path (`can_read` per user) against a plain
reference that reads every subscription and asks `can_read` per subscriber, as before issue 14."""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logux_sync.commands import load_user
from logux_sync.sync import addressing
from logux_sync.sync.changes import Change
from logux_sync.sync.keys import subscription_key
from logux_sync.sync.models import LoguxSubscription
from logux_sync.sync.subscriptions import prune, remember
from logux_sync.sync.tables import LoguxFilterShape
from logux_sync.testing import capture
from tests.hostile import store_note_subscriptions
from tests.test_app.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

Addressed = list[list[tuple[dict[str, Any], dict[str, Any]]]]
# The function itself: the `recorded` fixture replaces the module's name with a spy.
address_each = addressing.address_each


def reference(changes: list[Change]) -> list[dict[str, set[str]]]:
    """Per change, nodes by action type, the slow obvious way: every unexpired subscription of the
    plural, its filter matched in Python, its user loaded alone and asked can_read."""
    result = []
    for change in changes:
        opts = Note.logux_options
        row = Note.objects.filter(pk=change.wire_id).first()
        obj = opts.instance_from_wire(change.wire_id, change.old or {}) if change.kind == "deleted" else row
        out: dict[str, set[str]] = {}
        if obj is None or (change.kind == "deleted" and change.old is None):
            result.append(out)
            continue
        before = opts.instance_from_wire(change.wire_id, change.old) if change.old is not None else None
        subs = LoguxSubscription.objects.filter(plural="notes", expires_at__gt=timezone.now())
        for sub in subs:
            if change.exclude_client and ":".join(sub.node_id.split(":")[:2]) == change.exclude_client:
                continue
            if sub.row_id:
                if sub.row_id != change.wire_id:
                    continue
            elif not any(s is not None and opts.matches(sub.filter, s) for s in (change.old, change.new)):
                continue
            user = load_user(sub.user_id)
            now = obj.logux_can_read(user)
            if change.kind == "changed" and before is not None:
                was = before.logux_can_read(user)
                kind = "changed" if now and was else "created" if now else "deleted" if was else None
            else:
                kind = change.kind if now else None
            if kind:
                out.setdefault(f"notes/{kind}", set()).add(sub.node_id)
        result.append(out)
    return result


def by_type(addressed: Addressed) -> list[dict[str, set[str]]]:
    """Per change, the nodes of each model action (`logux/subscribed` marks left out)."""
    out = []
    for pairs in addressed:
        nodes: dict[str, set[str]] = {}
        for action, meta in pairs:
            if action["type"].startswith("notes/") and meta["nodes"]:
                assert len(meta["nodes"]) == len(set(meta["nodes"])), "a node gets an action twice"
                nodes.setdefault(action["type"], set()).update(meta["nodes"])
        out.append(nodes)
    return out


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[Change]]]:
    """The changes each delivery addresses (the bulk path runs as usual)."""
    seen: list[list[Change]] = []

    def spy(changes: list[Change], using: str = "default") -> Addressed:
        seen.append(list(changes))
        return address_each(changes, using)

    monkeypatch.setattr(addressing, "address_each", spy)
    with capture():
        yield seen


def per_object(changes: list[Change], monkeypatch: pytest.MonkeyPatch) -> Addressed:
    """address_each() with Note's readers hook taken away: the can_read fallback."""
    with monkeypatch.context() as m:
        m.delattr(Note.LoguxMeta, "readers")
        return address_each(changes)


def test_bulk_and_per_object_paths_address_the_reference_nodes_on_random_data(
    recorded: list[list[Change]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(14)
    users = [User.objects.create(username=f"u{i}", is_active=i % 7 != 3) for i in range(12)]
    expires = timezone.now() + datetime.timedelta(hours=1)
    expired = timezone.now() - datetime.timedelta(seconds=1)
    notes = [Note.objects.create(id=f"n{i}", text=rng.choice("ab"), owner=rng.choice(users)) for i in range(6)]
    user_ids = [str(u.pk) for u in users] + ["", "false", "999999", "x"]
    for i in range(400):
        user_id = rng.choice(user_ids)
        node = f"{user_id}:c{i % 40}:t{i}"
        row = rng.random() < 0.3
        wire_filter: dict[str, Any] = {}
        for name, values in (("owner", [u.pk for u in users]), ("pinned", [True, False]), ("text", ["a", "b"])):
            if not row and rng.random() < 0.5:
                wire_filter[name] = rng.choice(values)
        channel = f"notes/{rng.choice(notes).pk}" if row else "notes"
        LoguxSubscription.objects.create(
            node_id=node,
            user_id=user_id,
            plural="notes",
            filter_key=subscription_key(channel, wire_filter),
            filter=wire_filter,
            row_id=channel.split("/")[1] if row else "",
            expires_at=expired if rng.random() < 0.1 else expires,
        )
    for _ in range(60):
        note = rng.choice(notes)
        note.refresh_from_db()
        edit = rng.random()
        if edit < 0.4:
            note.owner = rng.choice(users)
        elif edit < 0.7:
            note.pinned = not note.pinned
        else:
            note.text = rng.choice(["a", "b", "c"])
        note.save()
        if rng.random() < 0.1:
            note.delete()
            notes.remove(note)
            notes.append(Note.objects.create(id=f"n{_ + 100}", text="a", owner=rng.choice(users)))
        changes = recorded[-1]
        expected = reference(changes)
        assert by_type(address_each(changes)) == expected
        assert by_type(per_object(changes, monkeypatch)) == expected
    assert sum(bool(nodes) for batch in recorded for nodes in reference(batch)) > 30  # the data reached someone


def test_the_bulk_path_never_addresses_a_node_whose_user_may_not_read_the_row(
    recorded: list[list[Change]],
) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    gone = User.objects.create(username="gone", is_active=False)
    # Every way of subscribing that the row could reach, from users who may not read it: a list of
    # everything, a filter naming ann as owner, ann's row channel, a user id made to look like ann's,
    # an inactive user, an anonymous one.
    hostile = [
        (str(bob.pk), {}, ""),
        (str(bob.pk), {"owner": ann.pk}, ""),
        (str(bob.pk), {}, "n1"),
        (f"{ann.pk} ", {}, ""),
        (str(gone.pk), {"owner": ann.pk}, ""),
        ("", {}, ""),
        ("false", {}, "n1"),
    ]
    store_note_subscriptions(hostile)
    remember("notes", f"{ann.pk}:a:1", str(ann.pk), {"owner": ann.pk}, 3600)
    note = Note.objects.create(id="n1", text="secret", owner=ann)
    note.text = "more secret"
    note.save()
    note.pinned = True
    note.save()
    note.delete()
    assert len(recorded) == 4
    for changes in recorded:
        for pairs in address_each(changes):
            for action, meta in pairs:
                assert set(meta["nodes"]) <= {f"{ann.pk}:a:1"}, (action, meta)
    assert any(f"{ann.pk}:a:1" in meta["nodes"] for c in recorded for p in address_each(c) for _, meta in p)


def test_a_change_costs_the_same_queries_whatever_the_subscribers(recorded: list[list[Change]]) -> None:
    def queries_for(subscribers: int) -> tuple[int, int]:
        LoguxSubscription.objects.all().delete()
        User.objects.all().delete()
        users = User.objects.bulk_create([User(username=f"q{subscribers}-{i}") for i in range(subscribers // 2)])
        owner = users[0]
        for i in range(subscribers):
            remember(
                "notes", f"{users[i % len(users)].pk}:c{i}:1", str(users[i % len(users)].pk), {"owner": owner.pk}, 60
            )
        note = Note.objects.create(id=f"c{subscribers}", text="x", owner=owner)
        note.text = "y"
        note.save()
        with CaptureQueriesContext(connection) as queries:
            addressed = address_each(recorded[-1])
        return len(queries), len(addressed[0][-1][1]["nodes"])

    small, large = queries_for(4), queries_for(400)
    assert small[0] == large[0] <= 3
    assert (small[1], large[1]) == (2, 2)  # the owner's two nodes only: readers is Q(pk=owner)


def test_without_readers_users_are_loaded_in_bulk(
    recorded: list[list[Change]], monkeypatch: pytest.MonkeyPatch
) -> None:
    users = User.objects.bulk_create([User(username=f"b{i}") for i in range(50)])
    for i, u in enumerate(users):
        remember("notes", f"{u.pk}:c{i}:1", str(u.pk), {}, 60)
    note = Note.objects.create(id="b1", text="x", owner=users[7])
    with CaptureQueriesContext(connection) as queries:
        addressed = per_object(recorded[-1], monkeypatch)
    assert addressed[0][-1][1]["nodes"] == [f"{users[7].pk}:c7:1"]
    assert len(queries) <= 4  # the row, the shapes, the subscriptions, the 50 users in one
    assert note.pk == "b1"


def test_readers_must_be_a_q_a_bool_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    note = Note(id="r1", text="x", owner_id=1)
    assert note.logux_readers() == Q(pk=1)
    monkeypatch.setattr(Note.LoguxMeta, "readers", staticmethod(lambda obj: [1]))
    with pytest.raises(TypeError, match="readers must return"):
        note.logux_readers()


def test_prune_drops_filter_shapes_no_list_uses_after_an_hour() -> None:
    remember("notes", "1:a:1", "1", {"owner": 1, "pinned": True}, 60)
    remember("notes", "1:a:2", "1", {"text": "a"}, 60)
    assert LoguxFilterShape.objects.count() == 2
    LoguxSubscription.objects.filter(node_id="1:a:2").update(expires_at=timezone.now())
    prune()
    assert LoguxFilterShape.objects.count() == 2  # touched within the hour: maybe being remembered now
    LoguxFilterShape.objects.update(touched_at=timezone.now() - datetime.timedelta(hours=2))
    prune()
    assert list(LoguxFilterShape.objects.values_list("fields", flat=True)) == [["owner", "pinned"]]
