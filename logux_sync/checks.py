"""System checks for the LOGUX_SYNC settings (`manage.py check`)."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .auth import parse_range
from .conf import FANOUT_MODES, SETTING_NAME, logux_settings
from .exceptions import ImproperlyConfigured

HINT_SETTINGS = f"Set it in settings.{SETTING_NAME} (see the README's configuration reference)."

# Django's cache backends that import their client library only on first use: without the library,
# the first wrong secret would be a 500 instead of a 403, so `manage.py check` says so first.
CACHE_CLIENTS = {
    "django.core.cache.backends.redis.RedisCache": ("redis", "pip install 'logux-sync[redis]'"),
    "django.core.cache.backends.memcached.PyMemcacheCache": ("pymemcache", "pip install pymemcache"),
    "django.core.cache.backends.memcached.PyLibMCCache": ("pylibmc", "pip install pylibmc"),
}


@register(Tags.security, "logux_sync")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001 secret, E002 auth function, E003 supported range, E004 settings dict, E005 URLs, E006 cache
    client library, E007 fan-out mode, W001 cache."""
    messages: list[CheckMessage] = []
    try:
        _ = logux_settings.user_settings
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=HINT_SETTINGS, id="logux_sync.E004")]

    if not logux_settings.raw("SECRET"):
        messages.append(
            Error(
                "The Logux control secret is not set.",
                hint="Set LOGUX_SYNC['SECRET'] or the LOGUX_CONTROL_SECRET environment variable "
                "to the Logux server's LOGUX_CONTROL_SECRET.",
                id="logux_sync.E001",
            )
        )
    try:
        function = logux_settings.AUTH_FUNCTION
        if not callable(function):
            raise ImproperlyConfigured(f"{SETTING_NAME}['AUTH_FUNCTION'] is not callable")
    except ImproperlyConfigured as exc:
        messages.append(
            Error(
                str(exc),
                hint="Give the dotted path of a function auth(user_id, token, cookie, headers) -> bool.",
                id="logux_sync.E002",
            )
        )
    supports = logux_settings.raw("SUPPORTS")
    try:
        # Not str(): the auth command parses the raw value, so a number here crashes every auth.
        if not isinstance(supports, str):
            raise ValueError(f"expected a string, not {type(supports).__name__}")
        parse_range(supports)
    except ValueError as exc:
        messages.append(
            Error(
                f"{SETTING_NAME}['SUPPORTS'] = {supports!r} is not an npm version range: {exc}",
                hint="Use an npm range such as '^1.0.0' or '>=1.2.0 <3.0.0'.",
                id="logux_sync.E003",
            )
        )
    urls = logux_settings.URLS
    bad = [u for u in urls if not str(u).startswith(("http://", "https://"))]
    if not urls or bad:
        messages.append(
            Error(
                f"{SETTING_NAME}['URLS'] must list http(s) URLs of Logux servers; got {urls!r}.",
                hint="For example 'http://127.0.0.1:31337/'.",
                id="logux_sync.E005",
            )
        )
    alias = logux_settings.CACHE
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if backend in CACHE_CLIENTS and find_spec(CACHE_CLIENTS[backend][0]) is None:
        module, install = CACHE_CLIENTS[backend]
        messages.append(
            Error(
                f"The '{alias}' cache ({backend.rsplit('.', 1)[-1]}) needs the '{module}' package, which is not "
                "installed: the Logux endpoint would fail on its first wrong secret.",
                hint=f"Run `{install}`, or point LOGUX_SYNC['CACHE'] at another cache.",
                id="logux_sync.E006",
            )
        )
    fanout = logux_settings.raw("FANOUT")
    if fanout not in FANOUT_MODES:
        messages.append(
            Error(
                f"{SETTING_NAME}['FANOUT'] = {fanout!r} is not a fan-out mode.",
                hint="Use 'nodes' (any Logux server) or 'bridge' (only behind the logux-sync bridge, "
                "`manage.py logux_server`, on @logux/server 0.14).",
                id="logux_sync.E007",
            )
        )
    if backend.endswith(("LocMemCache", "DummyCache")):
        messages.append(
            Warning(
                f"The '{alias}' cache ({backend.rsplit('.', 1)[-1]}) is not shared between processes, "
                "so each worker counts wrong Logux secrets on its own.",
                hint="Point LOGUX_SYNC['CACHE'] at a Redis, Memcached, database or file cache.",
                id="logux_sync.W001",
            )
        )
    return messages
