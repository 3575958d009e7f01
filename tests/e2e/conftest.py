"""Fixtures of the end-to-end tests that run against PostgreSQL and keep files of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg

from .servers import scratch_dir


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A scratch directory for the test (see scratch_dir: not pytest's tmp_path)."""
    with scratch_dir(f"logux-{request.module.__name__.rsplit('.', 1)[-1]}-") as path:
        yield path


@pytest.fixture
def pg_db() -> Iterator[str]:
    """The name of a throw-away PostgreSQL database."""
    with pg.temp_database() as name:
        yield name
