"""The one auth function every back end gets, so `auth` measures the endpoint, not the check."""

from __future__ import annotations

from typing import Any


def authenticate(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    """Accept `<userId>:good` without any I/O."""
    return token == f"{user_id}:good"
