"""The seed's (logux-django) import path for the registries: `from logux_sync.dispatchers import logux`."""

from __future__ import annotations

from .registry import logux

__all__ = ["logux"]
