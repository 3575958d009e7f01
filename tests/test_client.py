"""add(), add_batch(), undo() and send_back() against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

import logux_sync
from logux_sync import ActionCommand, Meta
from logux_sync.client import build_undo, close_session, send_back, undo
from logux_sync.exceptions import ImproperlyConfigured, LoguxServerError

META = Meta({"id": "1700000000000 10:c1:t1 3", "time": 1700000000000})


class FakeLogux(ThreadingHTTPServer):
    """Records every POST and answers it with `status`; counts accepted TCP connections."""

    daemon_threads = True

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.delay = 0.0  # seconds to wait before answering, like a slow Logux server
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        self.connections += 1
        return accepted

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request["body"]) for request in self.requests]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Logux server's control API
    server: FakeLogux

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.status  # read once: a test may change it meanwhile
        if self.server.delay:
            time.sleep(self.server.delay)
        self.server.requests.append(
            {"body": raw.decode(), "content_type": self.headers["Content-Type"], "status": status}
        )
        text = b"Wrong secret" if status == 403 else b"OK"
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running(status: int = 200) -> Iterator[FakeLogux]:
    server = FakeLogux(status)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    close_session()
    yield
    close_session()


@pytest.fixture
def logux() -> Iterator[FakeLogux]:
    with running() as server, override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [server.url]}):
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ---- the request -------------------------------------------------------------------------


def test_add_posts_one_action_command(logux: FakeLogux) -> None:
    logux_sync.add({"type": "users/name", "payload": {"userId": "10", "name": "Ann"}}, {"channels": ["users/10"]})
    [request] = logux.requests
    assert request["content_type"] == "application/json"
    assert json.loads(request["body"]) == {
        "version": 4,
        "secret": "secret",
        "commands": [
            {
                "command": "action",
                "action": {"type": "users/name", "payload": {"userId": "10", "name": "Ann"}},
                "meta": {"channels": ["users/10"]},
            }
        ],
    }


def test_body_has_sorted_keys(logux: FakeLogux) -> None:
    logux_sync.add({"type": "t", "z": 1, "a": {"y": 2, "b": 3}}, {"users": ["1"], "channels": ["c"]})
    raw = logux.requests[0]["body"]
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    assert raw.index('"commands"') < raw.index('"secret"') < raw.index('"version"')
    assert '"action":{"a":{"b":3,"y":2},"type":"t","z":1}' in raw


def test_add_without_meta_sends_an_empty_meta(logux: FakeLogux) -> None:
    logux_sync.add({"type": "ping"})
    assert logux.bodies()[0]["commands"] == [{"command": "action", "action": {"type": "ping"}, "meta": {}}]


def test_add_batch_sends_every_pair_in_one_request(logux: FakeLogux) -> None:
    logux_sync.add_batch([({"type": "a"}, {"users": ["1"]}), ({"type": "b"}, None)])
    [body] = logux.bodies()
    assert [(c["action"]["type"], c["meta"]) for c in body["commands"]] == [("a", {"users": ["1"]}), ("b", {})]


def test_add_batch_of_nothing_sends_nothing(logux: FakeLogux) -> None:
    logux_sync.add_batch([])
    assert logux.requests == []


def test_add_without_a_secret_fails_before_sending(logux: FakeLogux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGUX_CONTROL_SECRET", raising=False)
    with override_settings(LOGUX_SYNC={"URLS": [logux.url]}):
        with pytest.raises(ImproperlyConfigured, match="SECRET"):
            logux_sync.add({"type": "a"})
    assert logux.requests == []


def test_every_configured_server_receives_the_batch() -> None:
    with running() as one, running() as two, running() as three:
        with override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [one.url, two.url, three.url]}):
            logux_sync.add_batch([({"type": "a"}, None), ({"type": "b"}, None)])
    bodies = [server.bodies() for server in (one, two, three)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert len(bodies[0]) == 1 and len(bodies[0][0]["commands"]) == 2


def test_urls_from_a_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with running() as one, running() as two:
        monkeypatch.setenv("LOGUX_URL", f"{one.url},{two.url}")
        with override_settings(LOGUX_SYNC={"SECRET": "secret"}):
            logux_sync.add({"type": "a"})
    assert len(one.requests) == len(two.requests) == 1


def test_a_failing_server_does_not_stop_the_others() -> None:
    with running(500) as broken, running() as healthy:
        with override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [broken.url, healthy.url]}):
            with pytest.raises(LoguxServerError) as info:
                logux_sync.add({"type": "a"})
    assert len(healthy.requests) == 1
    assert info.value.url == broken.url


# ---- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 500])
def test_error_status_raises_naming_url_and_status(status: int) -> None:
    with running(status) as server, override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [server.url]}):
        with pytest.raises(LoguxServerError) as info:
            logux_sync.add({"type": "a"})
    assert info.value.status == status
    assert server.url in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    if status == 403:
        assert "Wrong secret" in str(info.value)


def test_refused_connection_raises_naming_url() -> None:
    url = closed_port_url()
    with override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [url], "CONNECT_TIMEOUT": 1}):
        with pytest.raises(LoguxServerError) as info:
            logux_sync.add({"type": "a"})
    assert info.value.status is None
    assert url in str(info.value)
    assert "ConnectionError" in str(info.value)


def test_read_timeout_is_honoured() -> None:
    # A socket that listens but never accepts: the connection opens (backlog), no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with override_settings(LOGUX_SYNC={"SECRET": "secret", "URLS": [url], "READ_TIMEOUT": 0.3}):
            start = time.monotonic()
            with pytest.raises(LoguxServerError) as info:
                logux_sync.add({"type": "a"})
            elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2
    assert url in str(info.value)
    assert "Timeout" in str(info.value)


# ---- keep-alive --------------------------------------------------------------------------


def test_session_reuses_one_connection(logux: FakeLogux) -> None:
    logux_sync.add({"type": "a"})
    logux_sync.add({"type": "b"})
    assert len(logux.requests) == 2
    assert logux.connections == 1


def test_close_session_drops_the_connection(logux: FakeLogux) -> None:
    logux_sync.add({"type": "a"})
    close_session()
    logux_sync.add({"type": "b"})
    assert logux.connections == 2


# ---- undo and send_back ------------------------------------------------------------------


def test_build_undo_copies_meta_like_the_logux_server() -> None:
    meta = Meta(
        {
            "id": META.id,
            "time": META.time,
            "users": ["10", "20"],
            "nodes": ["20:x:y"],
            "clients": ["30:z"],
            "reasons": ["keep"],
            "channels": ["users/10"],
            "excludeClients": ["40:w"],
            "subprotocol": "1.0.0",
            "added": 5,
        }
    )
    action = {"type": "users/name", "payload": {"name": "x"}}
    undo_action, undo_meta = build_undo(action, meta, "denied", {"field": "name"})
    assert undo_action == {
        "action": action,
        "field": "name",
        "id": META.id,
        "reason": "denied",
        "type": "logux/undo",
    }
    assert undo_meta == {
        "status": "processed",
        "users": ["10", "20"],
        "nodes": ["20:x:y"],
        "clients": ["30:z", "10:c1"],
        "reasons": ["keep"],
        "channels": ["users/10"],
        "excludeClients": ["40:w"],
    }


def test_build_undo_copies_lists_not_references() -> None:
    channels = ["users/10"]
    meta = Meta({"id": META.id, "channels": channels})
    _, undo_meta = build_undo({"type": "a"}, meta)
    undo_meta["channels"].append("other")
    assert channels == ["users/10"]


def test_build_undo_without_extra_or_targets() -> None:
    undo_action, undo_meta = build_undo({"type": "a"}, META)
    assert undo_action == {"action": {"type": "a"}, "id": META.id, "reason": "error", "type": "logux/undo"}
    assert undo_meta == {"status": "processed", "clients": ["10:c1"]}


def test_extra_cannot_override_the_undo_fields() -> None:
    undo_action, _ = build_undo({"type": "a"}, META, "denied", {"type": "evil", "id": "x", "reason": "y"})
    assert (undo_action["type"], undo_action["id"], undo_action["reason"]) == ("logux/undo", META.id, "denied")


def test_undo_without_extra_is_sent(logux: FakeLogux) -> None:
    undo({"type": "a"}, META)
    [command] = logux.bodies()[0]["commands"]
    assert command["action"] == {"action": {"type": "a"}, "id": META.id, "reason": "error", "type": "logux/undo"}
    assert command["meta"] == {"clients": ["10:c1"], "status": "processed"}


def test_send_back_addresses_the_authors_client(logux: FakeLogux) -> None:
    send_back(META, {"type": "hello"})
    send_back(META, {"type": "hello"}, {"reasons": ["keep"]})
    metas = [body["commands"][0]["meta"] for body in logux.bodies()]
    assert metas == [{"clients": ["10:c1"]}, {"clients": ["10:c1"], "reasons": ["keep"]}]


def handler_calling(method: Callable[[ActionCommand], None]) -> ActionCommand:
    class Handler(ActionCommand):
        action_type = "client-test"

    handler = Handler({"type": "client-test"}, META)
    method(handler)
    return handler


def test_handler_undo_and_send_back(logux: FakeLogux) -> None:
    handler_calling(lambda handler: handler.undo("denied"))
    handler_calling(lambda handler: handler.send_back({"type": "reply"}))
    [undo_command], [reply_command] = (body["commands"] for body in logux.bodies())
    assert undo_command["action"]["reason"] == "denied"
    assert undo_command["action"]["action"] == {"type": "client-test"}
    assert undo_command["meta"]["clients"] == ["10:c1"]
    assert reply_command == {"command": "action", "action": {"type": "reply"}, "meta": {"clients": ["10:c1"]}}
