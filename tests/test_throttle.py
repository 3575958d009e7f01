"""The wrong-secret lock lives in a shared cache: every worker (every cache client) sees the same count."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test import override_settings

from logux_sync import throttle
from logux_sync.protocol import TOO_MANY_ATTEMPTS, WRONG_SECRET

from .conftest import Endpoint, body

REDIS_URL = "redis://127.0.0.1:6379/0"
IP = "192.0.2.7"


def logux(cache: str, **extra: Any) -> dict[str, Any]:
    return {"SECRET": "secret", "CACHE": cache, **extra}


@pytest.fixture
def redis_caches() -> Iterator[dict[str, dict[str, Any]]]:
    """Two aliases, two client objects, one Redis server; keys under a prefix unique to this test."""
    prefix = f"logux-sync-test-{uuid.uuid4().hex}"
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"these tests need Redis on 127.0.0.1:6379 ({exc}); start it with redis-server --daemonize yes")
    config = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix}
    aliases = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, "one": config, "two": config}
    try:
        with override_settings(CACHES=aliases):
            yield aliases
    finally:
        for key in server.scan_iter(f"{prefix}*"):
            server.delete(key)
        server.close()


@pytest.fixture
def file_caches(tmp_path: Path) -> Iterator[None]:
    config = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    aliases = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, "one": config, "two": config}
    with override_settings(CACHES=aliases):
        yield


def test_redis_aliases_are_separate_clients(redis_caches: dict) -> None:
    assert caches["one"] is not caches["two"]
    assert caches["one"]._cache is not caches["two"]._cache  # type: ignore[attr-defined]


@pytest.mark.parametrize("shared", ["redis_caches", "file_caches"])
def test_lock_is_shared_across_cache_clients(shared: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(shared)
    with override_settings(LOGUX_SYNC=logux("one")):
        for _ in range(3):
            assert not throttle.is_locked(IP)
            throttle.remember_wrong_secret(IP)
    with override_settings(LOGUX_SYNC=logux("two")):
        assert throttle.is_locked(IP)
        assert not throttle.is_locked("192.0.2.8")
        throttle.reset(IP)
    with override_settings(LOGUX_SYNC=logux("one")):
        assert not throttle.is_locked(IP)


@pytest.mark.parametrize("shared", ["redis_caches", "file_caches"])
def test_counts_add_up_across_cache_clients(shared: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(shared)
    for alias in ("one", "two", "one"):
        with override_settings(LOGUX_SYNC=logux(alias)):
            assert not throttle.is_locked(IP)
            throttle.remember_wrong_secret(IP)
    with override_settings(LOGUX_SYNC=logux("two")):
        assert throttle.is_locked(IP)


@pytest.mark.django_db
@pytest.mark.parametrize("shared", ["redis_caches", "file_caches"])
def test_endpoint_lock_holds_for_another_worker(
    shared: str, request: pytest.FixtureRequest, endpoint: Endpoint
) -> None:
    request.getfixturevalue(shared)
    with override_settings(LOGUX_SYNC=logux("one")):
        for _ in range(3):
            assert endpoint.post(body(secret="bad"), ip=IP) == (403, WRONG_SECRET)
    with override_settings(LOGUX_SYNC=logux("two")):
        assert endpoint.post(body(), ip=IP) == (429, TOO_MANY_ATTEMPTS)
        assert endpoint.post(body(), ip="192.0.2.8") == (200, [])


def test_lock_expires_after_the_window(redis_caches: dict) -> None:
    with override_settings(LOGUX_SYNC=logux("one", BRUTE_FORCE_WINDOW=1)):
        for _ in range(3):
            throttle.remember_wrong_secret(IP)
        assert throttle.is_locked(IP)
        key = caches["one"].make_key(throttle.cache_key(IP))
        assert 0 < redis.Redis.from_url(REDIS_URL).pttl(key) <= 1000
        time.sleep(1.1)
    with override_settings(LOGUX_SYNC=logux("two", BRUTE_FORCE_WINDOW=1)):
        assert not throttle.is_locked(IP)


def test_limit_is_read_from_settings(redis_caches: dict) -> None:
    with override_settings(LOGUX_SYNC=logux("one", BRUTE_FORCE_LIMIT=5)):
        for _ in range(4):
            throttle.remember_wrong_secret(IP)
        assert not throttle.is_locked(IP)
        throttle.remember_wrong_secret(IP)
        assert throttle.is_locked(IP)


def test_concurrent_wrong_secrets_are_all_counted(redis_caches: dict) -> None:
    threads_count = 10
    start = threading.Barrier(threads_count)
    failures: list[BaseException] = []

    def count_one() -> None:
        try:
            start.wait(5)
            throttle.remember_wrong_secret(IP)  # each thread gets its own cache client from `caches`
        except BaseException as exc:
            failures.append(exc)

    with override_settings(LOGUX_SYNC=logux("one", BRUTE_FORCE_WINDOW=60, BRUTE_FORCE_LIMIT=100)):
        threads = [threading.Thread(target=count_one) for _ in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert failures == []
        assert caches["two"].get(throttle.cache_key(IP)) == threads_count


def test_each_thread_counts_with_its_own_client_of_the_cache(file_caches: None) -> None:
    seen: list[object] = []
    with override_settings(LOGUX_SYNC=logux("one")):
        assert throttle.counting_cache() is caches["one"]
        thread = threading.Thread(target=lambda: seen.append(throttle.counting_cache() is caches["one"]))
        thread.start()
        thread.join(5)
    assert seen == [True]


def test_a_changed_caches_setting_is_followed(tmp_path: Path) -> None:
    def locmem(name: str) -> dict[str, Any]:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": name}}

    with override_settings(CACHES=locmem("first"), LOGUX_SYNC=logux("default")):
        for _ in range(3):
            throttle.remember_wrong_secret(IP)
        assert throttle.is_locked(IP)
    with override_settings(CACHES=locmem("second"), LOGUX_SYNC=logux("default")):
        assert not throttle.is_locked(IP)
