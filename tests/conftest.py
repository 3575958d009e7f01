from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from logux_sync.testing import handlers_restored

# Checks both stacks run live outside the test modules: keep pytest's detailed assertion messages.
pytest.register_assert_rewrite("tests.e2e.matrix", "tests.e2e.scenarios")


def body(*commands: dict[str, Any], secret: str = "secret", version: int = 4) -> dict[str, Any]:
    return {"version": version, "secret": secret, "commands": list(commands)}


def action_command(action: dict[str, Any], meta_id: str = "1 10:c1:t1 0", time: float = 1, **extra: Any) -> dict:
    return {"command": "action", "action": action, "meta": {"id": meta_id, "time": time, **extra}}


def auth_command(user_id: str = "10", token: str | None = "t", **extra: Any) -> dict[str, Any]:
    command = {
        "command": "auth",
        "authId": "a1",
        "userId": user_id,
        "subprotocol": "1.0.0",
        "cookie": {},
        "headers": {},
    }
    if token is not None:
        command["token"] = token
    command.update(extra)
    return command


class Endpoint:
    """Posts bodies to the endpoint through Django's test client and reads streamed answers."""

    def __init__(self, client: Client):
        self.client = client

    def post(self, data: Any, raw: bytes | None = None, ip: str = "127.0.0.1") -> tuple[int, Any]:
        payload = raw if raw is not None else json.dumps(data).encode()
        response = self.client.post("/logux/", payload, content_type="application/json", REMOTE_ADDR=ip)
        if response.streaming:
            text = b"".join(response.streaming_content).decode()
            return response.status_code, json.loads(text)
        if response["Content-Type"] == "application/json":  # a body of auth commands only
            return response.status_code, json.loads(response.content)
        return response.status_code, response.content.decode()

    def answers(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        status, answers = self.post(body(*commands))
        assert status == 200, answers
        return answers


@pytest.fixture
def endpoint(client: Client) -> Endpoint:
    return Endpoint(client)


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts with an empty cache and restores the registry it found."""
    cache.clear()
    with handlers_restored():
        yield
    cache.clear()
