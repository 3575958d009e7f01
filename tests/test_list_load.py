"""A list load writes each row's answers as JSON text (RowEncoder); they must say exactly what the
generic `snapshot_values()` path says, whatever the row's clocks, `since` and value types."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest

from logux_sync.encoded import AnswerWriter, EncodedPair, EncodedPairs, join
from logux_sync.protocol import dumps
from logux_sync.sync.commands import RowEncoder, snapshot_values
from tests.test_app.models import Task

OLD = [1_700_000_000_000, "1700000000000 10:c:t 0"]
NEW = [1_700_000_000_500, "1700000000500 11:d:t 3"]
NEWEST = [1_700_000_000_900.5, "1700000000900 server:x 7"]

CLOCKS: list[tuple[str, Any]] = [
    ("one clock", {"title": OLD, "done": OLD, "project": OLD}),
    ("one clock for every field", {"*": OLD}),
    ("every field's and one of its own", {"*": OLD, "done": NEW}),
    ("every field's, all overridden", {"*": NEWEST, "title": OLD, "done": NEW, "project": OLD}),
    ("two clocks", {"title": OLD, "done": NEW, "project": OLD}),
    ("three clocks", {"title": NEWEST, "done": NEW, "project": OLD}),
    ("no clocks", {}),
    ("a broken clock", {"title": "garbage", "done": OLD, "project": OLD}),
    ("a clock without a Logux id", {"title": [5, "x"], "done": [5, "x"], "project": [5, "x"]}),
]
VALUES: list[list[Any]] = [
    ["plain", True, 3],
    ['quote " and ünïcode \ud83d\ude00', False, None],
    [datetime.datetime(2026, 11, 25, 20, 0, tzinfo=datetime.UTC), decimal.Decimal("1.50"), uuid.UUID(int=7)],
]


def decoded_dict_path(wire_id: str, values: list[Any], clocks: Any, since: float | None) -> list[Any]:
    opts = Task.logux_options
    pairs = [({"type": "logux/subscribed", "channel": opts.row_channel(wire_id)}, {})]
    pairs += snapshot_values(opts, wire_id, values, clocks, since, as_created=True)
    return json.loads(dumps([[action, {**meta, "nodes": ["1:c:t"]}] for action, meta in pairs]))


def decoded_encoded_path(wire_id: str, values: list[Any], clocks: Any, since: float | None) -> list[Any]:
    write = AnswerWriter("9 1:c:t 0", "1:c:t")
    items = RowEncoder(Task.logux_options, mark_subscribed=True)(wire_id, values, clocks, since)
    answers = json.loads("[" + join([write.many(EncodedPairs(items))]) + "]") if items else []
    assert all(type(action) is str and type(meta) is str for action, meta in items)
    assert {(a["answer"], a["id"]) for a in answers} == {("action", "9 1:c:t 0")}
    return [[a["action"], a["meta"]] for a in answers]


def without_derived_ids(pairs: list[Any]) -> list[Any]:
    """Derived ids are fresh each time (a nonce); their node and counter must be the clock's."""
    out = []
    for action, meta in pairs:
        meta = dict(meta)
        if "id" in meta:
            ms, node, counter = meta.pop("id").split(" ")
            assert int(ms) >= 10**13
            meta["id_tail"] = (node, counter)
        out.append([action, meta])
    return out


@pytest.mark.parametrize("since", [None, 1_700_000_000_400, 1_700_000_001_000])
@pytest.mark.parametrize("values", VALUES, ids=["plain", "escaped", "converted"])
@pytest.mark.parametrize(("name", "clocks"), CLOCKS, ids=[name for name, _ in CLOCKS])
def test_encoded_row_says_what_the_dict_path_says(name: str, clocks: Any, values: list[Any], since: Any) -> None:
    wire_id = 'row "1" ✓'
    expected = without_derived_ids(decoded_dict_path(wire_id, values, clocks, since))
    assert without_derived_ids(decoded_encoded_path(wire_id, values, clocks, since)) == expected


def test_join_mixes_encoded_and_plain_answers() -> None:
    write = AnswerWriter("1 1:c:t 0", "1:c:t")
    text = join([{"answer": "approved", "id": "1 1:c:t 0"}, write(EncodedPair('{"type":"a"}', '"time":1,'))])
    assert json.loads("[" + text + "]") == [
        {"answer": "approved", "id": "1 1:c:t 0"},
        {"answer": "action", "id": "1 1:c:t 0", "action": {"type": "a"}, "meta": {"time": 1, "nodes": ["1:c:t"]}},
    ]


def test_the_every_field_clock_counts_for_fields_without_their_own() -> None:
    from logux_sync.sync.commands import clock_groups

    fields, values, clocks = ("title", "done", "project"), ["a", True, None], {"*": OLD, "done": NEW}
    created, changed = clock_groups(fields, values, clocks, since=None, as_created=True)
    assert created == tuple(OLD) and changed == [(tuple(NEW), {"done": True})]
    assert clock_groups(fields, values, clocks, since=OLD[0] + 1, as_created=True) == (
        None,
        [(tuple(NEW), {"done": True})],
    )


@pytest.mark.parametrize("values", [*VALUES, ["", 0, -(2**70)], ["\x00\n\u2028 é", True, 1.5], [{"a": [1]}, None, "x"]])
def test_the_fields_object_is_written_as_dumps_writes_it(values: list[Any]) -> None:
    expected = dumps(dict(zip(Task.logux_options.fields, values, strict=True)))
    assert RowEncoder(Task.logux_options, mark_subscribed=False).fields_json(values) == expected
