from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from logux_sync import auth
from logux_sync.conf import DEFAULTS, logux_settings
from logux_sync.exceptions import ImproperlyConfigured


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No LOGUX_* environment leaks into a test that checks defaults or fallbacks."""
    monkeypatch.delenv("LOGUX_CONTROL_SECRET", raising=False)
    monkeypatch.delenv("LOGUX_URL", raising=False)
    logux_settings.reload()
    return monkeypatch


def test_defaults_when_nothing_is_set(no_env: pytest.MonkeyPatch) -> None:
    with override_settings(LOGUX_SYNC={}):
        assert logux_settings.SECRET is None
        assert logux_settings.URLS == ["http://127.0.0.1:31337/"]
        assert logux_settings.AUTH_FUNCTION is auth.token_or_session_auth
        assert logux_settings.SUBPROTOCOL == "1.0.0"
        assert logux_settings.SUPPORTS == "^1.0.0"
        assert (logux_settings.CONNECT_TIMEOUT, logux_settings.READ_TIMEOUT) == (2.0, 5.0)
        assert logux_settings.TOKEN_MAX_AGE == 7 * 24 * 3600
        assert (logux_settings.BRUTE_FORCE_LIMIT, logux_settings.BRUTE_FORCE_WINDOW) == (3, 3)
        assert logux_settings.CACHE == "default"
        assert (logux_settings.MAX_BODY_SIZE, logux_settings.MAX_COMMANDS) == (1024 * 1024, 100)
        assert logux_settings.ERROR_TRACEBACKS is False  # follows DEBUG, which is False in the tests


def test_missing_setting_means_defaults(no_env: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    # Deleting a setting sends no setting_changed, so reload by hand on the way in and out.
    try:
        with override_settings():
            del settings.LOGUX_SYNC
            logux_settings.reload()
            assert logux_settings.SUPPORTS == DEFAULTS["SUPPORTS"]
            assert logux_settings.SECRET is None
    finally:
        logux_settings.reload()
    assert logux_settings.SECRET == "secret"


def test_every_default_is_readable(no_env: pytest.MonkeyPatch) -> None:
    with override_settings(LOGUX_SYNC={}):
        for key in DEFAULTS:
            getattr(logux_settings, key)


def test_unknown_key_raises_naming_the_key() -> None:
    with override_settings(LOGUX_SYNC={"SECRET": "s", "SECERT": "typo"}):
        with pytest.raises(ImproperlyConfigured, match="SECERT"):
            _ = logux_settings.SUPPORTS


def test_settings_must_be_a_dict() -> None:
    with override_settings(LOGUX_SYNC=["SECRET"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict, not list"):
            _ = logux_settings.SECRET


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = logux_settings.NOT_A_SETTING
    with pytest.raises(AttributeError):
        logux_settings.raw("NOT_A_SETTING")


def test_secret_env_fallback(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("LOGUX_CONTROL_SECRET", "from-env")
    with override_settings(LOGUX_SYNC={}):
        assert logux_settings.SECRET == "from-env"
    with override_settings(LOGUX_SYNC={"SECRET": "from-settings"}):
        assert logux_settings.SECRET == "from-settings"


def test_url_env_fallback_is_comma_separated(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("LOGUX_URL", "http://a:31337/, http://b:31337/,,")
    with override_settings(LOGUX_SYNC={}):
        assert logux_settings.URLS == ["http://a:31337/", "http://b:31337/"]


def test_urls_accept_a_string_or_a_list(no_env: pytest.MonkeyPatch) -> None:
    with override_settings(LOGUX_SYNC={"URLS": "http://one/"}):
        assert logux_settings.URLS == ["http://one/"]
    with override_settings(LOGUX_SYNC={"URLS": ("http://one/", "http://two/")}):
        assert logux_settings.URLS == ["http://one/", "http://two/"]


def test_empty_env_value_falls_back_to_the_default(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("LOGUX_CONTROL_SECRET", "")
    with override_settings(LOGUX_SYNC={}):
        assert logux_settings.SECRET is None


def test_auth_function_is_imported() -> None:
    with override_settings(LOGUX_SYNC={"AUTH_FUNCTION": "logux_sync.auth.token_auth"}):
        assert logux_settings.auth_function is auth.token_auth


def test_auth_function_may_be_a_callable() -> None:
    def custom(user_id: str, token: str | None, cookie: dict, headers: dict) -> bool:
        return True

    with override_settings(LOGUX_SYNC={"AUTH_FUNCTION": custom}):
        assert logux_settings.AUTH_FUNCTION is custom


def test_auth_function_import_error_names_the_key() -> None:
    with override_settings(LOGUX_SYNC={"AUTH_FUNCTION": "nowhere.auth"}):
        with pytest.raises(ImproperlyConfigured) as info:
            _ = logux_settings.AUTH_FUNCTION
    message = str(info.value)
    assert "LOGUX_SYNC['AUTH_FUNCTION']" in message
    assert "'nowhere.auth'" in message


def test_override_settings_takes_effect_and_is_undone() -> None:
    before = logux_settings.SUPPORTS
    with override_settings(LOGUX_SYNC={"SECRET": "s", "SUPPORTS": "^2.0.0"}):
        assert logux_settings.SUPPORTS == "^2.0.0"
        with override_settings(LOGUX_SYNC={"SECRET": "s", "SUPPORTS": "^3.0.0"}):
            assert logux_settings.SUPPORTS == "^3.0.0"
        assert logux_settings.SUPPORTS == "^2.0.0"
    assert logux_settings.SUPPORTS == before


def test_error_tracebacks_follow_debug_until_set() -> None:
    with override_settings(LOGUX_SYNC={}, DEBUG=True):
        assert logux_settings.ERROR_TRACEBACKS is True
    with override_settings(LOGUX_SYNC={}, DEBUG=False):
        assert logux_settings.ERROR_TRACEBACKS is False
    with override_settings(LOGUX_SYNC={"ERROR_TRACEBACKS": False}, DEBUG=True):
        assert logux_settings.ERROR_TRACEBACKS is False


def test_values_are_cached_until_settings_change(no_env: pytest.MonkeyPatch) -> None:
    with override_settings(LOGUX_SYNC={}):
        assert logux_settings.SECRET is None
        no_env.setenv("LOGUX_CONTROL_SECRET", "late")
        assert logux_settings.SECRET is None  # read once, not on every request
        logux_settings.reload()
        assert logux_settings.SECRET == "late"


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert [key for key in DEFAULTS if f"`{key}`" not in readme] == []
