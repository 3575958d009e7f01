"""Under gunicorn the endpoint streams each answer as it happens: `approved` long before `processed`."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .servers import example_env, gunicorn, migrate

pytestmark = pytest.mark.e2e

SLEEP = 1.5
ACTION_ID = "1700000000000 10:c1:t1 0"
BODY = {"version": 4, "secret": "parole"}


def post(host: str | None, port: int | None, path: str, payload: str) -> bytes:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("POST", path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


def test_approved_arrives_before_the_slow_process_ends(tmp_path: Path) -> None:
    env = example_env(tmp_path, EXAMPLE_TEST_SUPPORT="1")
    migrate(env)
    command = {
        "command": "action",
        "action": {"type": "test/slow", "seconds": SLEEP},
        "meta": {"id": ACTION_ID, "time": 1700000000000},
    }
    payload = json.dumps({**BODY, "commands": [command]})
    # One worker, warmed up by a first request, so the timing measures streaming, not start-up.
    with gunicorn(env, workers=1, name="gunicorn-streaming") as url:
        parts = urlsplit(url)
        assert post(parts.hostname, parts.port, parts.path, json.dumps({**BODY, "commands": []})) == b"[]"
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            sent = time.monotonic()
            connection.request("POST", parts.path, payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Transfer-Encoding") == "chunked"
            received = b""
            arrived: dict[str, float] = {}
            # read1() returns what has arrived so far, chunk by chunk, like the Logux server's parser.
            while chunk := response.read1(65536):
                received += chunk
                for answer in ("approved", "processed"):
                    if f'"answer":"{answer}"'.encode() in received and answer not in arrived:
                        arrived[answer] = time.monotonic() - sent
        finally:
            connection.close()

    assert json.loads(received) == [
        {"answer": "approved", "id": ACTION_ID},
        {"answer": "processed", "id": ACTION_ID},
    ]
    assert arrived["approved"] < 1.0, arrived
    assert arrived["processed"] >= SLEEP, arrived
    assert arrived["processed"] - arrived["approved"] >= SLEEP - 0.5, arrived
