"""Digests that identify remembered subscriptions and let a change find the lists it matches."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..protocol import dumps


def _digest(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode("utf-8", "surrogatepass")).hexdigest()


def subscription_key(channel: str, wire_filter: Mapping[str, Any]) -> str:
    """What identifies one subscription of a node: a digest of the channel it subscribed to and its
    filter, so the stored key has one length on every database whatever the client sent."""
    return _digest([channel, wire_filter])


def match_key(values: Mapping[str, Any]) -> str:
    """The digest of `{field: wire value}` that a list filter and a row with those values share: a
    filter matches a row when the row's values of the filter's fields digest to the filter's key."""
    return _digest(sorted(values.items()))


def shape_key(wire_filter: Mapping[str, Any]) -> str:
    """The digest of the field names a filter compares."""
    return match_key(dict.fromkeys(wire_filter))
