"""The example project is safe to expose as a user runs it: no test-only handlers, DEBUG off, no
client-supplied text in our answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.servers import example_env, migrate, python_json

# Run with the example's settings in a fresh process: what a user gets from `make example`.
PROBE = """
import json
from django.conf import settings
from django.test import Client
from logux_sync.registry import logux
secret = settings.LOGUX_SYNC["SECRET"]
commands = [
    {"command": "auth", "authId": "a1", "userId": "1", "token": "1:good", "subprotocol": "1.0.0",
     "cookie": {}, "headers": {"error": "INJECTED-BY-CLIENT"}},
    {"command": "action", "action": {"type": "users/clean"}, "meta": {"id": "1 1:c:t 0", "time": 1}},
]
body = json.dumps({"version": 4, "secret": secret, "commands": commands})
response = Client().post("/logux/", body, content_type="application/json", HTTP_HOST="127.0.0.1")
text = b"".join(response.streaming_content) if response.streaming else response.content
print(json.dumps({
    "debug": settings.DEBUG,
    "apps": settings.INSTALLED_APPS,
    "clean": logux.actions.find("users/clean") is not None,
    "status": response.status_code,
    "body": text.decode(),
}))
"""


def probe(tmp_path: Path, **extra: str) -> dict[str, Any]:
    env = example_env(tmp_path, **extra)
    env.pop("DJANGO_DEBUG")  # the example's own default
    migrate(env)
    return python_json(env, PROBE)  # type: ignore[no-any-return]


def test_the_example_as_run_has_no_conformance_handlers_and_no_debug(tmp_path: Path) -> None:
    seen = probe(tmp_path)
    assert seen["debug"] is False
    assert "conformance" not in seen["apps"] and not seen["clean"]
    assert seen["status"] == 200
    assert "INJECTED-BY-CLIENT" not in seen["body"]
    assert '"denied"' in seen["body"] and '"unknownAction"' in seen["body"]


def test_the_conformance_handlers_come_only_with_their_flag(tmp_path: Path) -> None:
    seen = probe(tmp_path, LOGUX_CONFORMANCE="1")
    assert "conformance" in seen["apps"] and seen["clean"]
