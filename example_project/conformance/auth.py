"""The example's auth: the ready token/session check, plus `@logux/backend-test`'s fixture rules."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from logux_sync import LoguxProxyException
from logux_sync.auth import token_or_session_auth


def authenticate(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    if headers.get("error"):
        raise LoguxProxyException(headers["error"])
    if settings.LOGUX_CONFORMANCE:
        good = f"{user_id}:good"
        return token == good or cookie.get("token") == good
    return token_or_session_auth(user_id, token, cookie, headers)
