"""Runs parsed commands through the registered handlers and yields protocol answers as they happen."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator
from typing import Any

from .auth import subprotocol_supported
from .client import build_undo
from .commands import ActionCommand, BaseCommand, ChannelCommand, LoadResult
from .conf import logux_settings
from .encoded import AnswerWriter, Encoded, EncodedPair, EncodedPairs, answer_text, auth_answer_text
from .exceptions import LoguxProxyException, Undo, WrongLoadResult
from .protocol import (
    ActionCommandData,
    AuthCommand,
    BadCommand,
    Command,
    Meta,
    RawMeta,
    answer,
    auth_answer,
)
from .registry import Dispatcher, logux

logger = logging.getLogger("logux_sync")

Answer = dict[str, Any]

# What run_steps() yields between answers where a handler hook that may be slow is about to run: the
# answers so far must reach the Logux server now (it acts on `approved` before `processed` arrives).
WRITE_NOW = None
Step = Answer | Encoded | None


def error_details(exc: BaseException) -> str:
    """What an `error` answer says: the message, plus the traceback when ERROR_TRACEBACKS is on."""
    if isinstance(exc, LoguxProxyException):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    if logux_settings.ERROR_TRACEBACKS:
        text = "".join(traceback.format_exception(exc))
    return text


def _error(id: str, exc: BaseException, where: str) -> Answer:
    if not isinstance(exc, LoguxProxyException):
        logger.error("logux_sync: %s failed for %s", where, id, exc_info=exc)
    return answer("error", id, details=error_details(exc))


def run_auth(command: AuthCommand) -> Iterator[Step]:
    supports = logux_settings.SUPPORTS
    if not subprotocol_supported(command.subprotocol, supports):
        yield auth_answer("wrongSubprotocol", command.auth_id, supported=supports)
        return
    try:
        ok = logux_settings.auth_function(command.user_id, command.token, command.cookie, command.headers)
    except Exception as exc:
        if not isinstance(exc, LoguxProxyException):
            logger.error("logux_sync: auth failed for user %r", command.user_id, exc_info=exc)
        yield auth_answer("error", command.auth_id, details=error_details(exc))
        return
    if ok:
        yield auth_answer_text("authenticated", command.auth_id, logux_settings.SUBPROTOCOL)
    else:
        yield auth_answer_text("denied", command.auth_id)


def _undo_answer(handler: BaseCommand, undo: Undo) -> Answer:
    # The same `logux/undo` as client.undo() sends, answered to the author's client only.
    meta = handler.meta
    action, _ = build_undo(handler.action, meta, undo.reason, undo.extra)
    return answer("action", meta.id, action=action, meta={"clients": [meta.client_id]})


def _finally(handler: BaseCommand) -> None:
    try:
        handler.finally_(handler.action, handler.meta)
    except Exception:
        logger.exception("logux_sync: finally_() failed for %s", handler.meta.id)


def _overrides(handler: BaseCommand, base: type[BaseCommand], hook: str) -> bool:
    """Does the handler's class replace the base class's no-op `hook`? Only then can it be slow."""
    return getattr(type(handler), hook) is not getattr(base, hook)


def _access(handler: BaseCommand) -> tuple[bool, Step]:
    """Whether the handler approved, and the answer that says so (`approved`, `forbidden`, `error`)."""
    id = handler.meta.id
    try:
        allowed = handler.access(handler.action, handler.meta)
    except Undo:
        allowed = False
    except Exception as exc:
        return False, _error(id, exc, "access()")
    if allowed:
        return True, answer_text("approved", id)
    return False, answer_text("forbidden", id)


def run_action(command: ActionCommandData, dispatcher: Dispatcher = logux) -> Iterator[Step]:
    action, meta = command.action, command.meta
    handler_class = dispatcher.actions.find(action["type"])
    if handler_class is None:
        yield answer_text("unknownAction", meta.id)
        return
    handler: ActionCommand = handler_class(action, meta, command.headers)
    try:
        try:
            targets = handler.resend_targets()
        except Exception as exc:
            yield _error(meta.id, exc, "resend()")
            return
        if targets:
            yield answer("resend", meta.id, **targets)
            if _overrides(handler, BaseCommand, "access"):
                yield WRITE_NOW
        approved, access = _access(handler)
        yield access
        if not approved:
            return
        if _overrides(handler, ActionCommand, "process"):
            yield WRITE_NOW
        try:
            handler.process(action, meta)
        except Undo as undo:
            yield _undo_answer(handler, undo)
        except Exception as exc:
            yield _error(meta.id, exc, "process()")
            return
        yield answer_text("processed", meta.id)
    finally:
        _finally(handler)


def normalize_load(
    result: LoadResult, meta: Meta
) -> Iterator[tuple[dict[str, Any], RawMeta] | EncodedPair | EncodedPairs]:
    """load() may return an action, a list of actions, `[action, meta]` pairs, or an iterator of
    either (a generator streams a large load instead of building it whole). Checked item by item;
    `EncodedPair`s and `EncodedPairs` (see logux_sync.encoded) pass as they are."""
    if not result:
        return
    if isinstance(result, dict):
        result = [result]
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise WrongLoadResult(f"load() returned {type(result).__name__}; expected an action, a list or pairs")
    nodes = [meta.node_id]
    for item in result:
        extra: RawMeta
        if isinstance(item, (EncodedPair, EncodedPairs)):
            yield item
            continue
        if isinstance(item, dict):
            action, extra = item, {}
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, dict) for x in item):
            action, extra = item[0], item[1]
        else:
            raise WrongLoadResult(f"load() returned {item!r}; items must be actions or [action, meta] pairs")
        if not isinstance(action.get("type"), str):
            raise WrongLoadResult(f"load() returned an action without a string type: {action!r}")
        yield action, {"nodes": nodes, **extra}


def run_subscribe(command: ActionCommandData, dispatcher: Dispatcher = logux) -> Iterator[Step]:
    action, meta = command.action, command.meta
    channel = action.get("channel")
    handler_class = dispatcher.channels.find(channel) if isinstance(channel, str) else None
    if handler_class is None:
        yield answer_text("unknownChannel", meta.id)
        return
    handler: ChannelCommand = handler_class(action, meta, command.headers)
    try:
        approved, access = _access(handler)
        yield access
        if not approved:
            return
        if _overrides(handler, ChannelCommand, "load"):
            yield WRITE_NOW
        try:
            # Lazily: a load that fails part way has sent the actions before the failure, then `error`.
            write = AnswerWriter(meta.id, meta.node_id)
            for loaded in normalize_load(handler.load(action, meta), meta):
                if isinstance(loaded, EncodedPairs):
                    yield write.many(loaded)
                    yield WRITE_NOW  # a chunk of rows: write it out
                elif isinstance(loaded, EncodedPair):
                    yield write(loaded)
                else:
                    loaded_action, loaded_meta = loaded
                    yield answer("action", meta.id, action=loaded_action, meta=loaded_meta)
        except Undo as undo:
            yield _undo_answer(handler, undo)
        except Exception as exc:
            yield _error(meta.id, exc, "load()")
            return
        yield answer_text("processed", meta.id)
    finally:
        _finally(handler)


def run_steps(command: Command, dispatcher: Dispatcher = logux) -> Iterator[Step]:
    """Every answer one command produces, in protocol order (a failure never escapes), with
    WRITE_NOW where a handler hook that may be slow comes next.

    A hook the handler does not override is the base class's no-op: no WRITE_NOW before it, so the
    answers around it can be written together."""
    if isinstance(command, BadCommand):
        yield {"answer": "error", command.key: command.value, "details": command.details}
        return
    try:
        if isinstance(command, AuthCommand):
            yield from run_auth(command)
        elif command.is_subscribe:
            yield from run_subscribe(command, dispatcher)
        else:
            yield from run_action(command, dispatcher)
    except Exception as exc:  # a handler's constructor or our own bug: still one answer, no 500
        logger.error("logux_sync: command failed", exc_info=exc)
        if isinstance(command, AuthCommand):
            yield auth_answer("error", command.auth_id, details=error_details(exc))
        else:
            yield answer("error", command.meta.id, details=error_details(exc))
