"""Hostile input: property-based fuzzing of the endpoint through Django's test client.

Every generated body is posted to `/logux/` and its whole (streamed) response read. The endpoint must
answer with a clear 4xx or a 200 JSON array of well-formed answers, never a 5xx or an escaping
exception, and a body from an author without permission (or an invalid one) must change no row.

The in-suite run is small and derandomized (about 1,300 bodies, ~12 s). The long run is randomized
and posts about 12,600 bodies (~2.5 min):

    HYPOTHESIS_PROFILE=full .venv/bin/pytest -q tests/test_fuzz.py

Both write their figures (bodies, statuses, 5xx, DB changes, wall time) to test-artifacts/fuzz.json.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.auth.models import User as AuthUser
from django.core.cache import cache
from django.db import DatabaseError
from django.test import Client, override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logux_sync.conf import logux_settings
from logux_sync.protocol import MAX_DEPTH, TOO_MANY_ATTEMPTS, WRONG_BODY, WRONG_SECRET, WRONG_VERSION
from logux_sync.sync import delivery
from logux_sync.sync.models import LoguxSubscription
from logux_sync.sync.tables import LoguxFilterShape
from logux_sync.testing import capture
from tests.test_app.models import Counter, Note, Project, Task

pytestmark = pytest.mark.django_db(transaction=True)

# ---- profiles --------------------------------------------------------------------------------

_HEALTH = [
    HealthCheck.function_scoped_fixture,  # the world fixture is shared by the examples on purpose
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
]
settings.register_profile(
    "fuzz-ci", max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=_HEALTH
)
settings.register_profile(
    "fuzz-full", max_examples=1500, deadline=None, derandomize=False, database=None, suppress_health_check=_HEALTH
)
FULL = os.environ.get("HYPOTHESIS_PROFILE", "") in ("full", "fuzz-full")
PROFILE = settings.get_profile("fuzz-full" if FULL else "fuzz-ci")


def fuzz(examples: int | None = None) -> Callable[[Any], Any]:
    """The profile's settings; `examples` caps the count for bodies that are costly to post."""
    if examples is None:
        return settings(PROFILE)
    return settings(PROFILE, max_examples=min(PROFILE.max_examples, examples * (10 if FULL else 1)))


# ---- the world every example runs against ------------------------------------------------------

# Fixed, large primary keys, so that no small generated number or string names a real user.
NOBODY = 8_765_432  # active, no permission at all
INACTIVE_ROOT = 5_432_100  # superuser, but inactive
ANN = 7_654_321  # owns note n1 (never an author in the no-change tests: she may edit it)
VIEWER = 9_876_543  # view_task only: may subscribe (and so be remembered)
EDITOR = 6_543_210  # add/change/delete/view task
MISSING = 1_234_567  # no such user
PROJECT = 4242

SQLISH = [
    "1 OR 1=1",
    "1' OR '1'='1",
    "'; DROP TABLE test_app_task; --",
    '"; DROP TABLE auth_user; --',
    "1; DELETE FROM logux_sync_loguxsubscription",
    "' UNION SELECT password FROM auth_user --",
    "t1' --",
    "%",
    "_",
    "\\",
    "NULL",
    "\x00",
    "../notes",
    "t1/../../n1",
    "__proto__",
]

STATS: Tally[str] = Tally()
ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "fuzz.json"


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    started = time.monotonic()
    yield
    figures = {
        "profile": "full" if FULL else "ci",
        "bodies": STATS["bodies"],
        "5xx": STATS["5xx"],
        "exceptions": STATS["exceptions"],
        "db_changes": STATS["db_changes"],
        "placeholder_subscriptions": STATS["placeholder_subscriptions"],
        "statuses": {k[7:]: v for k, v in sorted(STATS.items()) if k.startswith("status:")},
        "answers": {k[7:]: v for k, v in sorted(STATS.items()) if k.startswith("answer:")},
        "handler_errors": {k[14:]: v for k, v in sorted(STATS.items()) if k.startswith("handler_error:")},
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfuzz figures: {json.dumps(figures)}")


@pytest.fixture(autouse=True)
def sent() -> Iterator[delivery.Captured]:
    with capture() as pairs:
        yield pairs


def _user(pk: int, name: str, *perms: str, **extra: Any) -> None:
    user = AuthUser.objects.create_user(name, password="pw", id=pk, **extra)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))


@pytest.fixture
def world() -> None:
    _user(NOBODY, "nobody")
    _user(INACTIVE_ROOT, "root", is_active=False, is_superuser=True, is_staff=True)
    _user(ANN, "ann")
    _user(VIEWER, "viewer", "view_task")
    _user(EDITOR, "editor", "add_task", "change_task", "delete_task", "view_task")
    project = Project.objects.create(id=PROJECT, name="p")
    Task.objects.create(id="t1", title="one", project=project, secret="s3cret")
    Task.objects.create(id="t2", title="two", secret="hidden")
    Note.objects.create(id="n1", text="ann's", owner_id=ANN)
    Counter.objects.create(value=1)


# ---- posting and checking -----------------------------------------------------------------------

AUTH_ANSWERS = {"authenticated", "denied", "wrongSubprotocol"}
ACTION_ANSWERS = {"resend", "approved", "forbidden", "processed", "action", "unknownAction", "unknownChannel"}
ANSWERS = AUTH_ANSWERS | ACTION_ANSWERS | {"error"}


def _no_constants(name: str) -> Any:
    raise AssertionError(f"the endpoint wrote {name}, which is not JSON")


def encode(value: Any) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def snapshot() -> dict[str, Any]:
    """Every row of every table."""
    rows: dict[str, Any] = {}
    for model in apps.get_models():
        try:
            rows[model._meta.label] = [repr(r) for r in model._base_manager.order_by("pk").values()]
        except DatabaseError as exc:  # a model another branch added without its migration yet
            rows[model._meta.label] = f"unreadable: {exc}"
    return rows


def command_ids(raw: bytes) -> list[str]:
    commands = json.loads(raw)["commands"]
    return [c["authId"] if c.get("command") == "auth" else c["meta"]["id"] for c in commands]


def check_answers(answers: Any, ids: list[str]) -> None:
    assert isinstance(answers, list)
    seen: dict[str, list[str]] = {}
    for item in answers:
        assert isinstance(item, dict), item
        kind = item.get("answer")
        assert kind in ANSWERS, item
        STATS[f"answer:{kind}"] += 1
        key = "authId" if "authId" in item else "id"
        assert ("authId" in item) != ("id" in item), item
        assert isinstance(item[key], str), item
        if kind in AUTH_ANSWERS:
            assert key == "authId", item
        elif kind in ACTION_ANSWERS:
            assert key == "id", item
        if kind == "error":
            assert isinstance(item.get("details"), str), item
            assert "Traceback" not in item["details"], item
            if re.match(r"[A-Z]\w*(Error|Exception): ", item["details"]):  # a handler failed, not a bad command
                STATS[f"handler_error:{item['details'].split(':')[0]}"] += 1
        elif kind == "authenticated":
            assert isinstance(item.get("subprotocol"), str), item
        elif kind == "wrongSubprotocol":
            assert isinstance(item.get("supported"), str), item
        elif kind == "resend":
            assert set(item) - {"answer", "id"} <= {"channels", "users", "clients", "nodes"}, item
            targets = [v for k, v in item.items() if k not in ("answer", "id")]
            assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in targets), item
        elif kind == "action":
            assert isinstance(item.get("action"), dict) and isinstance(item["action"].get("type"), str), item
            assert isinstance(item.get("meta"), dict), item
        seen.setdefault(item[key], []).append(kind)
    assert set(seen) == set(ids), (seen, ids)
    if len(set(ids)) == len(ids):  # protocol order per command, when no two commands share an id
        for kinds in seen.values():
            if "processed" in kinds:
                assert "approved" in kinds and kinds.index("approved") < kinds.index("processed"), kinds
                assert kinds[-1] == "processed", kinds
            assert not ("forbidden" in kinds and "processed" in kinds), kinds
            assert kinds.count("approved") + kinds.count("forbidden") <= 1, kinds


def post(raw: bytes, **extra: Any) -> tuple[int, Any]:
    """Post one body, read all of it, and check it is a clear refusal or well-formed answers."""
    cache.clear()  # wrong secrets from earlier examples must not lock every later one out
    STATS["bodies"] += 1
    client = Client()
    try:
        response = client.post("/logux/", raw, content_type="application/json", **extra)
        content = b"".join(response.streaming_content) if response.streaming else response.content
    except BaseException:
        STATS["exceptions"] += 1
        raise
    status = response.status_code
    STATS[f"status:{status}"] += 1
    if status >= 500:
        STATS["5xx"] += 1
    assert status < 500, (status, content[:500], raw[:500])
    if status != 200:
        assert not response.streaming
        text = content.decode()
        expected = {400: None, 403: WRONG_SECRET, 413: "Body is too large", 429: TOO_MANY_ATTEMPTS}
        assert status in expected, (status, text)
        if status == 400:
            assert text in (WRONG_BODY, WRONG_VERSION) or text.startswith("Too many commands"), text
        else:
            assert text == expected[status], (status, text)
        return status, text
    assert response["Content-Type"] == "application/json"  # streamed, or whole when there is nothing to stream
    answers = json.loads(content, parse_constant=_no_constants)
    check_answers(answers, command_ids(raw))
    return status, answers


SYNCED = {"tasks": Task, "notes": Note, "counters": Counter}


def subscriptions() -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in LoguxSubscription.objects.values()}


def new_or_refreshed(
    before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """The subscriptions `after` adds or refreshes (a new expiry) over `before`; None if any was
    forgotten or changed otherwise."""
    if set(before) - set(after):
        return None
    rows = []
    for pk, row in after.items():
        old = before.get(pk)
        if old == row:
            continue
        if old is not None and {**old, "expires_at": None} != {**row, "expires_at": None}:
            return None  # only a refresh of the expiry is tolerated
        rows.append(row)
    return rows


def only_placeholders(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]) -> bool:
    """Is every difference a remembered subscription to a row that does not exist (new, or refreshed)?

    The row channel remembers any authenticated node that subscribes to a missing row with
    `creating: true` (its client is about to create it); changes then reach the node only while its
    user may read the row. Tolerated by the no-change tests, and counted as `placeholder_subscriptions`.
    """
    rows = new_or_refreshed(before, after)
    if rows is None:
        return False
    for row in rows:
        model = SYNCED.get(row["plural"])
        if not row["row_id"] or row["filter"] != {} or model is None:
            return False
        if model._base_manager.filter(pk=row["row_id"]).exists():
            return False
    return True


def only_own_creations(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]], commands: list) -> bool:
    """Is every difference the editor's node subscribed to a task one of `commands` creates (new, or refreshed)?

    A create subscribes its author's node to the new row (its store subscribed with `creating: true`
    before the row existed)."""
    created = {
        str(c["action"].get("id"))
        for c in commands
        if isinstance(c.get("action"), dict) and c["action"].get("type") == "tasks/create"
    }
    rows = new_or_refreshed(before, after)
    return rows is not None and all(
        (row["plural"], row["user_id"], row["filter"]) == ("tasks", str(EDITOR), {}) and row["row_id"] in created
        for row in rows
    )


def post_unchanged(raw: bytes, sent: delivery.Captured, **extra: Any) -> tuple[int, Any]:
    """Post, and assert that no table changed and nothing was sent to Logux."""
    before, before_sent, subs = snapshot(), len(sent), subscriptions()
    result = post(raw, **extra)
    after = snapshot()
    label = LoguxSubscription._meta.label
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if set(changed) == {label} and only_placeholders(subs, subscriptions()):
        STATS["placeholder_subscriptions"] += 1
        changed = {}
    if changed or len(sent) != before_sent:
        STATS["db_changes"] += 1
        raise AssertionError(f"{raw[:300]!r} changed {changed} / sent {sent[before_sent:]}")
    return result


# ---- strategies ----------------------------------------------------------------------------------

# NaN and ±Infinity (Python's json writes and reads them) often enough to matter in `special`;
# the command strategies mostly use finite ones, so that most bodies get past the envelope.
finite = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -0.0, 4.0, 0.1])
special = st.sampled_from([math.nan, math.inf, -math.inf])
floats = st.floats() | special
long_strings = st.builds(
    lambda piece, n: piece * n,
    st.sampled_from(["x", "'", "é", "\ud800", "\x00", "1 OR 1=1 ", "/", ":", " "]),
    st.integers(200, 60_000),
)
hostile_text = st.sampled_from(SQLISH) | st.text(max_size=30) | long_strings


def json_of(numbers: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | numbers | st.text(max_size=20) | st.sampled_from(SQLISH)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=15,
    )


json_values = json_of(st.one_of(finite, finite, finite, special))
any_json = json_of(floats)

# Authors that may write nothing: no permission, inactive, missing, anonymous or not a user id at all.
hostile_users = st.sampled_from(
    [NOBODY, INACTIVE_ROOT, MISSING, "false", "", "0", "-1", "1e3", "٣", "0x10", "null", "undefined", *SQLISH]
) | st.text(max_size=12)
numbers = st.integers() | st.sampled_from(["", "x", "1e3", "١٢", "9" * 30, "-0", "1_0", "+1"])
tokens = st.text(max_size=8) | st.sampled_from(["c", "", "a b", "a:b", "\ud800"])


def meta_id(users: st.SearchStrategy[Any] = hostile_users) -> st.SearchStrategy[str]:
    valid = st.builds(
        lambda ms, user, client, tab, counter: f"{ms} {user}:{client}:{tab} {counter}",
        st.integers(0, 2**53),
        users,
        st.sampled_from(["c", "x1"]),
        st.sampled_from(["t", "tab"]),
        st.integers(0, 1000),
    )
    well_formed = st.builds(
        lambda ms, user, client, tab, counter: f"{ms} {user}:{client}:{tab} {counter}",
        numbers,
        users,
        tokens,
        tokens,
        numbers,
    )
    two_part = st.builds(lambda ms, user, client: f"{ms} {user}:{client} 0", numbers, users, tokens)
    broken = st.sampled_from(["", " ", "1", "1 2", "1 2 3 4", "a b c", "1  0", "1 :: 0", "1 : 0"]) | hostile_text
    return st.one_of(valid, valid, well_formed, two_part, broken)


meta_times = st.integers() | finite | special | st.sampled_from([0, -1, 10**20, "1", None, True, [], {}])
wire_ids = st.sampled_from(["t1", "t2", "n1", "1", "x1", 1, 0, -1, PROJECT]) | hostile_text | json_values
field_names = st.sampled_from(
    [
        *("title", "done", "project", "secret", "owner", "text", "pinned", "id", "pk", "logux_clocks", "value"),
        *("title__contains", "project__name", "owner__password", "project_id", "owner_id", "__proto__", *SQLISH),
    ]
) | st.text(max_size=10)
field_values = (
    st.sampled_from(
        [ANN, VIEWER, MISSING, PROJECT, str(ANN), str(PROJECT), True, False, "t", "f", "1", 10**30, -(2**63)]
    )
    | hostile_text
    | json_values
)
fields = st.dictionaries(field_names, field_values, max_size=4) | json_values
filters = st.dictionaries(field_names, field_values, max_size=3) | json_values
channels = (
    st.sampled_from(
        [
            *(
                "tasks",
                "notes",
                "counters",
                "tasks/t1",
                "tasks/t2",
                "notes/n1",
                "counters/1",
                f"projects/{PROJECT}/tasks",
            ),
            *("projects/1 OR 1=1/tasks", "tasks/../notes", "tasks/", "/tasks", "tasks/t1/", "tasks\n", "users/1", ""),
        ]
    )
    | st.builds(lambda p, s: p + s, st.sampled_from(["tasks/", "notes/", "counters/", "projects/"]), hostile_text)
    | st.builds(lambda s: f"projects/{s}/tasks", hostile_text)
    | hostile_text
    | json_values
)
since = st.fixed_dictionaries({}, optional={"id": meta_id(), "time": meta_times}) | json_values
action_types = st.sampled_from(
    [f"{p}/{k}" for p in ("tasks", "notes", "counters", "projects", "users") for k in ("create", "change", "delete")]
    + ["tasks/created", "tasks/changed", "logux/unsubscribe", "logux/undo", "logux/processed", "", "tasks"]
) | st.text(max_size=20)

edit_actions = st.fixed_dictionaries(
    {"type": action_types},
    optional={"id": wire_ids, "fields": fields, "reason": hostile_text, "channel": channels},
)
subscribe_actions = st.fixed_dictionaries(
    {"type": st.just("logux/subscribe")},
    optional={"channel": channels, "filter": filters, "since": since, "creating": st.booleans() | json_values},
)


def action_command(actions: st.SearchStrategy[Any], ids: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    meta = st.fixed_dictionaries({"id": ids}, optional={"time": meta_times, "subprotocol": hostile_text | json_values})
    return st.fixed_dictionaries(
        {"command": st.just("action"), "action": actions, "meta": meta},
        optional={"headers": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values},
    )


auth_commands = st.fixed_dictionaries(
    {"command": st.just("auth"), "authId": hostile_text},
    optional={
        "userId": hostile_users | st.sampled_from([ANN, EDITOR, VIEWER]) | json_values,
        "token": hostile_text | json_values,
        "subprotocol": st.sampled_from(["1.0.0", "1", "^1.0.0", "2.0.0", "1.0.0-", "v1", "1.0.0+x", ""]) | json_values,
        "cookie": st.dictionaries(st.sampled_from(["sessionid", "csrftoken"]) | st.text(max_size=8), json_values)
        | json_values,
        "headers": st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
    },
)
hostile_commands = st.one_of(
    action_command(edit_actions, meta_id()),
    action_command(subscribe_actions, meta_id()),
    auth_commands,
)


def envelope(commands: list[Any], **extra: Any) -> dict[str, Any]:
    return {"version": 4, "secret": "secret", "commands": commands, **extra}


# Valid commands by authors who may not write; every field of them is then given a wrong value.
def _cmd(action: dict[str, Any], user: Any = NOBODY) -> dict[str, Any]:
    return {"command": "action", "action": action, "meta": {"id": f"1000 {user}:c:t 0", "time": 1000}, "headers": {}}


TEMPLATES: list[dict[str, Any]] = [
    {
        "command": "auth",
        "authId": "a1",
        "userId": str(ANN),
        "token": "t",
        "subprotocol": "1.0.0",
        "cookie": {"sessionid": "x"},
        "headers": {},
    },
    _cmd({"type": "tasks/create", "id": "x1", "fields": {"title": "new", "done": False, "project": PROJECT}}),
    _cmd({"type": "tasks/change", "id": "t1", "fields": {"title": "changed"}}, user=INACTIVE_ROOT),
    _cmd({"type": "tasks/delete", "id": "t1"}, user="false"),
    _cmd({"type": "notes/create", "id": "n2", "fields": {"text": "x", "owner": ANN}}),
    _cmd({"type": "notes/change", "id": "n1", "fields": {"text": "mine now"}}),
    _cmd({"type": "notes/delete", "id": "n1"}, user=MISSING),
    _cmd({"type": "counters/create", "id": 2, "fields": {"value": 5}}),
    _cmd(
        {
            "type": "logux/subscribe",
            "channel": "tasks",
            "filter": {"done": False},
            "since": {"id": "1 a:b 0", "time": 1},
        }
    ),
    _cmd({"type": "logux/subscribe", "channel": "notes", "filter": {"owner": ANN}}),
    _cmd({"type": "logux/subscribe", "channel": "tasks/t1", "creating": True}),
    _cmd({"type": "logux/subscribe", "channel": f"projects/{PROJECT}/tasks"}),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


DELETE = object()


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope of hostile-author commands with one field given a wrong value (or removed)."""
    commands = draw(st.lists(st.sampled_from(TEMPLATES), min_size=1, max_size=3).map(copy.deepcopy))
    data = envelope(commands)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        value = draw(st.just(DELETE) | any_json | hostile_text)
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return data


RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1E999", "1e-400", "9" * 4000, "9" * 5000, "-0", "4.0", "4e0"]
MARKER = "\ue000marker\ue000"


@fuzz()
@given(data=st.data(), commands=st.lists(st.sampled_from(TEMPLATES), min_size=1, max_size=2).map(copy.deepcopy))
def test_number_edge_cases(world: None, sent: delivery.Captured, data: st.DataObject, commands: list) -> None:
    """Numbers JavaScript never writes (NaN, Infinity, 1e400, 5000 digits) in any field, as raw text."""
    body = envelope(commands)
    paths = list(_paths(body))
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
        parent: Any = body
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = MARKER
        except (KeyError, IndexError, TypeError):  # an earlier replacement removed this path
            continue
    raw = json.dumps(body)
    while MARKER in raw:
        raw = raw.replace(json.dumps(MARKER), data.draw(st.sampled_from(RAW_NUMBERS)), 1)
    post_unchanged(raw.encode(), sent)


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# ---- the fuzz tests ------------------------------------------------------------------------------


@fuzz()
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes(world: None, sent: delivery.Captured, raw: bytes) -> None:
    post_unchanged(raw, sent)


@fuzz()
@given(data=st.data(), source=st.sampled_from(TEMPLATES))
def test_malformed_json(world: None, sent: delivery.Captured, data: st.DataObject, source: dict) -> None:
    """A valid body cut short, with bytes flipped, or with JSON-like junk spliced in."""
    raw = bytearray(encode(envelope([source])))
    cut = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.sampled_from([b"", b"NaN", b"Infinity", b"-Infinity", b"1e400", b"\xff", b"\x00", b"}", b",]"]))
    raw = raw[:cut] + junk + raw[cut + data.draw(st.integers(0, 3)) :]
    post_unchanged(bytes(raw), sent)


@fuzz()
@given(value=any_json, wrap=st.booleans())
def test_arbitrary_json(world: None, sent: delivery.Captured, value: Any, wrap: bool) -> None:
    """Any JSON value as the body, or as the command list of a correct envelope."""
    post_unchanged(encode(envelope(value) if wrap else value), sent)


@fuzz()
@given(body=mutated_bodies())
def test_wrong_types_in_every_field(world: None, sent: delivery.Captured, body: dict) -> None:
    post_unchanged(encode(body), sent)


@fuzz()
@given(
    commands=st.lists(hostile_commands, max_size=4),
    version=st.sampled_from([4, 4.0]) | st.sampled_from([4.5, "4", 3, 5, 0, -4, 2**64, True]) | floats | json_values,
    secret=st.sampled_from(["secret"] * 4 + ["Secret", "secret\x00", "\ud800", ""]) | json_values,
)
@example(commands=[], version=math.nan, secret="secret")  # int(NaN) was a 500
@example(commands=[], version=math.inf, secret="secret")  # int(inf) was a 500
@example(commands=[], version=4, secret="\ud800")  # a lone surrogate could not be encoded: a 500
@example(  # a user without permission is remembered for a missing row it subscribes to "creating"
    commands=[_cmd({"type": "logux/subscribe", "channel": "tasks/zzz", "creating": True})],
    version=4,
    secret="secret",
)
def test_hostile_commands(world: None, sent: delivery.Captured, commands: list, version: Any, secret: Any) -> None:
    """Unknown commands, bad and forged meta ids, unlisted filter fields, SQL-looking strings, NaN."""
    post_unchanged(encode(envelope(commands, version=version, secret=secret)), sent)


@fuzz(examples=40)
@given(
    depth=st.integers(1, 200_000)
    | st.sampled_from([100_000, MAX_DEPTH - 5, MAX_DEPTH - 4, MAX_DEPTH, MAX_DEPTH + 1, 999, 1000, 1001, 5000, 10_000]),
    kind=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["body", "commands", "cookie", "fields", "filter", "meta", "headers", "id"]),
)
@example(depth=MAX_DEPTH - 5, kind="dict", where="fields")  # the fields nest 5 deep: MAX_DEPTH in all
@example(depth=MAX_DEPTH - 4, kind="list", where="fields")  # one more
@example(depth=5000, kind="dict", where="cookie")  # Python 3.13 decodes it, 3.11 does not
def test_deep_nesting(world: None, sent: delivery.Captured, depth: int, kind: str, where: str) -> None:
    """Deeper than MAX_DEPTH a body is a wrong body on every Python (whose own json limit is about 1,000
    levels on 3.11 and 10,000 on 3.13); up to it, the body gets the answer its envelope calls for."""
    deep = nested(depth, kind)
    templates = {
        "body": "{}",
        "commands": '{"version":4,"secret":"secret","commands":{}}',
        "cookie": '{"version":4,"secret":"secret","commands":[{"command":"auth","authId":"a","userId":"1",'
        '"subprotocol":"1.0.0","cookie":{"sessionid":{}}}]}',
        "fields": '{"version":4,"secret":"secret","commands":[{"command":"action","action":{"type":"tasks/create",'
        f'"id":"d","fields":{{"title":{{}}}}}},"meta":{{"id":"1 {NOBODY}:c:t 0","time":1}}}}]}}',
        "filter": '{"version":4,"secret":"secret","commands":[{"command":"action","action":{"type":"logux/subscribe",'
        f'"channel":"notes","filter":{{}}}},"meta":{{"id":"1 {NOBODY}:c:t 0","time":1}}}}]}}',
        "meta": '{"version":4,"secret":"secret","commands":[{"command":"action","action":{"type":"tasks/delete",'
        f'"id":"t1"}},"meta":{{"id":"1 {NOBODY}:c:t 0","time":1,"x":{{}}}}}}]}}',
        "headers": '{"version":4,"secret":"secret","commands":[{"command":"action","action":{"type":"tasks/delete",'
        f'"id":"t1"}},"meta":{{"id":"1 {NOBODY}:c:t 0"}},"headers":{{}}}}]}}',
        "id": '{"version":4,"secret":"secret","commands":[{"command":"action","action":{"type":"tasks/delete",'
        f'"id":{{}}}},"meta":{{"id":"1 {NOBODY}:c:t 0"}}}}]}}',
    }
    head, tail = templates[where].rsplit("{}", 1)  # the nesting replaces the last `{}`
    raw = head + deep + tail
    status, answer = post_unchanged(raw.encode(), sent)
    outer = head.count("{") + head.count("[") - head.count("}") - head.count("]")  # no brackets in its strings
    not_an_envelope = where == "body" or (where == "commands" and deep != "[]")
    if len(raw) > logux_settings.MAX_BODY_SIZE:
        assert status == 413
    elif outer + depth > MAX_DEPTH or not_an_envelope:
        assert (status, answer) == (400, WRONG_BODY)
    else:
        assert status == 200


@fuzz(examples=15)
@given(
    extra=st.integers(1, 50_000),
    at=st.sampled_from(["secret", "token", "title", "padding"]),
)
def test_huge_bodies(world: None, sent: delivery.Captured, extra: int, at: str) -> None:
    limit = logux_settings.MAX_BODY_SIZE
    command = copy.deepcopy(TEMPLATES[0] if at == "token" else TEMPLATES[1])
    data = envelope([command])
    pad = "x" * (limit + extra)
    if at == "secret":
        data["secret"] = pad
    elif at == "token":
        command["token"] = pad
    elif at == "title":
        command["action"]["fields"]["title"] = pad
    else:
        data["padding"] = pad
    status, text = post_unchanged(encode(data), sent)
    assert (status, text) == (413, "Body is too large")


@fuzz(examples=60)
@given(
    length=st.sampled_from(["0", "-1", "abc", "", "1e3", "99999999999999999999999", str(2**64)]),
    source=st.sampled_from(TEMPLATES),
)
def test_lying_content_length(world: None, sent: delivery.Captured, length: str, source: dict) -> None:
    post_unchanged(encode(envelope([source])), sent, CONTENT_LENGTH=length)


@fuzz()
@given(commands=st.lists(action_command(subscribe_actions, meta_id(st.just(VIEWER))), min_size=1, max_size=3))
@example(  # the undo answer echoed the action, and Infinity broke the JSON stream
    commands=[
        {
            "command": "action",
            "action": {"type": "logux/subscribe", "channel": "tasks/0", "since": {"time": math.inf}},
            "meta": {"id": f"0 {VIEWER}:c 0"},
        }
    ]
)
def test_reader_with_hostile_subscriptions(world: None, sent: delivery.Captured, commands: list) -> None:
    """A user who may read tasks subscribes with hostile channels and filters: rows stay as they were,
    and only subscriptions on synced fields, that this user may hold, are remembered."""
    before, before_sent = snapshot(), len(sent)
    post(encode(envelope(commands)))
    after = snapshot()
    assert sent[before_sent:] == []  # reading sends nothing
    # What a subscribe remembers: the subscription, and the filter shape its lists are looked up by.
    remembered = {LoguxSubscription._meta.label, LoguxFilterShape._meta.label}
    if {k: v for k, v in after.items() if k not in remembered} != {
        k: v for k, v in before.items() if k not in remembered
    }:
        STATS["db_changes"] += 1
        raise AssertionError("a subscribe changed rows other than the remembered subscriptions")
    assert LoguxFilterShape.objects.count() <= 2 ** len(Task.logux_options.fields) + 2 ** len(Note.logux_options.fields)
    for row in LoguxSubscription.objects.all():
        if row.row_id and row.plural in SYNCED and row.user_id == str(VIEWER) and row.filter == {}:
            continue  # a row channel: changes reach it only while the viewer may read the row
        synced = Task.logux_options.fields if row.plural == "tasks" else Note.logux_options.fields
        if row.plural not in ("tasks", "notes") or row.user_id != str(VIEWER) or not set(row.filter) <= set(synced):
            STATS["db_changes"] += 1
            raise AssertionError(f"remembered a subscription it should not: {row.plural} {row.filter}")
        if row.plural == "notes" and row.filter.get("owner") != VIEWER:
            STATS["db_changes"] += 1
            raise AssertionError(f"remembered another owner's notes for the viewer: {row.filter}")


editor_actions = st.fixed_dictionaries(
    {"type": st.sampled_from(["tasks/create", "tasks/change", "tasks/delete"])},
    optional={"id": wire_ids, "fields": fields},
)


@fuzz()
@given(commands=st.lists(action_command(editor_actions, meta_id(st.just(EDITOR))), min_size=1, max_size=3))
def test_editor_with_hostile_values(world: None, sent: delivery.Captured, commands: list) -> None:
    """A user who may write tasks sends hostile ids and values: only synced task fields may change."""
    secrets = dict(Task.objects.values_list("pk", "secret"))
    untouched = [Note, Project, Counter, AuthUser]
    before, subs = {m: list(m._base_manager.order_by("pk").values()) for m in untouched}, subscriptions()
    post(encode(envelope(commands)))
    after = {m: list(m._base_manager.order_by("pk").values()) for m in untouched}
    now = dict(Task.objects.values_list("pk", "secret"))
    # A row deleted and created again in one body starts with an empty secret; no edit may set one.
    secret_set = any(secret not in (secrets.get(pk, ""), "") for pk, secret in now.items())
    if after != before or secret_set or not only_own_creations(subs, subscriptions(), commands):
        STATS["db_changes"] += 1
        raise AssertionError(f"{commands!r} changed more than synced task fields")
    for task in Task.objects.all():
        assert len(task.id) <= 36 and len(task.title) <= 100
        assert all(isinstance(c, list) and math.isfinite(c[0]) for c in task.logux_clocks.values())


# ---- limits, without hypothesis ------------------------------------------------------------------


def _limits(**values: Any) -> Any:
    return override_settings(LOGUX_SYNC={"SECRET": "secret", **values})


def test_max_commands_limit(world: None, sent: delivery.Captured) -> None:
    command = _cmd({"type": "tasks/delete", "id": "t1"})
    with _limits(MAX_COMMANDS=3):
        status, answers = post_unchanged(encode(envelope([command] * 3)), sent)
        # Nobody may not read t1: the delete is answered as for a row that does not exist, and deletes nothing.
        assert status == 200 and [a["answer"] for a in answers] == ["approved", "processed"] * 3
        status, text = post_unchanged(encode(envelope([command] * 4)), sent)
        assert (status, text) == (400, "Too many commands (at most 3)")
    assert post(encode(envelope([command] * 100)))[0] == 200  # the default is 100
    assert post(encode(envelope([command] * 101)))[0] == 400


def test_max_body_size_limit(world: None, sent: delivery.Captured) -> None:
    def sized(size: int) -> bytes:
        raw = encode(envelope([], padding=""))
        padded = encode(envelope([], padding="x" * (size - len(raw))))
        assert len(padded) == size
        return padded

    with _limits(MAX_BODY_SIZE=2000):
        assert post_unchanged(sized(2000), sent) == (200, [])
        assert post_unchanged(sized(2001), sent) == (413, "Body is too large")
        assert post_unchanged(sized(2001), sent, CONTENT_LENGTH="10") == (400, WRONG_BODY)  # read no more than told
    limit = logux_settings.MAX_BODY_SIZE
    assert limit == 1024 * 1024
    assert post(sized(limit))[0] == 200
    assert post(sized(limit + 1)) == (413, "Body is too large")
