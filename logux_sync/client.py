"""Adds actions to the Logux server(s) over HTTP: `add`, `add_batch`, `build_undo`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .conf import logux_settings
from .exceptions import ImproperlyConfigured, LoguxServerError
from .protocol import PROTOCOL_VERSION, Action, Meta, RawMeta, dumps

logger = logging.getLogger("logux_sync.client")

_local = threading.local()


def get_session() -> requests.Session:
    """This thread's pooled keep-alive session."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["Content-Type"] = "application/json"
        _local.session = session
    return session


def close_session() -> None:
    """Close this thread's session (tests, worker shutdown)."""
    session = getattr(_local, "session", None)
    if session is not None:
        session.close()
        _local.session = None


def build_body(pairs: Iterable[tuple[Action, RawMeta | None]]) -> str:
    secret = logux_settings.SECRET
    if not secret:
        raise ImproperlyConfigured("LOGUX_SYNC['SECRET'] (or LOGUX_CONTROL_SECRET) is not set")
    commands = [{"command": "action", "action": action, "meta": dict(meta or {})} for action, meta in pairs]
    return dumps({"version": PROTOCOL_VERSION, "secret": secret, "commands": commands})


def post(url: str, body: str) -> None:
    """POST one body to one Logux server; raise LoguxServerError unless it answers 2xx."""
    timeout = (logux_settings.CONNECT_TIMEOUT, logux_settings.READ_TIMEOUT)
    try:
        response = get_session().post(url, data=body.encode(), timeout=timeout)
    except requests.RequestException as exc:
        raise LoguxServerError(url, None, "", exc) from exc
    if not 200 <= response.status_code < 300:
        raise LoguxServerError(url, response.status_code, response.text)


def add_batch(pairs: Iterable[tuple[Action, RawMeta | None]], urls: list[str] | None = None) -> None:
    """Add several `(action, meta)` pairs in one request to every configured Logux server.

    Every server is tried; the first failure is raised after the others were sent.
    """
    pairs = list(pairs)
    if not pairs:
        return
    body = build_body(pairs)
    errors: list[LoguxServerError] = []
    for url in urls or logux_settings.URLS:
        try:
            post(url, body)
        except LoguxServerError as exc:
            logger.warning("%s", exc)
            errors.append(exc)
    if errors:
        raise errors[0]


def add(action: Action, meta: RawMeta | None = None) -> None:
    """Add one action to the Logux server(s) (Logux's `server.log.add`)."""
    add_batch([(action, meta)])


def build_undo(
    action: Action, meta: Meta, reason: str = "error", extra: Mapping[str, Any] | None = None
) -> tuple[Action, RawMeta]:
    """`logux/undo` for an action, with its meta copied as the Logux server's `undo()` copies it."""
    undo_meta: RawMeta = {"status": "processed"}
    for key in ("users", "nodes", "clients", "reasons", "channels", "excludeClients"):
        value = meta.get(key)
        if value:
            undo_meta[key] = list(value)
    undo_meta["clients"] = [*undo_meta.get("clients", []), meta.client_id]
    undo_action: Action = {**(extra or {}), "action": action, "id": meta.id, "reason": reason, "type": "logux/undo"}
    return undo_action, undo_meta


def undo(action: Action, meta: Meta, reason: str = "error", extra: Mapping[str, Any] | None = None) -> None:
    """Revert `action` on its author's clients (and wherever it was sent)."""
    add(*build_undo(action, meta, reason, extra))


def send_back(meta: Meta, action: Action, extra_meta: RawMeta | None = None) -> None:
    """Send an action to the client that sent `meta`'s action."""
    add(action, {"clients": [meta.client_id], **(extra_meta or {})})
