from __future__ import annotations

import json

import pytest

from logux_sync.protocol import (
    MAX_DEPTH,
    ActionCommandData,
    AuthCommand,
    BadCommand,
    Meta,
    MetaId,
    ProtocolError,
    dumps,
    is_first_older,
    normalize_resend,
    parse_body,
    parse_command,
)


def meta(id: str, time: float) -> Meta:
    return Meta({"id": id, "time": time})


def test_meta_id_parts() -> None:
    m = meta("1564508138460 380:R7BNGAP5:px3-J3oc 7", 5)
    assert m.user_id == "380"
    assert m.client_id == "380:R7BNGAP5"
    assert m.node_id == "380:R7BNGAP5:px3-J3oc"
    assert m.parsed_id.counter == 7
    assert m.parsed_id.ms == 1564508138460
    assert m.time == 5


def test_meta_id_without_user_part() -> None:
    parsed = MetaId.parse("1 server 0")
    assert parsed.user_id is None
    assert parsed.client_id == "server"


@pytest.mark.parametrize("bad", ["", "1 2", "x 10:a 0", "1 10:a y", "1  0", 5, None])
def test_bad_meta_ids(bad: object) -> None:
    with pytest.raises(ProtocolError):
        MetaId.parse(bad)  # type: ignore[arg-type]


def test_order_by_time_first() -> None:
    assert is_first_older(meta("9 b:1:1 9", 1), meta("1 a:1:1 0", 2))
    assert not is_first_older(meta("1 a:1:1 0", 2), meta("9 b:1:1 9", 1))


def test_order_by_node_as_string() -> None:
    assert is_first_older(meta("1 10:a:a 0", 1), meta("1 9:a:a 0", 1))  # "10" < "9" as strings


def test_order_by_counter_as_number() -> None:
    # Whole-id string comparison would call counter 10 older than counter 9.
    assert is_first_older(meta("1 a:a:a 9", 1), meta("1 a:a:a 10", 1))
    assert not is_first_older(meta("1 a:a:a 10", 1), meta("1 a:a:a 9", 1))


def test_order_by_id_ms_last() -> None:
    assert is_first_older(meta("1 a:a:a 0", 5), meta("2 a:a:a 0", 5))


def test_missing_meta_is_older() -> None:
    m = meta("1 a:a:a 0", 1)
    assert is_first_older(None, m)
    assert not is_first_older(m, None)
    assert not is_first_older(None, None)


def test_equal_meta_is_not_older() -> None:
    assert not is_first_older(meta("1 a:a:a 0", 1), meta("1 a:a:a 0", 1))


def test_string_ids_compare_by_their_time() -> None:
    assert is_first_older("1 a:a:a 0", "2 a:a:a 0")


def test_meta_round_trips_through_json() -> None:
    m = meta("1 10:a:b 0", 3)
    assert Meta(m.get_json()) == m
    assert Meta(json.loads(m.get_json())).is_older(meta("1 10:a:b 1", 3))


def test_dumps_sorts_keys_at_every_level() -> None:
    assert dumps({"type": "x", "payload": {"userId": "1", "name": "n"}}) == (
        '{"payload":{"name":"n","userId":"1"},"type":"x"}'
    )


def test_dumps_writes_what_a_json_encoder_with_its_settings_writes() -> None:
    import datetime
    import decimal

    from logux_sync.protocol import _default

    encoder = json.JSONEncoder(default=_default, sort_keys=True, separators=(",", ":"), allow_nan=False)
    value = {
        "z": [1, 2.5, -0.0, 1e300, 2**70, True, None, "é\u2028\ud800", ("t",)],
        "a": {"when": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), "d": decimal.Decimal("1.5")},
    }
    assert dumps(value) == encoder.encode(value)
    assert dumps("x") == '"x"'


def test_dumps_rejects_nan() -> None:
    with pytest.raises(ValueError):
        dumps({"a": float("nan")})


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"{",
        b'{"version":4,"secret":"s"}',
        b'{"version":"4","secret":"s","commands":[]}',
        b'{"version":4,"secret":1,"commands":[]}',
        b'{"version":4,"secret":"s","commands":[1]}',
        b'{"version":true,"secret":"s","commands":[]}',
        b"\xff\xfe",
    ],
)
def test_wrong_bodies(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="Wrong body"):
        parse_body(raw)


def test_deep_body_is_a_wrong_body_not_a_crash() -> None:
    with pytest.raises(ProtocolError):
        parse_body(b"[" * 100_000 + b"]" * 100_000)


def body_nesting(depth: int, value: str = "1") -> bytes:
    """An envelope whose one command nests `depth` levels in all (the envelope and command are 2)."""
    inner = "[" * (depth - 3) + value + "]" * (depth - 3)
    return f'{{"version":4,"secret":"s","commands":[{{"x":{inner}}}]}}'.encode()


def test_nesting_limit_is_the_same_on_every_python() -> None:
    assert parse_body(body_nesting(MAX_DEPTH)).commands  # Python 3.11 decodes it inside a view as well
    with pytest.raises(ProtocolError, match="Wrong body"):
        parse_body(body_nesting(MAX_DEPTH + 1))  # Python 3.13 would decode it: refused all the same
    # Brackets inside strings (escaped quotes too) do not nest.
    assert parse_body(body_nesting(MAX_DEPTH, json.dumps('\\" [[{{' * MAX_DEPTH))).commands
    # A string left open ends the body (no JSON), once: not a scan from every later quote (quadratic).
    with pytest.raises(ProtocolError, match="Wrong body"):
        parse_body(b'{"version":4,"secret":"' + b'\\"' * 300_000 + b"[" * (MAX_DEPTH + 1))


def test_parse_auth_and_action() -> None:
    auth = parse_command({"command": "auth", "authId": "a", "userId": 10, "subprotocol": "1.0.0"})
    assert isinstance(auth, AuthCommand) and auth.user_id == "10" and auth.cookie == {}
    action = parse_command({"command": "action", "action": {"type": "x"}, "meta": {"id": "1 1:a:b 0", "time": 1}})
    assert isinstance(action, ActionCommandData) and not action.is_subscribe


def test_command_with_id_but_bad_fields_becomes_an_error() -> None:
    bad = parse_command({"command": "action", "action": {"type": 5}, "meta": {"id": "1 1:a:b 0", "time": 1}})
    assert isinstance(bad, BadCommand) and bad.value == "1 1:a:b 0"
    bad_auth = parse_command({"command": "auth", "authId": "a", "userId": None})
    assert isinstance(bad_auth, BadCommand) and bad_auth.key == "authId"


@pytest.mark.parametrize(
    "raw", [{"command": "nope"}, {"command": "auth"}, {"command": "action", "meta": {}}, {"command": "action"}]
)
def test_command_without_id_is_rejected(raw: dict) -> None:
    with pytest.raises(ProtocolError):
        parse_command(raw)


def test_normalize_resend() -> None:
    assert normalize_resend(None) == {}
    assert normalize_resend(["users/1"]) == {"channels": ["users/1"]}
    assert normalize_resend({"channel": "a", "users": ["1"]}) == {"channels": ["a"], "users": ["1"]}
    with pytest.raises(ValueError):
        normalize_resend({"everyone": True})
