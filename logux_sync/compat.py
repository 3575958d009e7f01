"""The one place logux-sync relies on something Django does not document. Each use says why no public
mechanism exists; tests/test_compat.py fails the day Django changes it."""

from __future__ import annotations

from typing import Any

# Django's descriptor of a concrete column (`Model.title`). Public in effect (every model uses it) but not
# documented: Django offers no public way to ask whether reading `obj.<attname>` only returns
# `obj.__dict__[attname]` once loaded. Model sync's tracker reads a loaded value straight from the
# instance dict when this holds (a field with a descriptor of its own, such as a file field, is read
# through it), which halves the cost of the snapshot a synced row takes on every load and save.
from django.db.models.query_utils import DeferredAttribute


def reads_instance_dict(descriptor: Any) -> bool:
    """Does `descriptor` return a loaded value straight from the instance dict (Django's column one)?"""
    return getattr(type(descriptor), "__get__", None) is DeferredAttribute.__get__


def is_in_memory_sqlite(connection: Any) -> bool:
    """Is `connection` an in-memory SQLite database (the test database Django makes for SQLite)?

    Such a database has no busy timeout between connections (a second one gets "database table is
    locked" at once), so model sync's sender thread cannot share it: sending then happens in the
    committing thread. Django's own check, DatabaseWrapper.is_in_memory_db(), is not documented; the
    names it recognises are."""
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict.get("NAME") or "")
    return name == ":memory:" or "mode=memory" in name
