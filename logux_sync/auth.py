"""Ready auth functions (signed token, Django session cookie), tokens, and the subprotocol check."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import semantic_version  # type: ignore[import-untyped]
from django.core import signing

from .commands import load_user
from .conf import logux_settings

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

TOKEN_SALT = "logux_sync.token"


def make_token(user: AbstractBaseUser) -> str:
    """A signed, expiring token for `user`: give it to the page, the client sends it as `token`.

    It carries a digest of the user's session auth hash, so changing the password revokes it.
    """
    return signing.dumps({"u": str(user.pk), "h": user.get_session_auth_hash()[:16]}, salt=TOKEN_SALT)


def _load_active_user(user_id: str) -> AbstractBaseUser | None:
    user = load_user(user_id)
    return user if user.is_authenticated else None  # type: ignore[return-value]


def token_auth(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    """Accept a token from make_token() that belongs to `user_id` and has not expired."""
    if not token:
        return False
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=logux_settings.TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return False
    if not isinstance(payload, dict) or payload.get("u") != str(user_id):
        return False
    user = _load_active_user(user_id)
    if user is None:
        return False
    from django.utils.crypto import constant_time_compare

    return constant_time_compare(str(payload.get("h", "")), user.get_session_auth_hash()[:16])


def session_auth(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    """Accept the Django session cookie the browser sent, when its session belongs to `user_id`."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.crypto import constant_time_compare
    from django.utils.module_loading import import_string

    session_key = cookie.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    store = import_string(settings.SESSION_ENGINE).SessionStore(session_key)
    session_user = store.get(SESSION_KEY)
    if session_user is None or str(session_user) != str(user_id):
        return False
    if store.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = _load_active_user(user_id)
    if user is None:
        return False
    return constant_time_compare(str(store.get(HASH_SESSION_KEY, "")), user.get_session_auth_hash())


def token_or_session_auth(user_id: str, token: str | None, cookie: dict[str, str], headers: dict[str, Any]) -> bool:
    """The default: a make_token() token, or else the Django session cookie."""
    return token_auth(user_id, token, cookie, headers) or session_auth(user_id, token, cookie, headers)


@lru_cache(maxsize=32)
def parse_range(supports: str) -> semantic_version.NpmSpec:
    """Parse an npm-style range such as `^1.0.0`; raises ValueError when it is not one."""
    return semantic_version.NpmSpec(supports)


@lru_cache(maxsize=256)
def subprotocol_supported(subprotocol: str | None, supports: str) -> bool:
    """Does the client's subprotocol satisfy the range? A missing or malformed one does not."""
    if not subprotocol:
        return False
    try:
        version = semantic_version.Version.coerce(str(subprotocol))
    except ValueError:
        return False
    return version in parse_range(supports)
