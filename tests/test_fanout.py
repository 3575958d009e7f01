"""FANOUT "bridge" on the Django side (logux_sync.sync.fanout): which changes go out once for the
logux-sync bridge to fan out, what they carry, the watches list subscriptions open with, and that a
row some subscriber may not read is still addressed node by node. The hostile cases come first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.db.models import Q
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from logux_sync.sync import addressing, delivery, fanout
from logux_sync.sync.changes import Change
from logux_sync.sync.clocks import now_ms
from logux_sync.sync.keys import match_key
from logux_sync.sync.models import LoguxSubscription
from logux_sync.sync.subscriptions import remember
from logux_sync.testing import capture
from tests.hostile import store_note_subscriptions
from tests.test_app.models import Note, Project

from .conftest import Endpoint, action_command

pytestmark = pytest.mark.django_db(transaction=True)

BRIDGE = {"SECRET": "secret", "FANOUT": "bridge"}
NODES = {"SECRET": "secret", "FANOUT": "nodes"}


@pytest.fixture
def public_when_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned note may be read by every subscriber (readers True), another only by its owner."""
    monkeypatch.setattr(
        Note.LoguxMeta, "readers", staticmethod(lambda note: True if note.pinned else Q(pk=note.owner_id))
    )
    monkeypatch.setattr(
        Note.LoguxMeta, "can_read", staticmethod(lambda user, note: note.pinned or user.pk == note.owner_id)
    )


@pytest.fixture
def sent() -> Iterator[delivery.Captured]:
    with capture() as pairs:
        yield pairs


def subscribe_hostile(ann: User, bob: User) -> None:
    """Every way a change of ann's note could reach bob's nodes, and an anonymous node's."""
    store_note_subscriptions(
        [(str(bob.pk), {}, ""), (str(bob.pk), {"owner": ann.pk}, ""), (str(bob.pk), {}, "n1"), ("", {}, "")]
    )
    remember("notes", f"{ann.pk}:a:1", str(ann.pk), {"owner": ann.pk}, 3600)


# ---- hostile first ---------------------------------------------------------------------------


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_private_row_is_fanned_out_to_its_reader_alone(sent: delivery.Captured) -> None:
    """readers Q(pk=owner): each change names ann as its only user (bob is subscribed every way, an
    anonymous node too); the bridge reaches no node of another user (tests/bridge/js/fanout.test.mjs)."""
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    note = Note.objects.create(id="n1", text="secret", owner=ann)
    note.text = "more secret"
    note.save()
    note.delete()
    assert [action["type"] for action, _ in sent] == ["notes/created", "notes/changed", "notes/deleted"]
    for action, meta in sent:
        assert "nodes" not in meta, action
        assert meta[fanout.META_KEY]["users"] == [str(ann.pk)], action


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_private_row_no_subscribed_user_may_read_is_not_sent(sent: delivery.Captured) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    store_note_subscriptions([(str(bob.pk), {}, ""), (str(bob.pk), {}, "n1"), ("", {}, "")])
    Note.objects.create(id="n1", text="secret", owner=ann)
    assert sent == []


@override_settings(LOGUX_SYNC=BRIDGE)
def test_the_users_of_a_fanned_out_change_are_the_subscribed_active_readers(
    sent: delivery.Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed: a user the Q selects who is subscribed (row or matching list), active; not listed: a
    reader who is not subscribed, a subscriber the Q leaves out, an inactive reader, a list that the
    row does not match."""
    people = {name: User.objects.create(username=name) for name in ("ann", "bob", "cy", "dee", "eve", "fay")}
    people["dee"].is_active = False
    people["dee"].save()
    monkeypatch.setattr(Note.LoguxMeta, "readers", staticmethod(lambda note: ~Q(username="bob")))
    ann, bob, cy, dee, eve, fay = people.values()
    store_note_subscriptions(
        [
            (str(ann.pk), {"owner": ann.pk}, ""),  # a matching list
            (str(bob.pk), {}, ""),  # every note, but readers leave bob out
            (str(cy.pk), {}, "n1"),  # the row itself
            (str(dee.pk), {}, ""),  # inactive
            (str(eve.pk), {"text": "other"}, ""),  # a list the note is not in
        ]
    )
    Note.objects.create(id="n1", text="t", owner=ann)
    [(_, meta)] = sent
    assert meta[fanout.META_KEY]["users"] == sorted([str(ann.pk), str(cy.pk)])
    assert str(fay.pk) not in meta[fanout.META_KEY]["users"]  # a reader with no subscription


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_row_given_to_another_owner_is_addressed_by_django(sent: delivery.Captured) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    note = Note.objects.create(id="n1", text="secret", owner=ann)
    sent.clear()
    note.owner = bob  # readers Q(pk=ann) before, Q(pk=bob) after
    note.save()
    assert [meta.get(fanout.META_KEY) for _, meta in sent] == [None] * len(sent)
    by_type = {action["type"]: set(meta["nodes"]) for action, meta in sent}
    assert by_type["notes/deleted"] == {f"{ann.pk}:a:1"}
    assert f"{bob.pk}:h0:1" in by_type["notes/created"]


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_row_that_turns_private_is_addressed_by_django(sent: delivery.Captured, public_when_pinned: None) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    note = Note.objects.create(id="n1", text="public", pinned=True, owner=ann)
    sent.clear()
    note.pinned = False  # from now on only ann may read it
    note.text = "secret"
    note.save()
    assert [meta.get(fanout.META_KEY) for _, meta in sent] == [None] * len(sent)
    by_type = {action["type"]: set(meta["nodes"]) for action, meta in sent}
    assert by_type["notes/changed"] == {f"{ann.pk}:a:1"}
    assert f"{bob.pk}:h0:1" in by_type["notes/deleted"]  # bob's list loses it, with no field of it
    deleted = next(action for action, _ in sent if action["type"] == "notes/deleted")
    assert "fields" not in deleted


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_row_that_turns_public_is_addressed_by_django(sent: delivery.Captured, public_when_pinned: None) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    note = Note.objects.create(id="n1", text="private", owner=ann)
    sent.clear()
    note.pinned = True
    note.save()
    assert [meta.get(fanout.META_KEY) for _, meta in sent] == [None] * len(sent)
    created = [set(meta["nodes"]) for action, meta in sent if action["type"] == "notes/created"]
    assert created and f"{bob.pk}:h0:1" in created[0]  # joined: the whole row, from Django


def test_a_client_cannot_send_a_watch_or_a_fanned_out_change(endpoint: Endpoint) -> None:
    with override_settings(LOGUX_SYNC=BRIDGE):
        for action in (
            {"type": fanout.WATCH, "plural": "notes", "key": match_key({}), "list": True, "ttl": 60},
            {"type": "logux_sync/anything"},
        ):
            answers = endpoint.answers(action_command(action, meta_id="1 10:c1:t1 0"))
            assert answers == [{"answer": "unknownAction", "id": "1 10:c1:t1 0"}]


# ---- what goes out -----------------------------------------------------------------------------


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_change_everyone_may_read_goes_once_for_the_bridge(sent: delivery.Captured, public_when_pinned: None) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    remember("notes", f"{bob.pk}:b:1", str(bob.pk), {"text": "a"}, 3600)
    note = Note.objects.create(id="n1", text="a", pinned=True, owner=ann)
    note.text = "b"
    note.save()
    note.delete()
    assert [action["type"] for action, _ in sent] == ["notes/created", "notes/changed", "notes/deleted"]
    for action, meta in sent:
        assert "nodes" not in meta
        info = meta[fanout.META_KEY]
        assert info["plural"] == "notes" and info["channel"] == "notes/n1"
        assert info["created"] == (action["type"] == "notes/created")
    keys = [set(meta[fanout.META_KEY]["keys"]) for _, meta in sent]
    # Every filter shape remembered: {owner}, {text}, {} (the change finds the lists before and after).
    a_state = {match_key({"text": "a"}), match_key({"owner": ann.pk}), match_key({})}
    assert keys[0] == a_state
    assert keys[1] == a_state | {match_key({"text": "b"})}
    assert match_key({"text": "b"}) in keys[2]


@override_settings(LOGUX_SYNC=BRIDGE)
def test_the_authors_client_is_excluded_from_the_fan_out(endpoint: Endpoint, public_when_pinned: None) -> None:
    ann = User.objects.create_user("ann", password="pw")
    with capture() as sent:
        Note.objects.create(id="n1", text="a", pinned=True, owner=ann)
        action = {"type": "notes/change", "id": "n1", "fields": {"text": "b"}}
        t = now_ms() + 1
        endpoint.answers(action_command(action, meta_id=f"{t} {ann.pk}:c:t 0", time=t))
    [(_, meta)] = [pair for pair in sent if pair[0]["type"] == "notes/changed"]
    assert meta["excludeClients"] == [f"{ann.pk}:c"] and fanout.META_KEY in meta


@override_settings(LOGUX_SYNC=NODES)
def test_nodes_mode_addresses_every_change(sent: delivery.Captured, public_when_pinned: None) -> None:
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    subscribe_hostile(ann, bob)
    Note.objects.create(id="n1", text="a", pinned=True, owner=ann)
    [changed] = [meta for action, meta in sent if action["type"] == "notes/created"]
    assert fanout.META_KEY not in changed
    assert f"{bob.pk}:h0:1" in changed["nodes"] and "h3" in " ".join(changed["nodes"])  # True: anonymous too


def address_one_change(state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Address a change of note n1's text (its state before and after: `state`); the queries it took
    and the meta of its one action."""
    edit = {"id": f"{now_ms() + 1} s:1:1 0", "time": now_ms() + 1}
    change = Change("notes", "changed", "n1", {"text": "a"}, state, state, edit, None)
    with CaptureQueriesContext(connection) as captured:
        [[(_, meta)]] = addressing.address_each([change])
    return len(captured), meta


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_fanned_out_change_reads_no_subscription_whatever_their_number(
    sent: delivery.Captured, public_when_pinned: None
) -> None:
    ann = User.objects.create(username="ann")
    note = Note.objects.create(id="n1", text="a", pinned=True, owner=ann)

    def queries(subscribers: int) -> int:
        for i in range(subscribers):
            remember("notes", f"{ann.pk}:c{i}:1", str(ann.pk), {"text": "a"}, 3600)
        count, meta = address_one_change({"text": "a", "pinned": True, "owner": ann.pk})
        assert fanout.META_KEY in meta
        return count

    assert queries(1) == queries(50) == 2  # the row and the filter shapes
    assert note.pk == "n1"


@override_settings(LOGUX_SYNC=BRIDGE)
def test_a_fanned_out_private_change_reads_its_users_in_one_query_whatever_their_number() -> None:
    owner = User.objects.create(username="owner")
    Note.objects.create(id="n1", text="a", owner=owner)

    def addressed(subscribers: int) -> tuple[int, list[str]]:
        for i in range(subscribers):
            user = User.objects.create(username=f"u{subscribers}-{i}")
            remember("notes", f"{user.pk}:c{i}:1", str(user.pk), {"text": "a"}, 3600)
        remember("notes", f"{owner.pk}:o{subscribers}:1", str(owner.pk), {"text": "a"}, 3600)
        count, meta = address_one_change({"text": "a", "pinned": False, "owner": owner.pk})
        return count, meta[fanout.META_KEY]["users"]

    assert addressed(1) == addressed(50) == (3, [str(owner.pk)])  # the row, the shapes, the users


# ---- watches ----------------------------------------------------------------------------------


def subscribe(endpoint: Endpoint, channel: str, user_id: Any, **extra: Any) -> list[dict[str, Any]]:
    action = {"type": "logux/subscribe", "channel": channel, **extra}
    return endpoint.answers(action_command(action, meta_id=f"5 {user_id}:c:t 0", time=5))


def test_a_list_load_opens_with_a_watch_for_the_node_in_bridge_mode(
    endpoint: Endpoint, sent: delivery.Captured
) -> None:
    ann = User.objects.create_user("ann", password="pw")
    Note.objects.create(id="n1", text="a", owner=ann)
    with override_settings(LOGUX_SYNC=BRIDGE):
        answers = [a for a in subscribe(endpoint, "notes", ann.pk, filter={"owner": ann.pk}) if a["answer"] == "action"]
        first = answers[0]
        assert first["action"] == {
            "type": fanout.WATCH,
            "plural": "notes",
            "key": match_key({"owner": ann.pk}),
            "list": True,
            "ttl": Note.logux_options.subscription_ttl,
        }
        assert first["meta"]["nodes"] == [f"{ann.pk}:c:t"]
        assert "notes/created" in [a["action"]["type"] for a in answers[1:]]
        # A row channel opens with no watch: the bridge knows its subscribers itself.
        row = [a for a in subscribe(endpoint, "notes/n1", ann.pk) if a["answer"] == "action"]
        assert fanout.WATCH not in [a["action"]["type"] for a in row]
    with override_settings(LOGUX_SYNC=NODES):
        answers = subscribe(endpoint, "notes", ann.pk, filter={"owner": ann.pk})
        assert fanout.WATCH not in [a["action"]["type"] for a in answers if a["answer"] == "action"]


def test_a_refused_list_subscription_opens_no_watch(endpoint: Endpoint) -> None:
    ann, bob = User.objects.create_user("ann", password="pw"), User.objects.create_user("bob", password="pw")
    with override_settings(LOGUX_SYNC=BRIDGE):
        answers = subscribe(endpoint, "notes", bob.pk, filter={"owner": ann.pk})  # can_subscribe: own notes only
    assert [a["answer"] for a in answers] == ["forbidden"]


def test_the_mode_is_read_at_call_time() -> None:
    with override_settings(LOGUX_SYNC=BRIDGE):
        assert fanout.bridge_mode()
    with override_settings(LOGUX_SYNC=NODES):
        assert not fanout.bridge_mode()
    assert not fanout.bridge_mode()  # the default


@override_settings(LOGUX_SYNC=BRIDGE)
def test_the_late_second_deleted_is_fanned_out_like_the_first(
    sent: delivery.Captured, public_when_pinned: None
) -> None:
    ann = User.objects.create(username="ann")
    remember("notes", f"{ann.pk}:a:1", str(ann.pk), {"text": "a"}, 3600)
    note = Note.objects.create(id="n1", text="a", pinned=True, owner=ann)
    note.delete()
    sent.clear()
    assert delivery.deliver(ignore_backoff=True) == 1  # the echo, due later, sent now
    [(action, meta)] = sent
    assert action == {"type": "notes/deleted", "id": "n1"}
    assert "nodes" not in meta and match_key({"text": "a"}) in meta[fanout.META_KEY]["keys"]


@pytest.mark.parametrize("derived", [False, True])
def test_a_watch_names_the_match_key_django_remembers_for_the_subscription(endpoint: Endpoint, derived: bool) -> None:
    user = User.objects.create_user("ann", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_task"))
    project = Project.objects.create(name="p")
    channel, extra = (f"projects/{project.pk}/tasks", {}) if derived else ("tasks", {"filter": {"project": project.pk}})
    with override_settings(LOGUX_SYNC=BRIDGE):
        answers = subscribe(endpoint, channel, user.pk, **extra)
    [watched] = [a["action"] for a in answers if a["answer"] == "action" and a["action"]["type"] == fanout.WATCH]
    [stored] = LoguxSubscription.objects.filter(node_id=f"{user.pk}:c:t").values_list("match_key", flat=True)
    assert watched["key"] == stored  # the key a change of a matching row carries (addressing._match_keys)
    assert watched["list"] is not derived  # only a createFilter list gets created rows marked subscribed
    assert watched["plural"] == "tasks"
