from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from logux_sync import make_token
from logux_sync.auth import session_auth, subprotocol_supported, token_auth, token_or_session_auth

from .conftest import Endpoint, auth_command

pytestmark = pytest.mark.django_db

DEFAULT_AUTH: dict[str, Any] = {"SECRET": "secret"}  # AUTH_FUNCTION left at its default


@pytest.fixture
def ann() -> User:
    return User.objects.create_user("ann", password="one-password")


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob", password="other-password")


def uid(user: User) -> str:
    return str(user.pk)


# ---- tokens ------------------------------------------------------------------------------


def test_good_token(ann: User) -> None:
    assert token_auth(uid(ann), make_token(ann), {}, {}) is True


def test_token_of_another_user(ann: User, bob: User) -> None:
    assert token_auth(uid(bob), make_token(ann), {}, {}) is False


def test_no_token(ann: User) -> None:
    assert token_auth(uid(ann), None, {}, {}) is False
    assert token_auth(uid(ann), "", {}, {}) is False


def test_tampered_token(ann: User) -> None:
    token = make_token(ann)
    last = "A" if token[-1] != "A" else "B"
    assert token_auth(uid(ann), token[:-1] + last, {}, {}) is False
    assert token_auth(uid(ann), "x" + token, {}, {}) is False


def test_token_signed_with_another_key(ann: User) -> None:
    with override_settings(SECRET_KEY="another-key"):
        token = make_token(ann)
    assert token_auth(uid(ann), token, {}, {}) is False


def test_expired_token(ann: User, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: 1_000_000.0)  # signing stamps the token with time.time()
        token = make_token(ann)
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "TOKEN_MAX_AGE": 60}):
        assert token_auth(uid(ann), token, {}, {}) is False
    fresh = make_token(ann)
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "TOKEN_MAX_AGE": 60}):
        assert token_auth(uid(ann), fresh, {}, {}) is True


def test_token_max_age_is_read_from_settings(ann: User, monkeypatch: pytest.MonkeyPatch) -> None:
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: an_hour_ago)
        token = make_token(ann)
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "TOKEN_MAX_AGE": 3 * 3600}):
        assert token_auth(uid(ann), token, {}, {}) is True
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "TOKEN_MAX_AGE": 1800}):
        assert token_auth(uid(ann), token, {}, {}) is False


def test_password_change_revokes_the_token(ann: User) -> None:
    token = make_token(ann)
    ann.set_password("new-password")
    ann.save()
    assert token_auth(uid(ann), token, {}, {}) is False
    assert token_auth(uid(ann), make_token(ann), {}, {}) is True


def test_inactive_or_deleted_user_is_denied(ann: User) -> None:
    token = make_token(ann)
    ann.is_active = False
    ann.save()
    assert token_auth(uid(ann), token, {}, {}) is False
    user_id = uid(ann)
    ann.delete()
    assert token_auth(user_id, token, {}, {}) is False


# ---- Django session ----------------------------------------------------------------------


def session_cookie(user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def test_session_of_the_user(ann: User) -> None:
    assert session_auth(uid(ann), None, session_cookie(ann), {}) is True


def test_session_of_another_user(ann: User, bob: User) -> None:
    assert session_auth(uid(bob), None, session_cookie(ann), {}) is False


def test_missing_or_unknown_session_cookie(ann: User) -> None:
    assert session_auth(uid(ann), None, {}, {}) is False
    assert session_auth(uid(ann), None, {settings.SESSION_COOKIE_NAME: "no-such-session"}, {}) is False


def test_logout_ends_the_session(ann: User) -> None:
    client = Client()
    client.force_login(ann)
    cookie = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    client.logout()
    assert session_auth(uid(ann), None, cookie, {}) is False


def test_password_change_ends_the_session(ann: User) -> None:
    cookie = session_cookie(ann)
    ann.set_password("new-password")
    ann.save()
    assert session_auth(uid(ann), None, cookie, {}) is False


def test_default_accepts_token_or_session(ann: User, bob: User) -> None:
    assert token_or_session_auth(uid(ann), make_token(ann), {}, {}) is True
    assert token_or_session_auth(uid(ann), "bad", session_cookie(ann), {}) is True
    assert token_or_session_auth(uid(ann), make_token(bob), session_cookie(bob), {}) is False


# ---- subprotocol -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "supports", "expected"),
    [
        ("1.0.0", "^1.0.0", True),
        ("1.4.2", "^1.0.0", True),
        ("2.0.0", "^1.0.0", False),
        ("0.9.1", "^1.0.0", False),
        ("1", "^1.0.0", True),
        ("2.5.0", ">=1.2.0 <3.0.0", True),
        ("1.1.0", ">=1.2.0 <3.0.0", False),
        ("3.0.0", ">=1.2.0 <3.0.0", False),
        ("1.9.0", "1.x || 3.x", True),
        ("2.0.0", "1.x || 3.x", False),
        ("0.2.5", "^0.2.0", True),
        ("0.3.0", "^0.2.0", False),
        (None, "^1.0.0", False),
        ("", "^1.0.0", False),
        ("garbage", "^1.0.0", False),
    ],
)
def test_subprotocol_supported(subprotocol: str | None, supports: str, expected: bool) -> None:
    assert subprotocol_supported(subprotocol, supports) is expected


# ---- through the endpoint ----------------------------------------------------------------


def test_endpoint_answers_wrong_subprotocol(endpoint: Endpoint, ann: User) -> None:
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "SUPPORTS": "^2.0.0"}):
        answers = endpoint.answers(auth_command(uid(ann), make_token(ann), subprotocol="1.0.0"))
    assert answers == [{"answer": "wrongSubprotocol", "authId": "a1", "supported": "^2.0.0"}]


def test_endpoint_authenticates_with_the_default_auth(endpoint: Endpoint, ann: User) -> None:
    with override_settings(LOGUX_SYNC={**DEFAULT_AUTH, "SUBPROTOCOL": "2.1.0", "SUPPORTS": "^1.0.0"}):
        good = endpoint.answers(auth_command(uid(ann), make_token(ann)))
        bad = endpoint.answers(auth_command(uid(ann), make_token(ann) + "x"))
        by_cookie = endpoint.answers(auth_command(uid(ann), None, cookie=session_cookie(ann)))
    assert good == [{"answer": "authenticated", "authId": "a1", "subprotocol": "2.1.0"}]
    assert bad == [{"answer": "denied", "authId": "a1"}]
    assert by_cookie == good
