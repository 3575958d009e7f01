"""Counts wrong secrets per IP in a Django cache shared by all workers, like the Logux server does."""

from __future__ import annotations

from django.core.cache import caches

from .conf import logux_settings

KEY_PREFIX = "logux_sync:wrong-secret:"


def _key(ip: str) -> str:
    return KEY_PREFIX + ip


def is_locked(ip: str) -> bool:
    """True while `ip` has BRUTE_FORCE_LIMIT wrong secrets within the window."""
    count = int(caches[logux_settings.CACHE].get(_key(ip), 0))
    limit: int = logux_settings.BRUTE_FORCE_LIMIT
    return count >= limit


def remember_wrong_secret(ip: str) -> None:
    """Count one wrong secret; the count expires BRUTE_FORCE_WINDOW seconds after the last one."""
    cache = caches[logux_settings.CACHE]
    key, window = _key(ip), logux_settings.BRUTE_FORCE_WINDOW
    # add() then incr() is atomic on Redis and Memcached, so concurrent workers lose no attempt.
    cache.add(key, 0, timeout=window)
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)
    cache.touch(key, timeout=window)


def reset(ip: str) -> None:
    caches[logux_settings.CACHE].delete(_key(ip))
