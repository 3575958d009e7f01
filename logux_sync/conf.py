"""The `LOGUX_SYNC` settings dict, its defaults, and the lazily read settings object."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .exceptions import ImproperlyConfigured

SETTING_NAME = "LOGUX_SYNC"

DEFAULTS: dict[str, Any] = {
    # Shared with the Logux server (its LOGUX_CONTROL_SECRET); env fallback LOGUX_CONTROL_SECRET.
    "SECRET": None,
    # Where add() sends actions: one URL or a list (a tier of Logux servers); env LOGUX_URL, comma-separated.
    "URLS": ["http://127.0.0.1:31337/"],
    # Dotted path of `auth(user_id, token, cookie, headers) -> bool`.
    "AUTH_FUNCTION": "logux_sync.auth.token_or_session_auth",
    # This back end's subprotocol, and the npm range of client subprotocols it accepts.
    "SUBPROTOCOL": "1.0.0",
    "SUPPORTS": "^1.0.0",
    # add(): seconds to connect and to read the Logux server's answer.
    "CONNECT_TIMEOUT": 2.0,
    "READ_TIMEOUT": 5.0,
    # Tokens made by make_token() expire after this many seconds.
    "TOKEN_MAX_AGE": 7 * 24 * 3600,
    # Wrong secrets from one IP before it is locked out, and the window in seconds (Logux: 3 in 3 s).
    "BRUTE_FORCE_LIMIT": 3,
    "BRUTE_FORCE_WINDOW": 3,
    # Cache alias that counts wrong secrets; must be shared by all workers.
    "CACHE": "default",
    # Largest accepted request body in bytes, and most commands in one request.
    "MAX_BODY_SIZE": 1024 * 1024,
    "MAX_COMMANDS": 100,
    # Put the handler's traceback into `error` answers (the Logux server logs them); None follows DEBUG.
    "ERROR_TRACEBACKS": None,
    # Model sync: False stops synced models from sending anything (checked at every save).
    "SYNC_ENABLED": True,
    # Model sync: who sends a committed transaction's changes. "thread": a sender thread of the process
    # (the request returns at once); "inline": the thread that committed, right after the commit (it
    # waits for the Logux server); "worker": only `manage.py logux_deliver`.
    "DELIVERY": "thread",
    # Outbox retries: the longest wait in seconds between two attempts to deliver a row.
    "OUTBOX_MAX_BACKOFF": 30,
    # Seconds a deleted synced row is remembered for list subscribers that resubscribe with `since`.
    "TOMBSTONE_TTL": 7 * 24 * 3600,
    # Model sync: a client edit whose `meta.time` is more than this many seconds ahead of the server's
    # clock is undone (reason `clockSkew`): stamped far ahead, it would win over every later edit.
    "MAX_CLOCK_SKEW": 10,
    # Model sync: the largest filter a list subscription may carry (bytes of its JSON), and how many
    # subscriptions are remembered at once per node (browser tab) and per user; over a limit the
    # subscribe is undone (reason `limit`).
    "MAX_FILTER_SIZE": 1024,
    "MAX_SUBSCRIPTIONS_PER_NODE": 1000,
    "MAX_SUBSCRIPTIONS_PER_USER": 5000,
    # Model sync: who finds the nodes a change reaches. "nodes": Django, for every change (any Logux
    # server); "bridge": a change every subscriber may read (`LoguxMeta.readers` returns True) goes
    # once to the logux-sync bridge (@logux/server 0.14), which finds its nodes itself; Django
    # addresses the others (see README "Running at scale").
    "FANOUT": "nodes",
}

ENV_FALLBACKS = {"SECRET": "LOGUX_CONTROL_SECRET", "URLS": "LOGUX_URL"}

IMPORT_STRINGS = {"AUTH_FUNCTION"}

DELIVERY_MODES = ("thread", "inline", "worker")

FANOUT_MODES = ("nodes", "bridge")


class Settings:
    """Reads `settings.LOGUX_SYNC` on first use of each key; reset when Django's settings change.

    A key read once is stored as an instance attribute, so later reads (several per request) are plain
    attribute lookups: `__getattr__` runs only after a failed lookup has raised an AttributeError."""

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, SETTING_NAME, {}) or {}
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"settings.{SETTING_NAME} must be a dict, not {type(value).__name__}")
        unknown = sorted(set(value) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown key(s) in settings.{SETTING_NAME}: {', '.join(unknown)}. "
                f"Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        return value

    def raw(self, key: str) -> Any:
        """The configured value before import and normalization."""
        if key not in DEFAULTS:
            raise AttributeError(f"Unknown logux_sync setting {key!r}")
        user = self.user_settings
        if key in user:
            return user[key]
        env = ENV_FALLBACKS.get(key)
        if env and os.environ.get(env):
            return os.environ[env]
        return DEFAULTS[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in DEFAULTS:
            raise AttributeError(key)
        value = self._normalize(key, self.raw(key))
        setattr(self, key, value)
        return value

    def _normalize(self, key: str, value: Any) -> Any:
        if key in IMPORT_STRINGS and isinstance(value, str):
            try:
                return import_string(value)
            except ImportError as exc:
                raise ImproperlyConfigured(f"{SETTING_NAME}['{key}'] = {value!r} cannot be imported: {exc}") from exc
        if key == "URLS":
            urls = [u.strip() for u in value.split(",")] if isinstance(value, str) else list(value)
            return [u for u in urls if u]
        if key == "DELIVERY" and value not in DELIVERY_MODES:
            raise ImproperlyConfigured(
                f"{SETTING_NAME}['DELIVERY'] = {value!r}; expected one of {', '.join(map(repr, DELIVERY_MODES))}"
            )
        if key == "FANOUT" and value not in FANOUT_MODES:
            raise ImproperlyConfigured(
                f"{SETTING_NAME}['FANOUT'] = {value!r}; expected one of {', '.join(map(repr, FANOUT_MODES))}"
            )
        if key == "ERROR_TRACEBACKS" and value is None:
            return bool(django_settings.DEBUG)
        return value

    @property
    def auth_function(self) -> Callable[..., bool]:
        return self.AUTH_FUNCTION  # type: ignore[no-any-return]

    def reload(self) -> None:
        for key in DEFAULTS:
            self.__dict__.pop(key, None)


logux_settings = Settings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "DEBUG"):
        logux_settings.reload()


setting_changed.connect(_reload, dispatch_uid="logux_sync.conf.reload")
