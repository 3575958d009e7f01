"""Logux times and ids for edits made on the server, and per-field clocks."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..protocol import Meta, is_first_older

# One node id per process: `server:<random>`; ids are `<ms> server:<random> <counter>`.
SERVER_NODE = f"server:{secrets.token_hex(4)}{os.getpid():x}"
_counter = itertools.count()
_lock = threading.Lock()

Clock = list[Any]  # [time, id]; JSON-friendly


def now_ms() -> int:
    return int(time.time() * 1000)


def server_meta() -> dict[str, Any]:
    """`{id, time}` for an edit made by Django itself (ORM, admin, shell)."""
    with _lock:
        counter = next(_counter)
    ms = now_ms()
    return {"id": f"{ms} {SERVER_NODE} {counter}", "time": ms}


def clock_of(meta: Mapping[str, Any] | Meta) -> Clock:
    if isinstance(meta, Meta):
        return [meta.time, meta.id]
    return [meta["time"], meta["id"]]


def clock_meta(clock: Any) -> dict[str, Any] | None:
    """A stored clock as a meta for isFirstOlder; None for a missing or broken one (oldest)."""
    if isinstance(clock, (list, tuple)) and len(clock) == 2:
        return {"time": clock[0], "id": clock[1]}
    return None


def is_newer(meta: Mapping[str, Any] | Meta, clock: Any) -> bool:
    """Does an edit with `meta` beat the field's stored clock (Logux's isFirstOlder)?"""
    stored = clock_meta(clock)
    try:
        return is_first_older(stored, meta)
    except ValueError:  # unparsable stored id: treat as oldest
        return True
