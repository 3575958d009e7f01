from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

import logux_sync
from logux_sync import ActionCommand, ChannelCommand, LoguxProxyException, Meta, Undo
from logux_sync.protocol import TOO_MANY_ATTEMPTS, WRONG_BODY, WRONG_SECRET, WRONG_VERSION

from .conftest import Endpoint, action_command, auth_command, body

pytestmark = pytest.mark.django_db

SECRET_SETTINGS: dict[str, Any] = {"SECRET": "secret", "AUTH_FUNCTION": "tests.test_views.fixture_auth"}


def fixture_auth(user_id: str, token: str | None, cookie: dict, headers: dict) -> bool:
    if headers.get("error"):
        raise LoguxProxyException(headers["error"])
    if headers.get("crash"):
        raise KeyError("boom")
    return token == f"{user_id}:good"


@pytest.fixture(autouse=True)
def _auth_settings() -> Any:
    with override_settings(LOGUX_SYNC=SECRET_SETTINGS):
        yield


def register_echo() -> list[str]:
    calls: list[str] = []

    @logux_sync.register
    class Echo(ActionCommand):
        action_type = "echo"

        def resend(self, action: dict, meta: Meta) -> Any:
            calls.append("resend")
            return action.get("resend")

        def access(self, action: dict, meta: Meta) -> bool:
            calls.append("access")
            if action.get("fail") == "access":
                raise RuntimeError("access broke")
            return bool(action.get("allow", True))

        def process(self, action: dict, meta: Meta) -> None:
            calls.append("process")
            if action.get("fail") == "process":
                raise RuntimeError("process broke")
            if action.get("undo"):
                raise Undo(action["undo"], field="title")

        def finally_(self, action: dict, meta: Meta) -> None:
            calls.append("finally")

    return calls


# ---- envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'{"version":4}', b'{"version":4,"secret":"s","commands":{}}'])
def test_wrong_body(endpoint: Endpoint, raw: bytes) -> None:
    assert endpoint.post(None, raw=raw) == (400, WRONG_BODY)


def test_empty_object_is_a_wrong_body_not_a_500(endpoint: Endpoint) -> None:
    assert endpoint.post({}) == (400, WRONG_BODY)


def test_wrong_version(endpoint: Endpoint) -> None:
    assert endpoint.post(body(version=1000)) == (400, WRONG_VERSION)


def test_wrong_secret(endpoint: Endpoint) -> None:
    assert endpoint.post(body(secret="nope")) == (403, WRONG_SECRET)


def test_get_is_not_allowed(endpoint: Endpoint) -> None:
    assert endpoint.client.get("/logux/").status_code == 405


def test_a_post_goes_through_dispatch_and_needs_no_csrf_token() -> None:
    from django.test import Client, RequestFactory

    from logux_sync.views import LoguxView

    seen: list[str] = []

    class Watched(LoguxView):
        def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(request.method)
            return super().dispatch(request, *args, **kwargs)

    request = RequestFactory().post("/", json.dumps(body()), content_type="application/json")
    assert Watched.as_view()(request).status_code == 200 and seen == ["POST"]
    assert Watched.as_view()(RequestFactory().get("/")).status_code == 405 and seen == ["POST", "GET"]
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/logux/", json.dumps(body()), content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize("urlconf", ["tests.urls", "tests.urls_include"])
def test_both_documented_routings_serve_the_endpoint(endpoint: Endpoint, urlconf: str) -> None:
    # The README's path("logux/", LoguxView.as_view()) and its alternative include("logux_sync.urls").
    register_echo()
    with override_settings(ROOT_URLCONF=urlconf):
        assert endpoint.answers(auth_command(token="10:good"), action_command({"type": "echo"})) == [
            {"answer": "authenticated", "authId": "a1", "subprotocol": "1.0.0"},
            {"answer": "approved", "id": "1 10:c1:t1 0"},
            {"answer": "processed", "id": "1 10:c1:t1 0"},
        ]
        for _ in range(3):
            assert endpoint.post(body(secret="bad")) == (403, WRONG_SECRET)
        assert endpoint.post(body()) == (429, TOO_MANY_ATTEMPTS)
        assert endpoint.client.get("/logux/").status_code == 405


def test_the_lock_is_counted_under_its_documented_key(endpoint: Endpoint) -> None:
    from django.core.cache import caches

    from logux_sync.throttle import cache_key

    endpoint.post(body(secret="bad"), ip="10.0.0.9")
    assert cache_key("10.0.0.9") == "logux_sync:wrong-secret:10.0.0.9"
    assert caches["default"].get(cache_key("10.0.0.9")) == 1


def test_brute_force_lock_per_ip(endpoint: Endpoint) -> None:
    for _ in range(3):
        assert endpoint.post(body(secret="bad"))[0] == 403
    assert endpoint.post(body()) == (429, TOO_MANY_ATTEMPTS)
    assert endpoint.post(body(), ip="10.0.0.2")[0] == 200


def test_brute_force_lock_expires(endpoint: Endpoint) -> None:
    with override_settings(LOGUX_SYNC={**SECRET_SETTINGS, "BRUTE_FORCE_WINDOW": 1}):
        for _ in range(3):
            endpoint.post(body(secret="bad"))
        assert endpoint.post(body())[0] == 429
        import time

        time.sleep(1.2)
        assert endpoint.post(body())[0] == 200


def test_body_size_limit(endpoint: Endpoint) -> None:
    with override_settings(LOGUX_SYNC={**SECRET_SETTINGS, "MAX_BODY_SIZE": 100}):
        status, text = endpoint.post(body(auth_command(headers={"x": "y" * 200})))
    assert status == 413 and "too large" in text


def test_commands_limit(endpoint: Endpoint) -> None:
    with override_settings(LOGUX_SYNC={**SECRET_SETTINGS, "MAX_COMMANDS": 2}):
        status, text = endpoint.post(body(*[auth_command()] * 3))
    assert status == 400 and "Too many commands" in text


def test_a_malformed_command_is_400_wrong_body(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    for command in ({"command": "launch"}, {"command": "action", "action": {"type": "x"}}, {"command": "auth"}):
        assert endpoint.post(body(command)) == (400, "Wrong body")
    assert "wrong command" in caplog.text  # what was wrong, for the developer


@pytest.mark.parametrize("wrong_secret", [False, True])
def test_a_counting_cache_that_fails_is_503_not_500(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, wrong_secret: bool
) -> None:
    """A Redis that is down: whether the IP is locked out is unknown, so the endpoint refuses, clearly."""
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1"}}
    with override_settings(CACHES=caches):
        status, text = endpoint.post(body(secret="wrong" if wrong_secret else "secret"))
    assert (status, text) == (503, "Wrong-secret lock is unavailable")
    assert "wrong-secret lock cannot be used" in caplog.text


def test_missing_secret_setting_is_503_not_500(endpoint: Endpoint) -> None:
    with override_settings(LOGUX_SYNC={"SECRET": ""}):
        assert endpoint.post(body())[0] == 503


def test_empty_commands_stream_an_empty_array(endpoint: Endpoint) -> None:
    assert endpoint.answers() == []


# ---- auth --------------------------------------------------------------------------------


def test_authenticated(endpoint: Endpoint) -> None:
    assert endpoint.answers(auth_command(token="10:good")) == [
        {"answer": "authenticated", "authId": "a1", "subprotocol": "1.0.0"}
    ]


def test_denied(endpoint: Endpoint) -> None:
    assert endpoint.answers(auth_command(token="10:bad")) == [{"answer": "denied", "authId": "a1"}]


def test_wrong_subprotocol(endpoint: Endpoint) -> None:
    assert endpoint.answers(auth_command(token="10:good", subprotocol="0.9.1")) == [
        {"answer": "wrongSubprotocol", "authId": "a1", "supported": "^1.0.0"}
    ]


def test_auth_error_keeps_its_message(endpoint: Endpoint) -> None:
    [answer] = endpoint.answers(auth_command(headers={"error": "Test error"}))
    assert answer == {"answer": "error", "authId": "a1", "details": "Test error"}


def test_auth_crash_is_an_error_answer(endpoint: Endpoint) -> None:
    [answer] = endpoint.answers(auth_command(headers={"crash": True}))
    assert answer["answer"] == "error" and "KeyError" in answer["details"]


def test_malformed_auth_is_an_error_answer(endpoint: Endpoint) -> None:
    [answer] = endpoint.answers({"command": "auth", "authId": "a9", "userId": ["x"]})
    assert answer["answer"] == "error" and answer["authId"] == "a9"


# ---- actions -----------------------------------------------------------------------------


def test_unknown_action(endpoint: Endpoint) -> None:
    assert endpoint.answers(action_command({"type": "nope"})) == [{"answer": "unknownAction", "id": "1 10:c1:t1 0"}]


def test_unknown_channel(endpoint: Endpoint) -> None:
    cmd = action_command({"type": "logux/subscribe", "channel": "nope"})
    assert endpoint.answers(cmd) == [{"answer": "unknownChannel", "id": "1 10:c1:t1 0"}]


def test_non_string_channel_is_unknown(endpoint: Endpoint) -> None:
    cmd = action_command({"type": "logux/subscribe", "channel": {"x": 1}})
    assert endpoint.answers(cmd)[0]["answer"] == "unknownChannel"


def test_full_action_order(endpoint: Endpoint) -> None:
    calls = register_echo()
    answers = endpoint.answers(action_command({"type": "echo", "resend": {"channels": ["a"]}}))
    assert [a["answer"] for a in answers] == ["resend", "approved", "processed"]
    assert answers[0] == {"answer": "resend", "id": "1 10:c1:t1 0", "channels": ["a"]}
    assert calls == ["resend", "access", "process", "finally"]


def test_seed_style_resend_list(endpoint: Endpoint) -> None:
    register_echo()
    answers = endpoint.answers(action_command({"type": "echo", "resend": ["users/1"]}))
    assert answers[0]["channels"] == ["users/1"]


def test_no_resend_answer_when_nothing_to_resend(endpoint: Endpoint) -> None:
    register_echo()
    assert [a["answer"] for a in endpoint.answers(action_command({"type": "echo"}))] == ["approved", "processed"]


def test_forbidden_skips_process(endpoint: Endpoint) -> None:
    calls = register_echo()
    answers = endpoint.answers(action_command({"type": "echo", "allow": False}))
    assert [a["answer"] for a in answers] == ["forbidden"]
    assert calls == ["resend", "access", "finally"]


def test_access_error(endpoint: Endpoint) -> None:
    calls = register_echo()
    [answer] = endpoint.answers(action_command({"type": "echo", "fail": "access"}))
    assert answer["answer"] == "error" and "access broke" in answer["details"]
    assert calls[-1] == "finally"


def test_process_error_after_approved(endpoint: Endpoint) -> None:
    register_echo()
    answers = endpoint.answers(action_command({"type": "echo", "fail": "process"}))
    assert [a["answer"] for a in answers] == ["approved", "error"]
    assert "process broke" in answers[1]["details"]


def test_tracebacks_only_when_enabled(endpoint: Endpoint) -> None:
    register_echo()
    with override_settings(LOGUX_SYNC={**SECRET_SETTINGS, "ERROR_TRACEBACKS": True}):
        answers = endpoint.answers(action_command({"type": "echo", "fail": "process"}))
    assert "Traceback" in answers[1]["details"]
    answers = endpoint.answers(action_command({"type": "echo", "fail": "process"}))
    assert "Traceback" not in answers[1]["details"]


def test_undo_from_process(endpoint: Endpoint) -> None:
    register_echo()
    answers = endpoint.answers(action_command({"type": "echo", "undo": "invalid"}))
    assert [a["answer"] for a in answers] == ["approved", "action", "processed"]
    undo = answers[1]
    assert undo["action"] == {
        "action": {"type": "echo", "undo": "invalid"},
        "field": "title",
        "id": "1 10:c1:t1 0",
        "reason": "invalid",
        "type": "logux/undo",
    }
    assert undo["meta"] == {"clients": ["10:c1"]}


def test_one_failing_command_does_not_stop_the_others(endpoint: Endpoint) -> None:
    register_echo()
    answers = endpoint.answers(
        action_command({"type": "echo", "fail": "access"}, meta_id="1 10:c1:t1 0"),
        action_command({"type": "echo"}, meta_id="2 10:c1:t1 0"),
        auth_command(token="10:good"),
    )
    assert [(a["answer"], a.get("id", a.get("authId"))) for a in answers] == [
        ("error", "1 10:c1:t1 0"),
        ("approved", "2 10:c1:t1 0"),
        ("processed", "2 10:c1:t1 0"),
        ("authenticated", "a1"),
    ]


def test_broken_handler_constructor_is_an_error_answer(endpoint: Endpoint) -> None:
    @logux_sync.register
    class Broken(ActionCommand):
        action_type = "broken"

        def __init__(self, *args: Any) -> None:
            raise RuntimeError("constructor")

    [answer] = endpoint.answers(action_command({"type": "broken"}))
    assert answer["answer"] == "error" and "constructor" in answer["details"]


def test_bad_meta_is_an_error_for_that_id(endpoint: Endpoint) -> None:
    [answer] = endpoint.answers({"command": "action", "action": {"type": "x"}, "meta": {"id": "nonsense"}})
    assert answer["answer"] == "error" and answer["id"] == "nonsense"


# ---- channels ----------------------------------------------------------------------------


def register_channel(result: Any = None, allow: bool = True) -> None:
    @logux_sync.register
    class Things(ChannelCommand):
        channel_pattern = "things/:owner/:kind"

        def access(self, action: dict, meta: Meta) -> bool:
            return allow and self.params["owner"] == meta.user_id

        def load(self, action: dict, meta: Meta) -> Any:
            if isinstance(result, Exception):
                raise result
            return result


def subscribe(channel: str = "things/10/books", **extra: Any) -> dict:
    return action_command({"type": "logux/subscribe", "channel": channel, **extra})


def test_subscribe_loads_one_action_for_the_node(endpoint: Endpoint) -> None:
    register_channel({"type": "thing", "value": 1})
    answers = endpoint.answers(subscribe())
    assert answers == [
        {"answer": "approved", "id": "1 10:c1:t1 0"},
        {
            "answer": "action",
            "id": "1 10:c1:t1 0",
            "action": {"type": "thing", "value": 1},
            "meta": {"nodes": ["10:c1:t1"]},
        },
        {"answer": "processed", "id": "1 10:c1:t1 0"},
    ]


def test_subscribe_loads_pairs_with_meta(endpoint: Endpoint) -> None:
    register_channel([[{"type": "a"}, {"time": 5}], ({"type": "b"}, {})])
    answers = endpoint.answers(subscribe())
    assert [a["meta"] for a in answers if a["answer"] == "action"] == [
        {"nodes": ["10:c1:t1"], "time": 5},
        {"nodes": ["10:c1:t1"]},
    ]


def test_subscribe_loads_a_list(endpoint: Endpoint) -> None:
    register_channel([{"type": "a"}, {"type": "b"}])
    answers = endpoint.answers(subscribe())
    assert [a["action"]["type"] for a in answers if a["answer"] == "action"] == ["a", "b"]


def test_subscribe_forbidden(endpoint: Endpoint) -> None:
    register_channel({"type": "a"})
    assert [a["answer"] for a in endpoint.answers(subscribe("things/20/books"))] == ["forbidden"]


def test_subscribe_load_error(endpoint: Endpoint) -> None:
    register_channel(LoguxProxyException("Test error"))
    answers = endpoint.answers(subscribe())
    assert answers[1] == {"answer": "error", "id": "1 10:c1:t1 0", "details": "Test error"}


def test_subscribe_wrong_load_result(endpoint: Endpoint) -> None:
    register_channel([42])
    answers = endpoint.answers(subscribe())
    assert answers[1]["answer"] == "error" and "WrongLoadResult" in answers[1]["details"]


def test_subscribe_undo_not_found(endpoint: Endpoint) -> None:
    register_channel(Undo("notFound"))
    answers = endpoint.answers(subscribe())
    assert [a["answer"] for a in answers] == ["approved", "action", "processed"]
    assert answers[1]["action"]["reason"] == "notFound"
    assert answers[1]["action"]["type"] == "logux/undo"


def test_regex_channel_pattern(endpoint: Endpoint) -> None:
    @logux_sync.register
    class Regex(ChannelCommand):
        channel_pattern = r"^rooms/(?P<room>\d+)$"

        def access(self, action: dict, meta: Meta) -> bool:
            return self.params == {"room": "5"}

    assert endpoint.answers(subscribe("rooms/5"))[0]["answer"] == "approved"
    assert endpoint.answers(subscribe("rooms/x"))[0]["answer"] == "unknownChannel"


def test_answers_are_streamed_with_sorted_keys(endpoint: Endpoint) -> None:
    register_channel({"type": "t", "payload": {"z": 1, "a": 2}})
    response = endpoint.client.post("/logux/", json.dumps(body(subscribe())), content_type="application/json")
    assert response.streaming
    chunks = [c for c in response.streaming_content]
    # approved at once (load() follows it); the loaded actions and processed together with the bracket.
    assert chunks[0] == b'[{"answer":"approved","id":"1 10:c1:t1 0"}'
    assert (
        len(chunks) == 2
        and chunks[1].startswith(b',{"action":')
        and chunks[1].endswith(b'{"answer":"processed","id":"1 10:c1:t1 0"}]')
    )
    assert b'"payload":{"a":2,"z":1},"type":"t"' in b"".join(chunks)


def post_raw(endpoint: Endpoint, *commands: dict[str, Any]) -> Any:
    return endpoint.client.post("/logux/", json.dumps(body(*commands)), content_type="application/json")


def test_approved_and_resend_are_written_before_the_hooks_after_them_run(endpoint: Endpoint) -> None:
    calls = register_echo()
    response = post_raw(endpoint, action_command({"type": "echo", "resend": ["a"]}))
    assert response.streaming
    chunks = iter(response.streaming_content)
    assert next(chunks) == b'[{"answer":"resend","channels":["a"],"id":"1 10:c1:t1 0"}'
    assert calls == ["resend"]
    assert next(chunks) == b',{"answer":"approved","id":"1 10:c1:t1 0"}'
    assert calls == ["resend", "access"]
    assert b"".join(chunks) == b',{"answer":"processed","id":"1 10:c1:t1 0"}]'
    assert calls == ["resend", "access", "process", "finally"]


def test_without_a_hook_left_to_run_the_answers_are_one_plain_response(endpoint: Endpoint) -> None:
    @logux_sync.register
    class Relay(ActionCommand):  # access only: the Logux server relays the action, nothing to process
        action_type = "relay"

        def access(self, action: dict, meta: Meta) -> bool:
            return True

    for commands in ([action_command({"type": "relay"})], [auth_command()], [action_command({"type": "nope"})]):
        response = post_raw(endpoint, *commands)
        assert not response.streaming
        assert response["Content-Length"] == str(len(response.content))
    assert json.loads(post_raw(endpoint, action_command({"type": "relay"})).content) == [
        {"answer": "approved", "id": "1 10:c1:t1 0"},
        {"answer": "processed", "id": "1 10:c1:t1 0"},
    ]


def test_forbidden_is_one_plain_response(endpoint: Endpoint) -> None:
    register_echo()
    response = post_raw(endpoint, action_command({"type": "echo", "allow": False}))
    assert not response.streaming
    assert json.loads(response.content) == [{"answer": "forbidden", "id": "1 10:c1:t1 0"}]


def streamed(count: int, fail: bool = False) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield {"type": "item", "index": index}
    if fail:
        raise RuntimeError("disk gone")


def test_subscribe_load_may_be_a_generator(endpoint: Endpoint) -> None:
    register_channel(streamed(2))
    answers = endpoint.answers(subscribe())
    assert [a["answer"] for a in answers] == ["approved", "action", "action", "processed"]
    assert [a["action"]["index"] for a in answers if a["answer"] == "action"] == [0, 1]
    assert all(a["meta"] == {"nodes": ["10:c1:t1"]} for a in answers if a["answer"] == "action")


def test_generator_load_failing_part_way_keeps_what_it_sent_and_answers_error(endpoint: Endpoint) -> None:
    register_channel(streamed(3, fail=True))
    answers = endpoint.answers(subscribe())
    assert [a["answer"] for a in answers] == ["approved", "action", "action", "action", "error"]
    assert "disk gone" in answers[-1]["details"]
