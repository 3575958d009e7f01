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
from .encoded import join
from .engine import WRITE_NOW, run_steps
from .protocol import (
    PROTOCOL_VERSION,
    TOO_MANY_ATTEMPTS,
    WRONG_BODY,
    WRONG_SECRET,
    WRONG_VERSION,
    Command,
    ProtocolError,
    parse_body,
    parse_command,
)
from .registry import Dispatcher, logux

logger = logging.getLogger("logux_sync")


def _text(status: int, body: str) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


# A large load is written every this many answers: one write per answer would cost more than the answer.
_FLUSH_AT = 256


def stream_answers(commands: list[Command], dispatcher: Dispatcher) -> Iterator[bytes]:
    """One JSON array in chunks, each chunk to be written as soon as it is yielded.

    The engine says where a handler hook that may be slow comes next (after `resend`, `approved`):
    what is held goes out then, so the Logux server can act on it at once. Answers produced back to
    back are encoded and written together, and the last chunk carries the closing bracket (and is the
    only one that ends with it, as every answer is an object)."""
    opening = True
    held: list[Any] = []

    def chunk(items: list[Any], closing: bool = False) -> bytes:
        nonlocal opening
        body = join(items).encode() if items else b""
        start = b"[" if opening else (b"," if body else b"")
        opening = False
        return start + body + (b"]" if closing else b"")

    last = len(commands) - 1
    for index, command in enumerate(commands):
        for step in run_steps(command, dispatcher):
            if step is WRITE_NOW:
                if held:
                    yield chunk(held)
                    held = []
                continue
            held.append(step)
            if len(held) >= _FLUSH_AT:
                yield chunk(held)
                held = []
        if held and index != last:  # the next command's hooks may be slow
            yield chunk(held)
            held = []
    yield chunk(held, closing=True)


def _then(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    # A generator, not itertools.chain: closing the response closes `rest`, so handlers' finally_ run.
    yield first
    yield from rest


def respond(commands: list[Command], dispatcher: Dispatcher) -> HttpResponseBase:
    """Run the commands up to their first possibly slow hook, then stream only if one is left.

    When no hook was left (auth, an action with no process(), a forbidden one), the whole array is
    ready: one plain response, which the server writes in one piece with a Content-Length, instead of
    chunked framing with a write per chunk and a terminating chunk."""
    chunks = stream_answers(commands, dispatcher)
    first = next(chunks)
    if first.endswith(b"]"):
        whole = HttpResponse(first, content_type="application/json")
        # Set here, not left to CommonMiddleware: without it the server would frame this in chunks too.
        whole["Content-Length"] = str(len(first))
        return whole
    streamed = StreamingHttpResponse(_then(first, chunks), content_type="application/json")
    streamed["Cache-Control"] = "no-store"
    return streamed


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
        # The Logux server authenticates with the shared secret, not a CSRF token. (Decorating the
        # view function, not dispatch(): method_decorator() wraps the method anew on every request.)
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
        try:
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
        except throttle.LockUnavailable as exc:
            # Unknown whether the IP is locked out: refuse rather than let guesses through uncounted.
            logger.error("logux_sync: the wrong-secret lock cannot be used (%s); refusing the Logux server", exc)
            return _text(503, "Wrong-secret lock is unavailable")
        if len(body.commands) > logux_settings.MAX_COMMANDS:
            return _text(400, f"Too many commands (at most {logux_settings.MAX_COMMANDS})")
        try:
            commands = [parse_command(raw_command) for raw_command in body.commands]
        except ProtocolError as exc:
            # The protocol has one answer for a body it cannot read; what was wrong goes to the log.
            logger.warning("logux_sync: wrong command from %s: %s", ip, exc)
            return _text(400, WRONG_BODY)
        return respond(commands, self.dispatcher)
