"""The bridge tests' fixtures: tests/e2e/conftest.py's scratch directory, and its PostgreSQL database
but skipping where there is no PostgreSQL server (the bridge tests are optional)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
from tests.e2e.conftest import workdir

__all__ = ["pg_db", "workdir"]


@pytest.fixture
def pg_db() -> Iterator[str]:
    """The name of a throw-away PostgreSQL database."""
    if not pg.available():
        pytest.skip(f"no PostgreSQL at {pg.HOST}:{pg.PORT}")
    with pg.temp_database() as name:
        yield name
