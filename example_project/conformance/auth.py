"""`@logux/backend-test`'s auth rules (installed only when LOGUX_CONFORMANCE=1, see example.settings)."""

from __future__ import annotations

from typing import Any

from logux_sync import LoguxProxyException


def authenticate(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    if headers.get("error"):
        raise LoguxProxyException(headers["error"])
    good = f"{user_id}:good"
    return token == good or cookie.get("token") == good
