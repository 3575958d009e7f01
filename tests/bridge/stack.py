"""The bridge tests' stack: gunicorn (2 workers) serving the example project and two logux-sync bridges
(`@logux/server` 0.14) in front of it, Django sending to both (LOGUX_SYNC['URLS'] lists them)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import (
    EXAMPLE,
    ROOT,
    SQLITE_IMMEDIATE,
    bridge_server,
    demo_users,
    drive,
    free_port,
    gunicorn,
    last_json,
    prepared_env,
    task_rows,
)

MODULES = ROOT / "logux_sync" / "bridge" / "node_modules"


def require_bridge_modules() -> None:
    """Skip the calling test module unless the bridge's packages are installed."""
    if not (MODULES / "@logux" / "server").is_dir():
        pytest.skip("run `npm ci --prefix logux_sync/bridge` first", allow_module_level=True)


def ws_urls(ports: list[int]) -> list[str]:
    return [f"ws://127.0.0.1:{port}/" for port in ports]


@contextmanager
def bridges(env: dict[str, str], ports: list[int], name: str) -> Iterator[str]:
    """gunicorn (log `gunicorn-<name>`) and a bridge on each of `ports` (`<name>-<index>`); yields the
    Django endpoint's URL."""
    with ExitStack() as servers:
        backend = servers.enter_context(gunicorn(env, workers=2, name=f"gunicorn-{name}"))
        for index, port in enumerate(ports):
            servers.enter_context(bridge_server(backend, port=port, name=f"{name}-{index}"))
        yield backend


# Both fan-out modes of the bridge stack (LOGUX_SYNC['FANOUT']): the scenario suites run in each.
FANOUT_MODES = ["nodes", "bridge"]


@dataclass
class Stack:
    env: dict[str, str]
    ports: list[int]
    users: dict[str, dict[str, str]]
    driver: Path

    def drive(self, scenario: str, **extra: Any) -> dict[str, Any]:
        """Run one scenario of the driver (its config with `extra`); what it printed."""
        config = {
            **extra,
            "urls": ws_urls(self.ports),
            "users": self.users,
            "python": sys.executable,
            "exampleDir": str(EXAMPLE),
        }
        return last_json(drive(self.driver, scenario, json.dumps(config), env=self.env, timeout=60))  # type: ignore[no-any-return]

    def tasks(self) -> dict[str, dict[str, Any]]:
        return task_rows(self.env)


@contextmanager
def bridge_stack(tmp: Path, driver: Path, name: str, fanout: str = "nodes") -> Iterator[Stack]:
    """The stack on SQLite (IMMEDIATE transactions) in `tmp`, with the demo users, for `driver`'s
    scenarios, Django in LOGUX_SYNC['FANOUT'] mode `fanout`; its servers log as `name` (see bridges())."""
    ports = [free_port(), free_port()]
    env = prepared_env(tmp, ports, DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE, EXAMPLE_FANOUT=fanout)
    users = demo_users(env)
    with bridges(env, ports, name):
        yield Stack(env=env, ports=ports, users=users, driver=driver)
