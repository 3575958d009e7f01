"""Helpers for testing apps that use logux_sync."""

from __future__ import annotations

from .sync.delivery import capture

__all__ = ["capture"]
