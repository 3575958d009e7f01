"""The bridge's notices to Django (unsubscribe, disconnect), and `manage.py logux_server`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import override_settings

from logux_sync.management.commands import logux_server
from logux_sync.management.commands.logux_server import bridge_subprotocols
from logux_sync.registry import logux
from logux_sync.sync.models import LoguxSubscription
from logux_sync.sync.subscriptions import subscription_key
from tests.conftest import Endpoint, action_command
from tests.test_app.models import Project, Task

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_ID = "9 server:abc 0"


def reader() -> User:
    user = User.objects.create_user("ann", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_task"))
    return User.objects.get(pk=user.pk)


def subscribe(endpoint: Endpoint, node: str, channel: str, **extra: Any) -> None:
    action = {"type": "logux/subscribe", "channel": channel, **extra}
    answers = endpoint.answers(action_command(action, meta_id=f"5 {node} 0", time=5))
    assert answers[0]["answer"] == "approved", answers


def keys(node: str) -> list[str]:
    return sorted(LoguxSubscription.objects.filter(node_id=node).values_list("filter_key", flat=True))


def notice(endpoint: Endpoint, action: dict[str, Any], meta_id: str = SERVER_ID) -> list[str]:
    return [a["answer"] for a in endpoint.answers(action_command(action, meta_id=meta_id, time=9))]


@pytest.fixture
def subscribed(endpoint: Endpoint) -> str:
    user = reader()
    project = Project.objects.create(name="p")
    Task.objects.create(id="t1", title="A", project=project)
    node = f"{user.pk}:c:t"
    subscribe(endpoint, node, "tasks/t1")
    subscribe(endpoint, node, "tasks", filter={"done": False})
    subscribe(endpoint, node, f"projects/{project.pk}/tasks")
    subscribe(endpoint, f"{user.pk}:other:t", "tasks/t1")
    assert len(keys(node)) == 3
    return node


def test_the_handlers_are_registered_with_model_sync() -> None:
    assert logux.actions.is_registered("logux/unsubscribe")
    assert logux.actions.is_registered("logux_sync/disconnected")


@pytest.mark.parametrize(
    ("channel", "extra", "gone"),
    [
        ("tasks/t1", {}, ["tasks/t1", {}]),
        ("tasks", {"filter": {"done": False}}, ["tasks", {"done": False}]),
    ],
)
def test_unsubscribe_forgets_one_subscription(
    endpoint: Endpoint, subscribed: str, channel: str, extra: dict[str, Any], gone: list[Any]
) -> None:
    before = keys(subscribed)
    action = {"type": "logux/unsubscribe", "channel": channel, "node": subscribed, **extra}
    assert notice(endpoint, action) == ["approved", "processed"]
    assert keys(subscribed) == sorted(set(before) - {subscription_key(*gone)})
    assert LoguxSubscription.objects.filter(node_id__endswith=":other:t").count() == 1


def test_unsubscribe_from_a_derived_channel(endpoint: Endpoint, subscribed: str) -> None:
    project = Project.objects.get()
    action = {"type": "logux/unsubscribe", "channel": f"projects/{project.pk}/tasks", "node": subscribed}
    assert notice(endpoint, action) == ["approved", "processed"]
    assert len(keys(subscribed)) == 2


def test_unknown_channels_and_bad_filters_forget_nothing(endpoint: Endpoint, subscribed: str) -> None:
    for extra in ({"channel": "nothing/here"}, {"channel": "tasks", "filter": {"secret": "x"}}):
        assert notice(endpoint, {"type": "logux/unsubscribe", "node": subscribed, **extra}) == ["approved", "processed"]
    assert len(keys(subscribed)) == 3


def test_disconnect_forgets_every_subscription_of_the_node(endpoint: Endpoint, subscribed: str) -> None:
    assert notice(endpoint, {"type": "logux_sync/disconnected", "node": subscribed}) == ["approved", "processed"]
    assert keys(subscribed) == []
    assert LoguxSubscription.objects.count() == 1  # the other node keeps its own


def test_only_a_logux_server_may_send_the_notices(endpoint: Endpoint, subscribed: str) -> None:
    user_id = subscribed.split(":")[0]
    for action in (
        {"type": "logux_sync/disconnected", "node": subscribed},
        {"type": "logux/unsubscribe", "channel": "tasks/t1", "node": subscribed},
    ):
        assert notice(endpoint, action, meta_id=f"9 {user_id}:c:t 1") == ["forbidden"]
    assert notice(endpoint, {"type": "logux_sync/disconnected"}) == ["forbidden"]  # no node
    assert len(keys(subscribed)) == 3


# ---- manage.py logux_server -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "supports", "expected"),
    [("1.0.0", "^1.0.0", (1, 1)), ("3.2.1", ">=2.0.0", (3, 2)), ("2.0.0", "^1.0.0 || ^2.0.0", (2, 1))],
)
def test_subprotocols_map_to_logux_numbers(subprotocol: str, supports: str, expected: tuple[int, int]) -> None:
    assert bridge_subprotocols(subprotocol, supports) == expected


def test_a_range_without_a_whole_major_is_refused() -> None:
    with pytest.raises(CommandError, match=r"N\.0\.0"):
        bridge_subprotocols("1.2.0", "^1.2.0")


def test_command_names_missing_node() -> None:
    with pytest.raises(CommandError, match=r"Node\.js"):
        call_command("logux_server", node="no-such-node-binary")


@override_settings(LOGUX_SYNC={"SECRET": "s"})
def test_command_names_the_npm_command_when_packages_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(logux_server, "BRIDGE_DIR", tmp_path)
    with pytest.raises(CommandError, match=re.escape(f"npm ci --omit=dev --prefix {tmp_path}")):
        call_command("logux_server")


@override_settings(LOGUX_SYNC={"SECRET": "s", "URLS": ["http://127.0.0.1:4000/"]})
def test_command_starts_node_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(logux_server.os, "execve", lambda *args: calls.append(args))
    if not (logux_server.BRIDGE_DIR / "node_modules" / "@logux" / "server").is_dir():
        pytest.skip("bridge packages are not installed")
    call_command("logux_server", backend="http://127.0.0.1:8001/logux/")
    ((_, argv, env),) = calls
    assert argv[1].endswith("bridge.mjs")
    assert "--backend=http://127.0.0.1:8001/logux/" in argv and "--port=4000" in argv
    assert "--subprotocol=1" in argv and "--min-subprotocol=1" in argv
    assert env["LOGUX_CONTROL_SECRET"] == "s" and not any("s" == a.split("=")[-1] for a in argv)
