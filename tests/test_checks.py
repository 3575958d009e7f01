from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from logux_sync import checks
from logux_sync.checks import check_settings

GOOD: dict[str, Any] = {"SECRET": "secret", "URLS": ["http://127.0.0.1:31337/"]}
REDIS_CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGUX_CONTROL_SECRET", raising=False)
    monkeypatch.delenv("LOGUX_URL", raising=False)


def ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id for message in check_settings() if message.id]


def errors(logux_sync: Any) -> list[str]:
    """The ids check_settings() reports for this LOGUX_SYNC with a shared cache (so no W001)."""
    return ids(LOGUX_SYNC=logux_sync, CACHES=REDIS_CACHES)


def test_good_settings_pass() -> None:
    assert errors(GOOD) == []


def test_e001_missing_secret() -> None:
    assert errors({**GOOD, "SECRET": None}) == ["logux_sync.E001"]
    assert errors({"URLS": GOOD["URLS"]}) == ["logux_sync.E001"]


def test_e001_satisfied_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGUX_CONTROL_SECRET", "from-env")
    assert errors({"URLS": GOOD["URLS"]}) == []


@pytest.mark.parametrize(
    "auth_function", ["nowhere.auth", "logux_sync.auth.not_there", "logux_sync.conf.SETTING_NAME", 42]
)
def test_e002_auth_function(auth_function: Any) -> None:
    with override_settings(LOGUX_SYNC={**GOOD, "AUTH_FUNCTION": auth_function}, CACHES=REDIS_CACHES):
        [message] = check_settings()
    assert isinstance(message, Error)
    assert message.id == "logux_sync.E002"
    assert "AUTH_FUNCTION" in message.msg
    assert message.hint


@pytest.mark.parametrize("supports", ["not a range", "^^1", 1.5])
def test_e003_supports_range(supports: Any) -> None:
    assert errors({**GOOD, "SUPPORTS": supports}) == ["logux_sync.E003"]


@pytest.mark.parametrize("supports", ["^1.0.0", ">=1.2.0 <3.0.0", "1.x"])
def test_e003_accepts_npm_ranges(supports: str) -> None:
    assert errors({**GOOD, "SUPPORTS": supports}) == []


def test_e004_not_a_dict() -> None:
    with override_settings(LOGUX_SYNC=["SECRET"], CACHES=REDIS_CACHES):
        [message] = check_settings()
    assert message.id == "logux_sync.E004"
    assert "must be a dict" in message.msg


def test_e004_unknown_key_is_named() -> None:
    with override_settings(LOGUX_SYNC={**GOOD, "SECERT": "typo"}, CACHES=REDIS_CACHES):
        [message] = check_settings()
    assert message.id == "logux_sync.E004"
    assert "SECERT" in message.msg
    assert message.hint


@pytest.mark.parametrize("urls", [[], "", ["127.0.0.1:31337"], ["http://ok/", "ftp://no/"]])
def test_e005_bad_urls(urls: Any) -> None:
    assert errors({**GOOD, "URLS": urls}) == ["logux_sync.E005"]


def test_e005_https_and_env_urls_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    assert errors({**GOOD, "URLS": ["https://logux.example.com/"]}) == []
    monkeypatch.setenv("LOGUX_URL", "http://a:31337/,http://b:31337/")
    assert errors({"SECRET": "secret"}) == []


@pytest.mark.parametrize("fanout", ["channels", "", None, "Bridge"])
def test_e007_an_unknown_fanout_mode(fanout: Any) -> None:
    assert errors({**GOOD, "FANOUT": fanout}) == ["logux_sync.E007"]
    with override_settings(LOGUX_SYNC={**GOOD, "FANOUT": fanout}, CACHES=REDIS_CACHES):
        [message] = check_settings()
    assert "'nodes'" in str(message.hint) and "'bridge'" in str(message.hint)


@pytest.mark.parametrize("fanout", ["nodes", "bridge"])
def test_e007_the_fanout_modes_pass(fanout: str) -> None:
    assert errors({**GOOD, "FANOUT": fanout}) == []


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_w001_process_local_cache(backend: str) -> None:
    caches = {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}
    with override_settings(LOGUX_SYNC=GOOD, CACHES=caches):
        [message] = check_settings()
    assert isinstance(message, Warning)
    assert message.id == "logux_sync.W001"
    assert "'default'" in message.msg


def test_w001_looks_at_the_configured_alias() -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "/tmp/x"},
    }
    assert ids(LOGUX_SYNC={**GOOD, "CACHE": "shared"}, CACHES=caches) == []
    assert ids(LOGUX_SYNC={**GOOD, "CACHE": "default"}, CACHES=caches) == ["logux_sync.W001"]


def test_e006_a_cache_whose_client_library_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert errors(GOOD) == []  # redis is installed here
    real = checks.find_spec
    monkeypatch.setattr(checks, "find_spec", lambda name: None if name == "redis" else real(name))
    with override_settings(LOGUX_SYNC=GOOD, CACHES=REDIS_CACHES):
        [message] = check_settings()
    assert isinstance(message, Error)
    assert message.id == "logux_sync.E006"
    assert "'redis'" in message.msg
    assert message.hint is not None and "logux-sync[redis]" in message.hint


def test_several_problems_are_reported_together() -> None:
    found = ids(LOGUX_SYNC={"AUTH_FUNCTION": "nowhere.auth", "SUPPORTS": "^^1", "URLS": [], "FANOUT": "all"})
    assert found == [
        "logux_sync.E001",
        "logux_sync.E002",
        "logux_sync.E003",
        "logux_sync.E005",
        "logux_sync.E007",
        "logux_sync.W001",
    ]


# `manage.py check` runs the model checks too, and since Django 6.1 hands them every database alias
# (5.2 only those given with `--database`): JSONField's check then asks the database about JSON support.
@pytest.mark.django_db
def test_manage_py_check_passes_with_the_test_settings() -> None:
    call_command("check")


@pytest.mark.django_db
def test_manage_py_check_fails_on_a_missing_secret() -> None:
    with override_settings(LOGUX_SYNC={"URLS": GOOD["URLS"]}):
        with pytest.raises(SystemCheckError, match=r"logux_sync\.E001"):
            call_command("check")
