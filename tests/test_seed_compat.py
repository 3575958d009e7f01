"""The seed README's RenameUserAction and UserChannel run unchanged but for the import path."""

from __future__ import annotations

import pytest

from tests.test_app import seed_readme
from tests.test_app.models import User

from .conftest import Endpoint, action_command

pytestmark = pytest.mark.django_db


def rename(endpoint: Endpoint, name: str, meta_id: str, time: float, **extra: object) -> list[dict]:
    action = {"type": "users/name", "payload": {"userId": "10", "name": name}}
    return endpoint.answers({**action_command(action, meta_id=meta_id, time=time), **extra})


def test_seed_handlers_are_registered() -> None:
    from logux_sync.registry import logux

    assert logux.actions.find("users/name") is seed_readme.RenameUserAction
    assert logux.channels.find("users/10") is seed_readme.UserChannel


def test_rename_user_action(endpoint: Endpoint) -> None:
    User.objects.create(id="10")
    answers = rename(endpoint, "Ann", "5 10:a:b 0", 5)
    assert [a["answer"] for a in answers] == ["resend", "approved", "processed"]
    assert answers[0]["channels"] == ["users/10"]
    assert User.objects.get(id="10").first_name == "Ann"
    # An older edit arriving later changes nothing.
    rename(endpoint, "Old", "3 10:a:b 0", 3)
    assert User.objects.get(id="10").first_name == "Ann"
    rename(endpoint, "Newer", "6 10:a:b 0", 6)
    assert User.objects.get(id="10").first_name == "Newer"


def test_rename_someone_else_is_forbidden(endpoint: Endpoint) -> None:
    User.objects.create(id="10")
    action = {"type": "users/name", "payload": {"userId": "10", "name": "x"}}
    answers = endpoint.answers(action_command(action, meta_id="1 20:a:b 0"))
    assert [a["answer"] for a in answers] == ["resend", "forbidden"]


def test_user_channel_load(endpoint: Endpoint) -> None:
    answers = endpoint.answers(action_command({"type": "logux/subscribe", "channel": "users/10"}))
    assert [a["answer"] for a in answers] == ["approved", "action", "processed"]
    assert answers[1]["action"] == {"payload": {"name": "Name", "userId": "10"}, "type": "users/name"}


def test_user_channel_error_header(endpoint: Endpoint) -> None:
    command = action_command({"type": "logux/subscribe", "channel": "users/10"})
    command["headers"] = {"error": "Test error"}
    answers = endpoint.answers(command)
    assert answers[-1] == {"answer": "error", "id": "1 10:c1:t1 0", "details": "Test error"}
