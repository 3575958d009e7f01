"""The handler registry: action types and channel patterns to handler classes, with autodiscovery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .commands import ActionCommand, ChannelCommand
from .exceptions import HandlerAlreadyRegistered, HandlerNotRegistered

H = TypeVar("H", ActionCommand, ChannelCommand)

# Per-app modules imported at startup, the way the admin imports admin.py.
AUTODISCOVER_MODULES = ("logux_actions", "logux_channels", "logux_subscriptions")


class Registry(Generic[H]):
    """Handlers keyed by a stable string: the action type, or the channel pattern."""

    def __init__(self, base: type[H], key_attr: str):
        self._base: type[H] = base
        self._key_attr = key_attr
        self._handlers: dict[str, type[H]] = {}

    def key_of(self, handler: type[H]) -> str:
        key = getattr(handler, self._key_attr, None)
        if not isinstance(key, str) or not key:
            raise TypeError(f"{handler.__qualname__} needs a non-empty `{self._key_attr}` string")
        return key

    def register(self, handler: type[H]) -> type[H]:
        """Register a handler class; usable as a decorator. Registering a key twice raises."""
        if not (isinstance(handler, type) and issubclass(handler, self._base)):
            raise TypeError(f"{handler!r} is not a {self._base.__name__} subclass")
        key = self.key_of(handler)
        current = self._handlers.get(key)
        if current is not None and current is not handler:
            raise HandlerAlreadyRegistered(
                f"{self._key_attr} {key!r} is already handled by "
                f"{current.__module__}.{current.__qualname__}; "
                f"cannot register {handler.__module__}.{handler.__qualname__} too"
            )
        self._handlers[key] = handler
        return handler

    def unregister(self, handler_or_key: type[H] | str) -> None:
        key = handler_or_key if isinstance(handler_or_key, str) else self.key_of(handler_or_key)
        if key not in self._handlers:
            raise HandlerNotRegistered(f"nothing is registered under {key!r}")
        del self._handlers[key]

    def is_registered(self, handler_or_key: type[H] | str) -> bool:
        key = handler_or_key if isinstance(handler_or_key, str) else self.key_of(handler_or_key)
        return key in self._handlers

    def get(self, key: str) -> type[H] | None:
        return self._handlers.get(key)

    def items(self) -> list[tuple[str, type[H]]]:
        return sorted(self._handlers.items())

    def __iter__(self) -> Iterator[type[H]]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


class ActionRegistry(Registry[ActionCommand]):
    def __init__(self) -> None:
        super().__init__(ActionCommand, "action_type")

    def find(self, action_type: str) -> type[ActionCommand] | None:
        """The handler of an action type."""
        return self._handlers.get(action_type)


class ChannelRegistry(Registry[ChannelCommand]):
    def __init__(self) -> None:
        super().__init__(ChannelCommand, "channel_pattern")

    def find(self, channel: str) -> type[ChannelCommand] | None:
        """The first registered handler whose pattern matches (patterns may overlap)."""
        for handler in self._handlers.values():
            if handler.match(channel):
                return handler
        return None


class Dispatcher:
    """Both registries together (`logux.actions`, `logux.channels`), as the seed exposed them."""

    def __init__(self) -> None:
        self.actions = ActionRegistry()
        self.channels = ChannelRegistry()

    def register(self, handler: type[ActionCommand] | type[ChannelCommand]) -> Callable[..., object]:
        """Register an action or channel handler, whichever it is; usable as a decorator."""
        if isinstance(handler, type) and issubclass(handler, ChannelCommand):
            return self.channels.register(handler)
        return self.actions.register(handler)  # type: ignore[arg-type]


logux = Dispatcher()
actions = logux.actions
channels = logux.channels
register = logux.register


def autodiscover() -> None:
    """Import each installed app's `logux_actions`, `logux_channels` and `logux_subscriptions`."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules(*AUTODISCOVER_MODULES)
