"""Registers each synced model's generic handlers with the engine's registry."""

from __future__ import annotations

from typing import Any

from ..registry import logux
from . import commands, lifecycle, signals
from .models import LoguxSynced
from .options import synced_models


def _handler(base: type[Any], name: str, **attrs: Any) -> type[Any]:
    return type(name, (base,), {"__module__": __name__, **attrs})


def register_model(model: type[LoguxSynced]) -> None:
    """Expose a synced model: its plural's actions and channels, and its signal receivers."""
    opts = model.logux_options
    existing = synced_models.get(opts.plural)
    if existing is not None and existing is not model:
        raise TypeError(f"{model._meta.label} and {existing._meta.label} both use the plural {opts.plural!r}")
    synced_models[opts.plural] = model
    name = model.__name__
    if not opts.read_only:
        for kind, base in (
            ("create", commands.CreateAction),
            ("change", commands.ChangeAction),
            ("delete", commands.DeleteAction),
        ):
            logux.actions.register(
                _handler(base, f"{name}{kind.title()}", model=model, action_type=f"{opts.plural}/{kind}")
            )
    logux.channels.register(
        _handler(commands.RowChannel, f"{name}Row", model=model, channel_pattern=f"{opts.plural}/:id")
    )
    logux.channels.register(_handler(commands.ListChannel, f"{name}List", model=model, channel_pattern=opts.plural))
    for index, (_, pattern) in enumerate(opts.derived_patterns()):
        logux.channels.register(
            _handler(commands.DerivedChannel, f"{name}Derived{index}", model=model, channel_pattern=pattern)
        )
    signals.connect(model)
    lifecycle.register()  # the bridge's unsubscribe and disconnect notices
