"""The one endpoint the Logux server calls: validate, check the secret, stream the answers."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import throttle
from .conf import logux_settings
from .engine import run_command
from .protocol import (
    PROTOCOL_VERSION,
    TOO_MANY_ATTEMPTS,
    WRONG_SECRET,
    WRONG_VERSION,
    AuthCommand,
    Command,
    ProtocolError,
    dumps,
    parse_body,
    parse_command,
)
from .registry import Dispatcher, logux

logger = logging.getLogger("logux_sync")


def _text(status: int, body: str) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


# Answers that come before a handler's slow work (access, process, load): written at once.
_AHEAD = frozenset({"resend", "approved"})
_FLUSH_AT = 256


def stream_answers(commands: list[Command], dispatcher: Dispatcher) -> Iterator[bytes]:
    """One JSON array, written as the answers happen so the Logux server can act on each at once.

    `resend` and `approved` go out the moment they exist: a handler's slow work follows them. Other
    answers are produced back to back and are gathered, encoded together and written when the command
    ends (with the closing bracket after the last one), or every few hundred answers of a large load:
    one write per answer would cost more than the answer."""
    opening = True
    held: list[dict[str, object]] = []

    def chunk(items: list[dict[str, object]], closing: bool = False) -> bytes:
        nonlocal opening
        body = dumps(items)[1:-1].encode() if items else b""
        start = b"[" if opening else (b"," if body else b"")
        opening = False
        return start + body + (b"]" if closing else b"")

    last = len(commands) - 1
    for index, command in enumerate(commands):
        for item in run_command(command, dispatcher):
            held.append(item)
            if item["answer"] in _AHEAD or len(held) >= _FLUSH_AT:
                yield chunk(held)
                held = []
        if held and index != last:
            yield chunk(held)
            held = []
    yield chunk(held, closing=True)


def secret_matches(given: str, expected: str) -> bool:
    """Compare in constant time."""
    # JSON may carry a lone surrogate ("\ud800"), which strict UTF-8 cannot encode.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class LoguxView(View):
    """POST-only endpoint speaking Logux back-end protocol v4."""

    http_method_names = ["post"]
    dispatcher: Dispatcher = logux

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # The Logux server authenticates with the shared secret, not a CSRF token. Exempting the
        # finished view once costs nothing per request (method_decorator rebuilds a wrapper each time).
        return csrf_exempt(super().as_view(**initkwargs))

    def post(self, request: HttpRequest) -> HttpResponseBase:
        limit = logux_settings.MAX_BODY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return _text(413, "Body is too large")
        raw = request.read(limit + 1)
        if len(raw) > limit:
            return _text(413, "Body is too large")
        try:
            body = parse_body(raw)
        except ProtocolError as exc:
            return _text(400, str(exc))
        if body.version != PROTOCOL_VERSION:
            return _text(400, WRONG_VERSION)
        ip = request.META.get("REMOTE_ADDR", "")
        if throttle.is_locked(ip):
            return _text(429, TOO_MANY_ATTEMPTS)
        expected = logux_settings.SECRET
        if not expected:
            logger.error("logux_sync: LOGUX_SYNC['SECRET'] is not set; refusing the Logux server")
            return _text(503, "Logux secret is not configured on the back end")
        if not secret_matches(body.secret, expected):
            throttle.remember_wrong_secret(ip)
            logger.warning("logux_sync: wrong secret from %s", ip)
            return _text(403, WRONG_SECRET)
        if len(body.commands) > logux_settings.MAX_COMMANDS:
            return _text(400, f"Too many commands (at most {logux_settings.MAX_COMMANDS})")
        try:
            commands = [parse_command(raw_command) for raw_command in body.commands]
        except ProtocolError as exc:
            return _text(400, f"Wrong command: {exc}")
        if all(isinstance(command, AuthCommand) for command in commands):
            # Nothing to stream: an auth answer is ready at once, and one plain response is cheaper.
            return HttpResponse(b"".join(stream_answers(commands, self.dispatcher)), content_type="application/json")
        response = StreamingHttpResponse(stream_answers(commands, self.dispatcher), content_type="application/json")
        response["Cache-Control"] = "no-store"
        return response
