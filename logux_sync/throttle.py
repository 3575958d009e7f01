"""Counts wrong secrets per IP in a Django cache shared by all workers, like the Logux server does."""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed

from .conf import SETTING_NAME, logux_settings

KEY_PREFIX = "logux_sync:wrong-secret:"


def cache_key(ip: str) -> str:
    """The key counting `ip`'s wrong secrets in the CACHE alias (before the cache's own KEY_PREFIX and
    VERSION): `logux_sync:wrong-secret:<REMOTE_ADDR>`."""
    return KEY_PREFIX + ip


class _Cache(threading.local):
    """This thread's client of the counting cache, as `caches[alias]` would return it.

    `caches[alias]` looks the client up through an asgiref Local, which costs as much as a third of
    a file-cache read; the lock is read on every request, so each thread keeps its client. A change
    of CACHES or LOGUX_SYNC (override_settings in tests) makes every thread look it up again."""

    generation = -1
    cache: BaseCache


_local = _Cache()
_generation = 0


def counting_cache() -> BaseCache:
    """The cache that counts wrong secrets (`caches[LOGUX_SYNC["CACHE"]]`), as this thread's client."""
    local = _local
    if local.generation != _generation:
        local.cache = caches[logux_settings.CACHE]
        local.generation = _generation
    return local.cache


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _generation
    if setting in ("CACHES", SETTING_NAME):
        _generation += 1


setting_changed.connect(_settings_changed, dispatch_uid="logux_sync.throttle.settings_changed")


class LockUnavailable(Exception):
    """The counting cache failed (a Redis that is down, say): whether the IP is locked out is unknown."""


def is_locked(ip: str) -> bool:
    """True while `ip` has BRUTE_FORCE_LIMIT wrong secrets within the window. Raises LockUnavailable
    when the cache cannot be read."""
    try:
        count = counting_cache().get(cache_key(ip))
    except Exception as exc:  # each cache backend raises its own errors (redis, pymemcache, OSError)
        raise LockUnavailable(f"the '{logux_settings.CACHE}' cache failed: {exc!r}") from exc
    return count is not None and int(count) >= logux_settings.BRUTE_FORCE_LIMIT


def remember_wrong_secret(ip: str) -> None:
    """Count one wrong secret; the count expires BRUTE_FORCE_WINDOW seconds after the last one.
    Raises LockUnavailable when the cache cannot be written."""
    cache = counting_cache()
    key, window = cache_key(ip), logux_settings.BRUTE_FORCE_WINDOW
    try:
        # add() then incr() is atomic on Redis and Memcached, so concurrent workers lose no attempt.
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=window)
        cache.touch(key, timeout=window)
    except Exception as exc:
        raise LockUnavailable(f"the '{logux_settings.CACHE}' cache failed: {exc!r}") from exc


def reset(ip: str) -> None:
    counting_cache().delete(cache_key(ip))
