"""Handler base classes: apps subclass ActionCommand and ChannelCommand and register them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from . import client
from .protocol import Action, Meta, RawMeta, normalize_resend

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

LoadResult = Action | Iterable[Action] | Iterable[tuple[Action, RawMeta]] | Iterable[list[Any]] | Iterable[Any] | None


def load_user(user_id: str | None) -> AbstractBaseUser | AnonymousUser:
    """The Django user whose primary key is the Logux user id, or AnonymousUser."""
    return load_users([user_id or ""])[user_id or ""]


# Primary keys per query in load_users(): far below every database's parameter limit.
_USERS_PER_QUERY = 2000


def load_users(user_ids: Iterable[str]) -> dict[str, AbstractBaseUser | AnonymousUser]:
    """The Django users whose primary keys are these Logux user ids, by id, one query per 2,000:
    AnonymousUser for an empty, unknown, malformed or inactive one."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import ValidationError

    model = get_user_model()
    pk_field = model._meta.pk
    assert pk_field is not None
    found: dict[str, AbstractBaseUser | AnonymousUser] = {}
    wanted: dict[Any, list[str]] = {}
    for user_id in set(user_ids):
        found[user_id] = AnonymousUser()
        if not user_id or user_id == "false":
            continue
        try:
            pk = pk_field.get_prep_value(pk_field.to_python(user_id))
        except (ValueError, TypeError, ValidationError):
            continue
        wanted.setdefault(pk, []).append(user_id)
    pks = list(wanted)
    for start in range(0, len(pks), _USERS_PER_QUERY):
        for user in model._default_manager.filter(pk__in=pks[start : start + _USERS_PER_QUERY]):
            if getattr(user, "is_active", True):
                for user_id in wanted.get(pk_field.get_prep_value(user.pk), ()):
                    found[user_id] = user
    return found


class BaseCommand:
    """What every handler gets: the action, its parsed meta, the client's headers and the user."""

    def __init__(self, action: Action, meta: Meta, headers: Mapping[str, Any] | None = None):
        self._action = action
        self._meta = meta
        self._headers = dict(headers or {})

    @property
    def action(self) -> Action:
        return self._action

    @property
    def meta(self) -> Meta:
        return self._meta

    @property
    def headers(self) -> dict[str, Any]:
        """The headers the client set with `client.node.setLocalHeaders()`."""
        return self._headers

    @property
    def user_id(self) -> str | None:
        return self._meta.user_id

    @cached_property
    def user(self) -> AbstractBaseUser | AnonymousUser:
        """The action's author as a Django user, loaded on first use."""
        return load_user(self._meta.user_id)

    def access(self, action: Action, meta: Meta) -> bool:
        """May the author do this? Deny by default."""
        return False

    def finally_(self, action: Action, meta: Meta) -> None:
        """Runs last, whatever happened (Logux's `finally`)."""

    # Talking back to the Logux server from inside a handler.

    def send_back(self, action: Action, meta: RawMeta | None = None) -> None:
        """Send an action to the author's client (Logux's `sendBack`)."""
        client.send_back(self._meta, action, meta)

    def undo(self, reason: str = "error", extra: Mapping[str, Any] | None = None) -> None:
        """Revert the author's action on its clients with `logux/undo` right now."""
        client.undo(self._action, self._meta, reason, extra)


class ActionCommand(BaseCommand):
    """Handles one action type: `resend`, `access`, `process`, `finally_`."""

    action_type: ClassVar[str]

    def resend(self, action: Action, meta: Meta) -> Any:
        """Where the Logux server should also send the action: a list of channels or a dict
        with `channels`, `users`, `clients`, `nodes`. Nothing by default."""
        return None

    def process(self, action: Action, meta: Meta) -> None:
        """Apply the action. Does nothing by default."""

    def resend_targets(self) -> dict[str, list[str]]:
        return normalize_resend(self.resend(self._action, self._meta))


_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def compile_channel_pattern(pattern: str) -> re.Pattern[str]:
    """`users/:id` (Logux style) or a regular expression (starts with `^`) to a compiled regex."""
    if pattern.startswith("^"):
        return re.compile(pattern)
    parts = _PARAM.split(pattern)
    regex = "".join(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts))
    return re.compile(f"^{regex}$")


class ChannelCommand(BaseCommand):
    """Handles subscriptions to channels matching `channel_pattern`: `access`, `load`, `finally_`."""

    channel_pattern: ClassVar[str]
    _channel_regex: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        pattern = cls.__dict__.get("channel_pattern")
        if isinstance(pattern, str):
            cls._channel_regex = compile_channel_pattern(pattern)

    def __init__(self, action: Action, meta: Meta, headers: Mapping[str, Any] | None = None):
        super().__init__(action, meta, headers)
        self.channel: str = action["channel"]
        match = self.match(self.channel)
        self.params: dict[str, str] = match.groupdict() if match else {}

    @classmethod
    def match(cls, channel: str) -> re.Match[str] | None:
        return cls._channel_regex.match(channel)

    @property
    def since(self) -> dict[str, Any] | None:
        """`{id, time}` of the last action the client has, when it resubscribes."""
        since = self._action.get("since")
        return since if isinstance(since, dict) else None

    @property
    def filter(self) -> dict[str, Any] | None:
        value = self._action.get("filter")
        return value if isinstance(value, dict) else None

    def load(self, action: Action, meta: Meta) -> LoadResult:
        """Actions for the new subscriber: one action, a list, or `[action, meta]` pairs (or a generator of them)."""
        return None
