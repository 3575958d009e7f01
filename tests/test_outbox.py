"""Durable delivery: the outbox is written with the change, sent after commit, retried when Logux is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, OperationalError, transaction
from django.test import override_settings
from django.utils import timezone

import logux_sync
from logux_sync.exceptions import LoguxServerError
from logux_sync.sync import changes, delivery, outbox
from logux_sync.sync.clocks import field_clock
from logux_sync.sync.models import LoguxOutbox
from logux_sync.testing import resume_sending
from tests.test_app.models import Task

pytestmark = pytest.mark.django_db(transaction=True)


class FakeLogux:
    """Stands in for add_batch(): records requests, or fails like an unreachable server."""

    def __init__(self) -> None:
        self.requests: list[list[tuple[dict, dict]]] = []
        self.down = False

    def __call__(self, pairs: list[tuple[dict, dict]]) -> None:
        if self.down:
            raise LoguxServerError("http://127.0.0.1:31337/", None, "", ConnectionRefusedError("refused"))
        self.requests.append(list(pairs))


@pytest.fixture
def logux(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLogux]:
    fake = FakeLogux()
    monkeypatch.setattr(delivery, "add_batch", fake)
    resume_sending()
    yield fake
    resume_sending()  # a pause left by this test's failed sends would hold back the next test's


def ids(requests: list[list[tuple[dict, Any]]]) -> list[list[str]]:
    return [[action["id"] for action, _ in request] for request in requests]


def wire_ids(row: LoguxOutbox) -> list[str]:
    return [changes.Change.from_json(entry).wire_id for entry in row.payload["entries"]]


def test_sent_after_commit_and_pruned(logux: FakeLogux) -> None:
    with transaction.atomic():
        Task.objects.create(id="a", title="A")
        Task.objects.create(id="b", title="B")
        # Written inside the transaction, a row per save, under the transaction's batch.
        rows = LoguxOutbox.objects.order_by("id")
        assert [wire_ids(row) for row in rows] == [["a"], ["b"]] and len({row.batch for row in rows}) == 1
        assert logux.requests == []
    assert ids(logux.requests) == [["a", "b"]]
    assert not LoguxOutbox.objects.exists()


def test_meta_id_and_time_are_fixed_when_written(logux: FakeLogux) -> None:
    logux.down = True
    task = Task.objects.create(id="a", title="A")
    stored = changes.Change.from_json(LoguxOutbox.objects.get().payload["entries"][0]).meta
    assert (
        stored["id"] == field_clock(task.logux_clocks, "title")[1]
        and stored["time"] == field_clock(task.logux_clocks, "title")[0]
    )
    logux.down = False
    delivery.deliver(ignore_backoff=True)
    assert logux.requests[0][0][1]["id"] == stored["id"]


def test_rollback_writes_nothing(logux: FakeLogux) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Task.objects.create(id="a", title="A")
        raise RuntimeError
    assert not LoguxOutbox.objects.exists() and logux.requests == []


def test_savepoint_rollback_sends_only_committed(logux: FakeLogux) -> None:
    with transaction.atomic():
        Task.objects.create(id="kept", title="A")
        try:
            with transaction.atomic():
                Task.objects.create(id="dropped", title="B")
                raise RuntimeError
        except RuntimeError:
            pass
        Task.objects.create(id="after", title="C")
    assert ids(logux.requests) == [["kept", "after"]]


def test_outer_savepoint_with_the_callback_rolled_back(logux: FakeLogux) -> None:
    with transaction.atomic():
        try:
            with transaction.atomic():
                Task.objects.create(id="dropped", title="B")  # the batch's callback is registered here
                raise RuntimeError
        except RuntimeError:
            pass
        Task.objects.create(id="kept", title="A")
    assert ids(logux.requests) == [["kept"]]


def test_logux_down_the_save_still_succeeds_and_the_row_waits(logux: FakeLogux) -> None:
    logux.down = True
    started = time.monotonic()
    Task.objects.create(id="a", title="A")
    assert time.monotonic() - started < 1
    row = LoguxOutbox.objects.get()
    assert row.attempts == 1 and "31337" in row.last_error and row.next_attempt_at > row.created_at
    # Later saves do not even try while inline sends are paused, and keep their rows.
    Task.objects.create(id="b", title="B")
    assert [(wire_ids(row), row.attempts) for row in LoguxOutbox.objects.order_by("id")] == [(["a"], 1), (["b"], 0)]
    # Written claimed for this process, "b" was given back: logux_deliver may send it at once.
    waiting = LoguxOutbox.objects.get(attempts=0)
    assert waiting.claim == "" and waiting.next_attempt_at <= timezone.now()


def test_logux_deliver_once_drains_in_order(logux: FakeLogux) -> None:
    logux.down = True
    for name in "abc":
        Task.objects.create(id=name, title=name)
    logux.down = False
    call_command("logux_deliver", "--once", "--ignore-backoff", stdout=open("/dev/null", "w"))
    assert [i for request in ids(logux.requests) for i in request] == ["a", "b", "c"]
    assert not LoguxOutbox.objects.exists()


def test_logux_deliver_once_respects_backoff(logux: FakeLogux) -> None:
    logux.down = True
    Task.objects.create(id="a", title="A")
    logux.down = False
    call_command("logux_deliver", "--once", stdout=open("/dev/null", "w"))
    assert logux.requests == [] and LoguxOutbox.objects.count() == 1


def test_logux_deliver_once_fails_loudly_when_down(logux: FakeLogux) -> None:
    logux.down = True
    Task.objects.create(id="a", title="A")
    with pytest.raises(CommandError, match="31337"):
        call_command("logux_deliver", "--once", "--ignore-backoff", stdout=open("/dev/null", "w"))
    assert LoguxOutbox.objects.get().attempts == 2


def test_logux_deliver_once_goes_on_after_a_passing_database_fault(
    logux: FakeLogux, monkeypatch: pytest.MonkeyPatch
) -> None:
    logux.down = True
    Task.objects.create(id="a", title="A")
    logux.down = False
    real, faults = delivery.deliver, [OperationalError("database is locked")] * 2

    def flaky(**kwargs: Any) -> int:
        if faults:
            raise faults.pop()
        return real(**kwargs)

    monkeypatch.setattr(delivery, "deliver", flaky)
    call_command("logux_deliver", "--once", "--ignore-backoff", "--interval", "0", stdout=open("/dev/null", "w"))
    assert ids(logux.requests) == [["a"]] and not LoguxOutbox.objects.exists()


def test_logux_deliver_once_gives_up_on_a_lasting_database_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(**kwargs: Any) -> int:
        raise OperationalError("database is locked")

    monkeypatch.setattr(delivery, "deliver", locked)
    monkeypatch.setattr("logux_sync.management.commands.logux_deliver.MAX_PAUSE", 0.0)
    with pytest.raises(CommandError, match="database is locked"):
        call_command("logux_deliver", "--once", stdout=open("/dev/null", "w"))


def test_next_send_after_recovery_also_sends_its_own(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    logux.down = True
    Task.objects.create(id="a", title="A")
    logux.down = False
    resume_sending()
    Task.objects.create(id="b", title="B")
    assert ids(logux.requests) == [["b"]]
    assert LoguxOutbox.objects.count() == 1  # "a" waits for its backoff or logux_deliver


def test_backoff_grows_and_is_capped() -> None:
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [1, 2, 4, 30]


def test_redelivered_change_is_harmless(logux: FakeLogux) -> None:
    Task.objects.create(id="a", title="A")
    first = logux.requests[0][0]
    # The same (action, meta) again: same id (the Logux server drops it) and same time (LWW keeps state).
    assert first[1]["id"] and first[1]["time"]


def test_a_large_transaction_goes_out_whole_in_one_request(logux: FakeLogux) -> None:
    with transaction.atomic():
        Task.objects.bulk_create([Task(id=f"t{i:04}", title=str(i)) for i in range(1200)])
    assert [len(request) for request in logux.requests] == [1200]
    assert not LoguxOutbox.objects.exists()


def test_a_late_change_of_a_deleted_row_does_not_bring_it_back(logux: FakeLogux) -> None:
    # Seen in tests/e2e/test_faults.py: while the Logux server was down a row was created and changed;
    # once it was back the row was deleted (sent inline); logux_deliver then sent the waiting
    # `tasks/created`/`tasks/changed`, and @logux/client's createFilter put the deleted row back.
    from django.contrib.auth import get_user_model

    from logux_sync.sync.subscriptions import remember

    reader = get_user_model().objects.create_superuser("reader", password="x")
    remember("tasks", f"{reader.pk}:c1:t1", str(reader.pk), {}, 3600)
    logux.down = True
    task = Task.objects.create(id="a", title="A")
    task.title = "B"
    task.save()
    logux.down = False
    resume_sending()
    task.delete()
    assert [(a["type"], m["nodes"]) for a, m in logux.requests[-1]] == [("tasks/deleted", [f"{reader.pk}:c1:t1"])]
    delivery.deliver(ignore_backoff=True)
    late = [(a["type"], m["nodes"]) for a, m in logux.requests[-1]]
    # ...and the deletion once more (see test_a_deletion_goes_out_again_later).
    assert late == [("tasks/created", []), ("tasks/changed", []), ("tasks/deleted", [f"{reader.pk}:c1:t1"])], late
    assert not LoguxOutbox.objects.exists()


def test_changes_of_a_row_deleted_in_the_same_delivery_reach_only_its_deletion(logux: FakeLogux) -> None:
    # The e2e fault run: logux_deliver sent a row's waiting `changed` and its `deleted` together, and
    # createFilter (which handles `changed` a microtask late) put the deleted row back.
    from django.contrib.auth import get_user_model

    from logux_sync.sync.subscriptions import remember

    reader = get_user_model().objects.create_superuser("reader", password="x")
    node = f"{reader.pk}:c1:t1"
    remember("tasks", node, str(reader.pk), {}, 3600)
    logux.down = True
    task = Task.objects.create(id="a", title="A")
    task.title = "B"
    task.save()
    task.delete()
    logux.down = False
    delivery.deliver(ignore_backoff=True)
    sent = [(a["type"], m["nodes"]) for a, m in logux.requests[-1]]
    # The last one is the deletion's second sending (see test_a_deletion_goes_out_again_later).
    assert sent == [("tasks/created", []), ("tasks/changed", []), ("tasks/deleted", [node]), ("tasks/deleted", [node])]


def test_a_deletion_goes_out_again_later(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/e2e/test_faults.py: a client that caught up after a reconnect read a list load's `changed`
    # of a row and that row's `deleted` in one network read; @logux/client 0.21 handled the `deleted`
    # first (it keeps no log entry for it), and createFilter put the row back from the `changed`.
    from django.contrib.auth import get_user_model

    from logux_sync.sync.models import LoguxLateDelivery
    from logux_sync.sync.subscriptions import remember

    reader = get_user_model().objects.create_superuser("reader", password="x")
    node = f"{reader.pk}:c1:t1"
    remember("tasks", node, str(reader.pk), {}, 3600)
    Task.objects.create(id="a", title="A").delete()
    [(first, first_meta)] = logux.requests[-1]
    assert (first, first_meta["nodes"]) == ({"type": "tasks/deleted", "id": "a"}, [node])
    waiting = LoguxOutbox.objects.get()
    assert (waiting.next_attempt_at - waiting.created_at).total_seconds() == outbox.DELETE_ECHO_S
    assert delivery.deliver() == 0  # not due yet
    monkeypatch.setattr(delivery, "LATE_MS", -1)  # any delivery of a change would count as late
    assert delivery.deliver(ignore_backoff=True) == 1
    [(again, meta)] = logux.requests[-1]
    assert (again, meta["nodes"], meta["time"]) == (first, [node], first_meta["time"])
    assert meta["id"] != first_meta["id"]  # the Logux server would drop an id its log still holds
    assert not LoguxLateDelivery.objects.exists()  # sent late on purpose: resubscribes need not look back
    with transaction.atomic():
        Task.objects.create(id="b", title="B").delete()
        transaction.set_rollback(True)
    assert not LoguxOutbox.objects.exists()


def test_a_late_change_carries_only_the_fields_no_newer_edit_overwrote(logux: FakeLogux) -> None:
    # tests/e2e/test_faults.py: a client that loaded a row while the Logux server had been down held a
    # field under an older clock than its edit (createFilter applied the load's `created` after its
    # `changed`), and a change that had waited in the outbox then set that field back to its old value.
    from django.contrib.auth import get_user_model

    from logux_sync.sync.subscriptions import remember

    reader = get_user_model().objects.create_superuser("reader", password="x")
    node = f"{reader.pk}:c1:t1"
    remember("tasks", node, str(reader.pk), {}, 3600)
    task = Task.objects.create(id="a", title="A")
    logux.down = True
    task.title, task.done = "B", True
    task.save()
    logux.down = False
    resume_sending()
    task.title = "C"
    task.save()
    assert [a.get("fields") for a, _ in logux.requests[-1]] == [{"title": "C"}]
    delivery.deliver(ignore_backoff=True)
    assert [(a["fields"], m["nodes"]) for a, m in logux.requests[-1]] == [({"done": True}, [node])]
    task.title = "D"
    task.save()
    logux.down = True
    task.title = "E"
    task.save()
    logux.down = False
    Task.objects.filter(pk="a").update(title="F")  # waits too: inline sends pause after a failure
    delivery.deliver(ignore_backoff=True)
    # Every field the first waiting change set was overwritten (by the second): it reaches no one.
    sent = [(a["fields"], m["nodes"]) for a, m in logux.requests[-1]]
    assert sent == [({}, []), ({"title": "F"}, [node])], sent


def test_a_late_delivery_widens_since_for_resubscribing_clients(logux: FakeLogux, client: Any) -> None:
    import json as _json

    from django.contrib.auth.models import Permission, User

    reader = User.objects.create_user("reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_task"))
    logux.down = True
    Task.objects.create(id="late", title="made while Logux was down")
    made = field_clock(Task.objects.get(pk="late").logux_clocks, "title")[0]
    logux.down = False
    time.sleep(1.1)  # delivered well after it was made
    delivery.deliver(ignore_backoff=True)
    # The client's log holds a newer action (time after the change) when it resubscribes.
    action = {"type": "logux/subscribe", "channel": "tasks", "filter": {}, "since": {"id": "x", "time": made + 500}}
    command = {"command": "action", "action": action, "meta": {"id": f"9 {reader.pk}:c:t 0", "time": 9}}
    body = {"version": 4, "secret": "secret", "commands": [command]}
    response = client.post("/logux/", _json.dumps(body), content_type="application/json")
    answers = _json.loads(b"".join(response.streaming_content))
    assert [
        a["action"]["id"] for a in answers if a["answer"] == "action" and a["action"]["type"] != "logux/subscribed"
    ] == ["late"]


def test_a_transactions_rows_share_its_batch(logux: FakeLogux) -> None:
    with transaction.atomic():
        for name in "abc":
            Task.objects.create(id=name, title=name)
        rows = list(LoguxOutbox.objects.order_by("id"))
        assert [wire_ids(row) for row in rows] == [["a"], ["b"], ["c"]] and len({row.batch for row in rows}) == 1
        # Written claimed for this process's sender (the batch is the claim), under one lease.
        assert all(row.claim == row.batch for row in rows) and len({row.next_attempt_at for row in rows}) == 1
    Task.objects.create(id="d", title="d")  # another transaction, another batch
    assert ids(logux.requests) == [["a", "b", "c"], ["d"]]


def test_the_outbox_rows_are_written_with_the_saves_inside_the_transaction(logux: FakeLogux) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    outbox = LoguxOutbox._meta.db_table
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        for name in "abc":
            Task.objects.create(id=name, title=name)
        inserts = [q for q in captured.captured_queries if outbox in q["sql"] and "INSERT" in q["sql"]]
        assert len(inserts) == 3 and '["tasks", "created", "c", ' in inserts[-1]["sql"]
    assert ids(logux.requests) == [["a", "b", "c"]]
    assert "commit" not in connection.__dict__  # nothing of the connection is replaced


def test_rows_read_inside_a_savepoint_that_rolls_back_are_written_again(logux: FakeLogux) -> None:
    with transaction.atomic():
        Task.objects.create(id="a", title="A")
        try:
            with transaction.atomic():
                assert LoguxOutbox.objects.count() == 1  # written here, inside the savepoint
                Task.objects.create(id="dropped", title="B")
                raise RuntimeError
        except RuntimeError:
            pass
        assert [wire_ids(row) for row in LoguxOutbox.objects.all()] == [["a"]]
        Task.objects.create(id="b", title="B")
    assert ids(logux.requests) == [["a", "b"]]
    assert not LoguxOutbox.objects.exists()


def test_rows_of_a_released_savepoint_commit(logux: FakeLogux) -> None:
    with transaction.atomic():
        with transaction.atomic():
            Task.objects.create(id="inner", title="A")
        with transaction.atomic():
            Task.objects.create(id="sibling", title="B")
        Task.objects.create(id="outer", title="C")
    assert ids(logux.requests) == [["inner", "sibling", "outer"]]


@pytest.mark.parametrize("error", [RuntimeError("bug"), DatabaseError("disk full")])
def test_a_failed_outbox_write_at_commit_rolls_the_transaction_back(
    logux: FakeLogux, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(cursor: Any, *args: Any, **kwargs: Any) -> None:
        raise error

    with monkeypatch.context() as patched, pytest.raises(type(error)), transaction.atomic():
        patched.setattr(outbox, "_insert", fail)
        Task.objects.create(id="a", title="A")
    assert not Task.objects.exists() and not LoguxOutbox.objects.exists() and logux.requests == []
    Task.objects.create(id="b", title="B")  # the connection is usable again
    assert ids(logux.requests) == [["b"]]


@pytest.mark.parametrize(
    "payload",
    [
        {"change": {"plural": "tasks", "fields": {"title": 'Ünïcode ✓ "q" \\n\n', "n": 1.5, "big": 2**70}}},
        {"raw": [{"type": "x", "list": [None, True, False, -0.0, 1e300]}, {"id": "1 a:b:c 0", "time": 1}]},
        {"nan": float("nan"), "inf": float("inf"), "empty": {}, "nested": [[[]]]},
    ],
)
def test_payload_text_is_json_dumps(payload: dict[str, Any]) -> None:
    import json

    assert changes.payload_text(payload) == json.dumps(payload)


def test_add_on_commit_goes_out_with_the_transactions_changes_in_order(logux: FakeLogux) -> None:
    with transaction.atomic():
        Task.objects.create(id="a", title="A")
        logux_sync.add_on_commit({"type": "notes/ping", "id": "p"}, {"channels": ["notes"]})
        Task.objects.create(id="b", title="B")
        assert logux.requests == []
    assert ids(logux.requests) == [["a", "p", "b"]]
    action, meta = logux.requests[0][1]
    assert action == {"type": "notes/ping", "id": "p"}
    assert meta["channels"] == ["notes"] and meta["id"].split(" ")[1].startswith("server:")
    assert int(meta["id"].split(" ")[0]) == meta["time"]  # fixed when it was added
    assert not LoguxOutbox.objects.exists()


def test_add_on_commit_keeps_a_given_id_and_sends_nothing_after_a_rollback(logux: FakeLogux) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        logux_sync.add_on_commit({"type": "notes/ping", "id": "lost"})
        raise RuntimeError
    assert logux.requests == [] and not LoguxOutbox.objects.exists()
    logux_sync.add_on_commit({"type": "notes/ping", "id": "kept"}, {"id": "5 server:x 0", "time": 5})  # autocommit
    assert logux.requests == [[({"type": "notes/ping", "id": "kept"}, {"id": "5 server:x 0", "time": 5})]]


def test_add_on_commit_waits_in_the_outbox_while_logux_is_down(logux: FakeLogux) -> None:
    logux.down = True
    logux_sync.add_on_commit({"type": "notes/ping", "id": "p"}, {"users": ["1"]})
    stored = LoguxOutbox.objects.get().payload["entries"][0]["raw"]
    assert stored[0] == {"type": "notes/ping", "id": "p"} and stored[1]["users"] == ["1"]
    logux.down = False
    call_command("logux_deliver", "--once", "--ignore-backoff")
    assert logux.requests == [[(stored[0], stored[1])]]  # the id and time fixed when it was added
    assert not LoguxOutbox.objects.exists()


def test_add_on_commit_refuses_what_json_cannot_carry_at_once(logux: FakeLogux) -> None:
    with transaction.atomic():
        with pytest.raises(TypeError):
            logux_sync.add_on_commit({"type": "notes/ping", "when": object()})
        Task.objects.create(id="a", title="A")
    assert ids(logux.requests) == [["a"]]


def test_a_commit_shadowed_before_the_hook_still_runs(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connections

    connection = connections["default"]

    commits: list[int] = []

    def counted() -> None:
        commits.append(LoguxOutbox.objects.count())  # our rows are written before it runs
        type(connection).commit(connection)

    monkeypatch.setattr(connection, "commit", counted, raising=False)
    with transaction.atomic():
        Task.objects.create(id="a", title="A")
    # The save's commit ran with its outbox row written (already claimed for this process: no claim
    # transaction; the row is still there while it is sent, outside any transaction), then its delete.
    assert commits == [1, 0] and connection.commit is counted
    assert ids(logux.requests) == [["a"]] and Task.objects.filter(pk="a").exists()


@pytest.mark.django_db(transaction=False)
def test_on_commit_callbacks_run_inside_a_test_transaction_send_every_row(
    logux: FakeLogux, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        Task.objects.create(id="a", title="A")
        with transaction.atomic():
            Task.objects.create(id="b", title="B")
        Task.objects.create(id="c", title="C")
    assert ids(logux.requests) == [["a", "b", "c"]]
    assert not LoguxOutbox.objects.exists()


def test_deliver_takes_whole_transactions_up_to_the_limit_of_actions(logux: FakeLogux) -> None:
    logux.down = True
    for names in ("ab", "cd", "efgh"):
        with transaction.atomic():
            for name in names:
                Task.objects.create(id=name, title=name)
    logux.down = False
    assert delivery.deliver(limit=2, ignore_backoff=True) == 2  # "cd" would make 4
    assert delivery.deliver(limit=2, ignore_backoff=True) == 2
    assert delivery.deliver(limit=2, ignore_backoff=True) == 4  # a transaction bigger than the limit goes whole
    assert ids(logux.requests) == [["a", "b"], ["c", "d"], ["e", "f", "g", "h"]]
    assert not LoguxOutbox.objects.exists()


def test_add_on_commit_refuses_an_action_it_cannot_store(logux: FakeLogux) -> None:
    with pytest.raises(TypeError), transaction.atomic():
        logux_sync.add_on_commit({"type": "notes/ping", "when": object()})
    assert not LoguxOutbox.objects.exists() and logux.requests == []


NEW = {"title": "B", "done": False, "project": None}


@pytest.mark.parametrize(
    "change",
    [
        changes.Change("tasks", "created", "a", NEW, None, NEW, {"id": "1 server:x 0", "time": 1}, None),
        changes.Change(
            "tasks", "changed", "a", {"title": "B"}, {**NEW, "title": "A"}, NEW, {"id": "2 x 0", "time": 2}, None
        ),
        changes.Change("tasks", "changed", "a", {"done": False}, NEW, NEW, {"id": "3 1:c:t 0", "time": 3}, "1:c"),
        changes.Change("tasks", "created", "a", NEW, None, NEW, {"id": "4 1:c:t 0", "time": 4}, "1:c"),
        changes.Change("tasks", "deleted", "a", {}, NEW, None, {"id": "5 server:x 1", "time": 5}, None),
        changes.Change("tasks", "changed", "a", {}, NEW, NEW, {"id": "6 server:x 2", "time": 6}, None),
    ],
)
def test_a_change_stored_in_the_outbox_reads_back_the_same(change: changes.Change) -> None:
    import json

    stored = json.loads(changes.payload_text({"entries": [change.to_json()]}))["entries"][0]
    assert changes.is_change(stored) and changes.Change.from_json(stored) == change


def test_a_large_bulk_change_is_written_in_rows_of_row_entries_and_sent_in_one_request(
    logux: FakeLogux, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "ROW_ENTRIES", 2)
    logux.down = True
    Task.objects.bulk_create(Task(id=name, title=name) for name in "abcde")
    assert [wire_ids(row) for row in LoguxOutbox.objects.order_by("id")] == [["a", "b"], ["c", "d"], ["e"]]
    assert len({row.batch for row in LoguxOutbox.objects.all()}) == 1
    logux.down = False
    logux.requests.clear()
    delivery.deliver(limit=1, ignore_backoff=True)
    assert ids(logux.requests) == [["a", "b", "c", "d", "e"]] and not LoguxOutbox.objects.exists()


# ---- the delivery core: no transaction across the network, senders that share the outbox --------


def test_no_transaction_is_open_while_a_request_is_in_flight(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    open_during_send: list[bool] = []

    def send(pairs: list[tuple[dict, dict]]) -> None:
        open_during_send.append(transaction.get_connection().in_atomic_block)
        logux(pairs)

    monkeypatch.setattr(delivery, "add_batch", send)
    Task.objects.create(id="a", title="A")
    logux.down = True
    Task.objects.create(id="b", title="B")
    logux.down = False
    delivery.deliver(ignore_backoff=True)
    assert open_during_send == [False, False, False] and ids(logux.requests) == [["a"], ["b"]]


def test_rows_claimed_by_one_sender_are_not_taken_by_another(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    logux.down = True
    Task.objects.create(id="a", title="A")  # waits for a retry, claimed by no one
    logux.down = False
    others: list[int] = []

    def send(pairs: list[tuple[dict, dict]]) -> None:
        # While this sender's request is in flight (its claim committed), other senders run: neither
        # a due-rows one nor one that ignores backoff takes the row it holds.
        if not others:
            others.append(delivery.deliver(ignore_backoff=True))
            others.append(delivery.deliver())
        logux(pairs)

    monkeypatch.setattr(delivery, "add_batch", send)
    assert delivery.deliver(ignore_backoff=True) == 1
    assert others == [0, 0] and ids(logux.requests) == [["a"]]
    assert not LoguxOutbox.objects.exists()


def test_rows_written_claimed_are_due_to_other_senders_when_the_lease_ends(
    logux: FakeLogux, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process dies between its commit and its send: nothing hands the batch over.
    monkeypatch.setattr(delivery, "after_commit", lambda batch, using: None)
    Task.objects.create(id="a", title="A")
    row = LoguxOutbox.objects.get()
    assert row.claim == row.batch and row.attempts == 0
    assert row.next_attempt_at - row.created_at == delivery.lease()
    # While the lease lasts no other sender takes it, even one that ignores backoff.
    assert delivery.deliver(ignore_backoff=True) == 0 and logux.requests == []
    LoguxOutbox.objects.update(next_attempt_at=timezone.now())  # the lease ran out
    call_command("logux_deliver", "--once")
    assert ids(logux.requests) == [["a"]] and not LoguxOutbox.objects.exists()


def test_with_worker_delivery_rows_are_written_unclaimed_and_due(logux: FakeLogux) -> None:
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": "worker"}):
        Task.objects.create(id="a", title="A")
    row = LoguxOutbox.objects.get()
    assert row.claim == "" and row.next_attempt_at == row.created_at and logux.requests == []


@pytest.fixture
def sending_threads(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread that made each request the fake Logux server gets."""
    import threading

    names: list[str] = []

    def send(pairs: list[tuple[dict, dict]]) -> None:
        names.append(threading.current_thread().name)
        logux(pairs)

    monkeypatch.setattr(delivery, "add_batch", send)
    return names


def test_the_sender_thread_delivers_off_the_committing_thread(
    logux: FakeLogux, sending_threads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test database is in memory, where sending stays in the committing thread; nothing else
    # writes to it during this test, so the thread may share it here.
    monkeypatch.setattr(delivery, "is_in_memory_sqlite", lambda connection: False)
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": "thread"}):
        with transaction.atomic():
            Task.objects.create(id="a", title="A")
            Task.objects.create(id="b", title="B")
        assert delivery.sender.drain(10)
    assert sending_threads == ["logux-sync-sender"] and ids(logux.requests) == [["a", "b"]]
    assert not LoguxOutbox.objects.exists()


def test_the_sender_keeps_its_connection_while_busy_and_closes_it_once_idle(
    logux: FakeLogux, sending_threads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.setattr(delivery, "is_in_memory_sqlite", lambda connection: False)  # as above
    closes: list[str] = []
    monkeypatch.setattr(delivery, "close_old_connections", lambda: closes.append(threading.current_thread().name))
    monkeypatch.setattr(delivery.Sender, "IDLE_CLOSE", 3.0)
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": "thread"}):
        Task.objects.create(id="w", title="W")  # the thread, maybe an earlier test's, now waits 3 s
        assert delivery.sender.drain(10)
        closes.clear()
        Task.objects.create(id="a", title="A")
        assert delivery.sender.drain(10)
        Task.objects.create(id="b", title="B")
        assert delivery.sender.drain(10)
        assert closes == []  # not between two batches in a row
        monkeypatch.setattr(delivery.Sender, "IDLE_CLOSE", 0.05)
        Task.objects.create(id="c", title="C")  # the thread now waits 0.05 s for the next batch
        assert delivery.sender.drain(10)
        deadline = time.monotonic() + 10
        while not closes and time.monotonic() < deadline:
            time.sleep(0.01)
    assert closes == ["logux-sync-sender"] and ids(logux.requests) == [["w"], ["a"], ["b"], ["c"]]


def test_on_an_in_memory_database_the_committing_thread_sends(logux: FakeLogux, sending_threads: list[str]) -> None:
    """Another connection cannot share an in-memory SQLite database (the test database): no thread."""
    import threading

    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": "thread"}):
        Task.objects.create(id="a", title="A")
    assert ids(logux.requests) == [["a"]] and sending_threads == [threading.current_thread().name]


@pytest.mark.parametrize("mode", ["worker", "inline"])
def test_delivery_modes(logux: FakeLogux, mode: str) -> None:
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": mode}):
        Task.objects.create(id="a", title="A")
    if mode == "worker":  # left to logux_deliver
        assert logux.requests == [] and LoguxOutbox.objects.count() == 1
        call_command("logux_deliver", "--once")
    assert ids(logux.requests) == [["a"]] and not LoguxOutbox.objects.exists()


def test_after_an_outage_the_sender_sends_the_next_change_within_seconds(
    logux: FakeLogux, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No logux_deliver running: the sender itself sends what waited once the backoff (1 s) passes."""
    monkeypatch.setattr(delivery, "is_in_memory_sqlite", lambda connection: False)  # as above
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "DELIVERY": "thread"}):
        logux.down = True
        Task.objects.create(id="during", title="made while Logux is down")
        assert delivery.sender.drain(10) and logux.requests == []
        logux.down = False  # the server is back
        back = time.monotonic()
        Task.objects.create(id="after", title="the first change after it")
        assert delivery.sender.drain(10)
        took = time.monotonic() - back
    # With it goes the change that waited (its first retry was due after a second, too), in order.
    assert ids(logux.requests) == [["during", "after"]] and took < 2, took
    assert not LoguxOutbox.objects.exists()


def test_a_rolled_back_transaction_then_a_new_connection_still_writes(logux: FakeLogux) -> None:
    from django.db import connection

    with pytest.raises(RuntimeError), transaction.atomic():
        Task.objects.create(id="a", title="A")
        raise RuntimeError("rolled back")
    connection.close()  # as at the end of a request (CONN_MAX_AGE 0)
    Task.objects.create(id="b", title="B")  # the next request of this thread
    assert ids(logux.requests) == [["b"]] and not LoguxOutbox.objects.exists()
