"""Logux back-end protocol v4: body parsing, meta ids and ordering, answer objects.

Plain Python: no Django ORM, no HTTP. The view and the client build on it.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

PROTOCOL_VERSION = 4

Action = dict[str, Any]
RawMeta = dict[str, Any]

# Exact bodies `@logux/backend-test` and the Logux server expect.
WRONG_BODY = "Wrong body"
WRONG_VERSION = "Back-end protocol version is not supported"
WRONG_SECRET = "Wrong secret"
TOO_MANY_ATTEMPTS = "Too many wrong secret attempts"

RESEND_KEYS = ("channels", "users", "clients", "nodes")


class ProtocolError(ValueError):
    """A body or command that does not follow back-end protocol v4."""


def _default(value: Any) -> Any:
    # The same conventions as Django's JSON encoder, without importing its ORM-bound module.
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        if value.microsecond:
            text = text[:23] + text[26:]
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(default=_default, sort_keys=True, separators=(",", ":"), allow_nan=False)


# Serialize for the wire: sorted keys, because Logux compares actions as JSON strings.
dumps = _ENCODER.encode


def _utf16(text: str) -> bytes:
    # JavaScript compares strings by UTF-16 code units; big-endian bytes sort the same way.
    return text.encode("utf-16-be", "surrogatepass")


@dataclass(frozen=True)
class MetaId:
    """A parsed `meta.id`: `"<ms> <node id> <counter>"`."""

    ms: int
    node_id: str
    counter: int

    @classmethod
    def parse(cls, raw: str) -> MetaId:
        """Parse an id; raise ProtocolError when it has not three well-formed parts."""
        if not isinstance(raw, str):
            raise ProtocolError("meta.id must be a string")
        parts = raw.split(" ")
        if len(parts) != 3 or not parts[1]:
            raise ProtocolError(f"meta.id {raw!r} is not '<time> <node> <counter>'")
        try:
            ms, counter = int(parts[0]), int(parts[2])
        except ValueError:
            raise ProtocolError(f"meta.id {raw!r} has a non-numeric time or counter") from None
        return cls(ms, parts[1], counter)

    @property
    def user_id(self) -> str | None:
        """The user part of the node id, or None for a node id without one."""
        parts = self.node_id.split(":")
        return parts[0] if len(parts) > 1 else None

    @property
    def client_id(self) -> str:
        """`user:client` (the node id itself when it has no user part)."""
        parts = self.node_id.split(":")
        return ":".join(parts[:2]) if len(parts) > 1 else self.node_id

    def __str__(self) -> str:
        return f"{self.ms} {self.node_id} {self.counter}"


class Meta:
    """A Logux action's meta with parsed id parts and Logux's ordering."""

    __slots__ = ("_raw", "parsed_id", "time")

    def __init__(self, raw: Mapping[str, Any] | str):
        if type(raw) is not dict:  # a parsed body's meta is a dict: skip the slower ABC check
            if isinstance(raw, str):
                raw = json.loads(raw)
            if not isinstance(raw, Mapping):
                raise ProtocolError("meta must be an object")
        self._raw: RawMeta = dict(raw)
        self.parsed_id = MetaId.parse(self._raw.get("id"))  # type: ignore[arg-type]
        time = self._raw.get("time", self.parsed_id.ms)
        if isinstance(time, bool) or not isinstance(time, (int, float)):
            raise ProtocolError("meta.time must be a number")
        self.time: float = time

    @property
    def id(self) -> str:
        """The action id, `"<ms> <node id> <counter>"`."""
        return self._raw["id"]  # type: ignore[no-any-return]

    @property
    def node_id(self) -> str:
        """`user:client:tab` (or whatever node sent the action)."""
        return self.parsed_id.node_id

    node = node_id

    @property
    def client_id(self) -> str:
        """`user:client`."""
        return self.parsed_id.client_id

    @property
    def user_id(self) -> str | None:
        """The author's user id as the client gave it (`"false"` for anonymous)."""
        return self.parsed_id.user_id

    @property
    def subprotocol(self) -> str | None:
        """The author's subprotocol, when the Logux server passed it."""
        return self._raw.get("subprotocol")

    def get(self, key: str, default: Any = None) -> Any:
        """A raw meta key."""
        return self._raw.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def get_json(self) -> str:
        """The raw meta as JSON (store it, and rebuild with `Meta(json)`)."""
        return dumps(self._raw)

    def is_older(self, other: Meta | Mapping[str, Any] | None) -> bool:
        """True when this meta is older than `other` in Logux's `isFirstOlder` order."""
        return is_first_older(self, other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Meta) and self.id == other.id and self.time == other.time

    def __hash__(self) -> int:
        return hash((self.id, self.time))

    def __lt__(self, other: Meta) -> bool:
        return is_first_older(self, other)

    def __repr__(self) -> str:
        return f"Meta({self._raw!r})"


def _as_meta(value: Meta | Mapping[str, Any] | str | None) -> Meta | None:
    if value is None or isinstance(value, Meta):
        return value
    if isinstance(value, str):
        return Meta({"id": value, "time": int(value.split(" ", 1)[0])})
    return Meta(value) if value else None


def is_first_older(first: Meta | Mapping[str, Any] | str | None, second: Meta | Mapping[str, Any] | str | None) -> bool:
    """Logux's `isFirstOlder`: time, then node id as a string, then counter as a number, then id ms."""
    a, b = _as_meta(first), _as_meta(second)
    if a is not None and b is None:
        return False
    if a is None:
        return b is not None
    assert b is not None
    if a.time != b.time:
        return a.time < b.time
    a_node, b_node = _utf16(a.node_id), _utf16(b.node_id)
    if a_node != b_node:
        return a_node < b_node
    if a.parsed_id.counter != b.parsed_id.counter:
        return a.parsed_id.counter < b.parsed_id.counter
    return a.parsed_id.ms < b.parsed_id.ms


# ---- requests from the Logux server -------------------------------------------------------


@dataclass
class AuthCommand:
    """An `auth` command."""

    auth_id: str
    user_id: str
    token: str | None
    subprotocol: str | None
    cookie: dict[str, str] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionCommandData:
    """An `action` command: the action, its meta and the client's headers."""

    action: Action
    meta: Meta
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def is_subscribe(self) -> bool:
        return self.action.get("type") == "logux/subscribe"


@dataclass
class BadCommand:
    """A command we cannot run; answered with `error` under the id we could read."""

    key: str
    value: str
    details: str


Command = AuthCommand | ActionCommandData | BadCommand


def _dict_or_empty(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be an object")
    return value


def parse_command(raw: Any) -> Command:
    """Turn one raw command into a typed command; raise ProtocolError when it has no usable id."""
    if not isinstance(raw, dict):
        raise ProtocolError("command must be an object")
    kind = raw.get("command")
    if kind == "auth":
        auth_id = raw.get("authId")
        if not isinstance(auth_id, str):
            raise ProtocolError("auth command needs a string authId")
        try:
            user_id = raw.get("userId")
            if isinstance(user_id, (int, float)) and not isinstance(user_id, bool):
                user_id = str(user_id)
            if not isinstance(user_id, str):
                raise ProtocolError("userId must be a string")
            token = raw.get("token")
            if token is not None and not isinstance(token, str):
                raise ProtocolError("token must be a string")
            subprotocol = raw.get("subprotocol")
            if subprotocol is not None and not isinstance(subprotocol, (str, int)):
                raise ProtocolError("subprotocol must be a string")
            cookie = _dict_or_empty(raw.get("cookie"), "cookie")
            headers = _dict_or_empty(raw.get("headers"), "headers")
        except ProtocolError as exc:
            return BadCommand("authId", auth_id, str(exc))
        return AuthCommand(
            auth_id=auth_id,
            user_id=user_id,
            token=token,
            subprotocol=None if subprotocol is None else str(subprotocol),
            cookie={str(k): str(v) for k, v in cookie.items()},
            headers=headers,
        )
    if kind == "action":
        raw_meta = raw.get("meta")
        if not isinstance(raw_meta, dict) or not isinstance(raw_meta.get("id"), str):
            raise ProtocolError("action command needs meta with a string id")
        meta_id = raw_meta["id"]
        try:
            meta = Meta(raw_meta)
            action = raw.get("action")
            if not isinstance(action, dict) or not isinstance(action.get("type"), str):
                raise ProtocolError("action must be an object with a string type")
            headers = _dict_or_empty(raw.get("headers"), "headers")
        except ProtocolError as exc:
            return BadCommand("id", meta_id, str(exc))
        return ActionCommandData(action=action, meta=meta, headers=headers)
    raise ProtocolError(f"unknown command {kind!r}")


@dataclass
class Body:
    """A validated request body."""

    version: int
    secret: str
    commands: list[Any]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Python's json reads NaN, Infinity and 1e400, which JSON.stringify never writes and which cannot be
# written back in an answer (a handler may echo the action): refuse them. Made once: json.loads() with
# these arguments would build a decoder for every body.
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_not_json)

# How deep a body may nest. The Logux server sends nothing near it; Python's own limit depends on its
# version and the stack (json decodes about 1,000 levels on 3.11, 1,500 on 3.12, 10,000 on 3.13), so
# a body deeper than this is a wrong body on every Python, and what is decoded stays well inside all.
MAX_DEPTH = 512
# A JSON string; one left open runs to the end (the body is no JSON then), so that each quote is
# scanned once: retrying from every later quote would take quadratic time on `"\"\"\"...[[[`.
_STRING = re.compile(r'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON text opens more than `limit` arrays and objects inside each other."""
    if text.count("[") + text.count("{") <= limit:
        return False  # too few brackets to nest that deep: no scan
    # Strings out first (brackets in them do not nest), then all but the brackets; the depth after each
    # bracket is a running sum, all of it in C.
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def parse_body(raw: bytes) -> Body:
    """Validate the envelope; raise ProtocolError(WRONG_BODY) for anything that is not one."""
    try:
        # What json.loads() does with bytes: UTF-8, -16 or -32 by the first bytes; lone surrogates kept.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        if _nests_deeper_than(text, MAX_DEPTH):
            raise ProtocolError(WRONG_BODY)
        data = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError(WRONG_BODY) from None
    if not isinstance(data, dict):
        raise ProtocolError(WRONG_BODY)
    version, secret, commands = data.get("version"), data.get("secret"), data.get("commands")
    if isinstance(version, bool) or not isinstance(version, (int, float)):
        raise ProtocolError(WRONG_BODY)
    if not isinstance(secret, str) or not isinstance(commands, list):
        raise ProtocolError(WRONG_BODY)
    if any(not isinstance(c, dict) for c in commands):
        raise ProtocolError(WRONG_BODY)
    return Body(version=int(version) if version == int(version) else -1, secret=secret, commands=commands)


# ---- answers -------------------------------------------------------------------------------


def answer(kind: str, id: str, **extra: Any) -> dict[str, Any]:
    """An answer to an `action` command."""
    return {"answer": kind, "id": id, **extra}


def auth_answer(kind: str, auth_id: str, **extra: Any) -> dict[str, Any]:
    """An answer to an `auth` command."""
    return {"answer": kind, "authId": auth_id, **extra}


def normalize_resend(value: Any) -> dict[str, list[str]]:
    """Accept a list of channels (the seed's form) or a dict of targets; return the targets."""
    if not value:
        return {}
    if isinstance(value, str):
        return {"channels": [value]}
    if isinstance(value, (list, tuple)):
        return {"channels": [str(c) for c in value]}
    if isinstance(value, Mapping):
        unknown = set(value) - set(RESEND_KEYS) - {"channel", "user", "client", "node"}
        if unknown:
            raise ValueError(f"resend() returned unknown keys {sorted(unknown)}")
        targets: dict[str, list[str]] = {}
        for key in RESEND_KEYS:
            single = value.get(key[:-1])
            many = value.get(key)
            items = ([single] if single is not None else []) + list(many or [])
            if items:
                targets[key] = [str(i) for i in items]
        return targets
    raise ValueError(f"resend() must return a list of channels or a dict, not {type(value).__name__}")
