"""Logux times and ids for edits made on the server, and per-field clocks."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..protocol import Meta, is_first_older

# One node id per process: `server:<random>`; ids are `<ms> server:<random> <counter>`.
SERVER_NODE = ""
_counter = itertools.count()
_lock = threading.Lock()
# Derived ids live at ms >= 10**13 (year 2286); each process starts its nonces at a random point.
_DERIVED_MS_OFFSET = 10**13
_nonces = itertools.count()


def _new_process() -> None:
    """Give this process its own node id, counter, nonces and lock.

    Runs at import and again in every child forked after it (gunicorn --preload, uWSGI without
    lazy-apps): a child that kept its parent's node id and counter would make the same ids as its
    siblings, and the Logux server drops an action whose id it has seen, so a change would be lost.
    The lock is replaced too: another thread may have held the parent's at the fork."""
    global SERVER_NODE, _counter, _lock, _nonces
    SERVER_NODE = f"server:{secrets.token_hex(4)}{os.getpid():x}"
    _counter = itertools.count()
    _lock = threading.Lock()
    _nonces = itertools.count(secrets.randbelow(10**12))


_new_process()
if hasattr(os, "register_at_fork"):  # POSIX only: there is no fork elsewhere
    os.register_at_fork(after_in_child=_new_process)

Clock = list[Any]  # [time, id]; JSON-friendly
Clocks = dict[str, Clock]

# In a row's clocks (`logux_clocks`), the key of the clock of every synced field that has none of its
# own: an edit of every field (a create) stores one clock instead of one per field.
EVERY = "*"


def now_ms() -> int:
    return int(time.time() * 1000)


def server_meta(after: float = 0) -> dict[str, Any]:
    """`{id, time}` for an edit made by Django itself (ORM, admin, shell): now, or 1 ms after `after`
    (the newest clock the edit overwrites) when that is later, so that the value the database then
    holds also wins on every client."""
    with _lock:
        counter = next(_counter)
    ms = max(time.time_ns() // 1_000_000, int(after) + 1)
    return {"id": f"{ms} {SERVER_NODE} {counter}", "time": ms}


def latest_time(clocks: Mapping[str, Any] | None, names: Iterable[str]) -> float:
    """The time of the newest clock among these fields' (0 when none has one)."""
    latest: float = 0
    for name in names:
        clock = clock_meta(field_clock(clocks, name))
        if clock is not None and isinstance(clock["time"], (int, float)) and clock["time"] > latest:
            latest = clock["time"]
    return latest


def derived_id(edit_id: str) -> str:
    """A fresh action id that orders exactly like `edit_id` against every other action.

    Broadcasts and snapshots of an edit cannot reuse its id (the Logux server drops an action whose id
    its log holds), and an id of our own node would rank them by our node id instead of the author's,
    so edits made in the same millisecond would converge differently on clients than in the database.
    Logux compares time, node id, counter, and only then the id's own ms: keeping the node and counter
    and moving the ms part centuries ahead (where no real node makes ids) gives an id that sorts right
    after the edit itself and exactly where the edit sorts against everything else."""
    ms, space, node_counter = edit_id.partition(" ")
    if not space or node_counter.count(" ") != 1:
        raise ValueError(f"not a Logux action id: {edit_id!r}")
    with _lock:
        nonce = next(_nonces)
    return f"{int(ms) + _DERIVED_MS_OFFSET + nonce} {node_counter}"


def field_clock(clocks: Mapping[str, Any] | None, name: str) -> Any:
    """The clock of a field in a row's clocks: its own, else the one of every field; None if neither."""
    if not clocks:
        return None
    clock = clocks.get(name)
    return clocks.get(EVERY) if clock is None else clock


def stamped(clocks: Mapping[str, Any] | None, changed: list[str], meta: Mapping[str, Any], every: bool) -> Clocks:
    """A row's clocks with the `changed` fields set to the edit `meta` (`every`: all its synced fields)."""
    clock = [meta["time"], meta["id"]]
    if every:
        return {EVERY: clock}
    return {**(clocks or {}), **dict.fromkeys(changed, clock)}


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
