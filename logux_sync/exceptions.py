"""Errors raised by logux-sync, one class per meaning."""

from __future__ import annotations


class LoguxError(Exception):
    """Base class of every logux-sync error."""


class ImproperlyConfigured(LoguxError):
    """The `LOGUX_SYNC` setting is missing, malformed or names something that cannot be imported."""


class LoguxProxyException(LoguxError):
    """Raised by a handler to answer its command with `error` and this message (the seed's name)."""


class LoguxServerError(LoguxError):
    """The Logux server refused or failed an `add()` request."""

    def __init__(self, url: str, status: int | None, body: str, cause: BaseException | None = None):
        self.url = url
        self.status = status
        self.body = body
        reason = f"HTTP {status}: {body[:200]}" if status is not None else f"{type(cause).__name__}: {cause}"
        super().__init__(f"Logux server {url} did not accept the actions ({reason})")


class HandlerAlreadyRegistered(LoguxError):
    """A second handler was registered for an action type or channel pattern."""


class HandlerNotRegistered(LoguxError):
    """No handler is registered under that action type or channel pattern."""


class WrongLoadResult(LoguxError):
    """A channel's `load()` returned something that is not an action, a list of them or pairs."""


class Undo(LoguxError):
    """Raised by a handler to revert the client's action with `logux/undo` and this reason."""

    def __init__(self, reason: str = "error", **extra: object):
        self.reason = reason
        self.extra = extra
        super().__init__(reason)


class UnsyncableId(LoguxError, ValueError):
    """A synced row's id contains "/": its row channel `<plural>/<id>` could never be subscribed."""


class SubscriptionLimit(LoguxError):
    """A subscription goes over a model-sync limit (filter size, subscriptions per node or per user)."""


# The seed's names, so apps ported from logux-django keep working.
LoguxBadAuthException = LoguxProxyException
LoguxWrongLoadResultsException = WrongLoadResult
