"""A throw-away PostgreSQL database per test run (127.0.0.1:5432, user postgres, trust auth)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HOST = os.environ.get("EXAMPLE_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("EXAMPLE_PG_PORT", "5432"))
USER = os.environ.get("EXAMPLE_PG_USER", "postgres")


def connect(dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=dbname, autocommit=True, connect_timeout=3)


def available() -> bool:
    try:
        connect().close()
    except Exception:
        return False
    return True


@contextmanager
def temp_database(prefix: str = "logux_test") -> Iterator[str]:
    """Create `<prefix>_<random>` and drop it afterwards (ending whatever still uses it)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(dbname: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connect(dbname) as conn:
        return list(conn.execute(sql, params).fetchall())


def example_env(dbname: str) -> dict[str, str]:
    """Environment variables that point the example project at this database."""
    return {
        "EXAMPLE_DATABASE": "postgres",
        "EXAMPLE_PG_NAME": dbname,
        "EXAMPLE_PG_HOST": HOST,
        "EXAMPLE_PG_PORT": str(PORT),
        "EXAMPLE_PG_USER": USER,
    }
