"""The access matrix of tests/e2e/test_access_matrix.py on the bridge stack: real `@logux/client` 0.23
clients (alice, bob, carol, spread over two logux-sync bridges on `@logux/server` 0.14) x filtered lists
x public and private rows of every owner, row probes, the clients' own edits and live ORM changes.
Every message each client receives on the wire is recorded (tests/bridge/js/flows.mjs `access`); none
may name a private row of another user, and every row a user may read reaches that user's lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import pg
from tests.e2e.matrix import build_matrix, check_matrix, seed
from tests.e2e.servers import ARTIFACTS, ROOT, demo_users, drive, free_port, plain_users, prepared_env, task_rows

from .stack import FANOUT_MODES, bridges, require_bridge_modules, ws_urls

pytestmark = pytest.mark.e2e

DRIVER = ROOT / "tests" / "bridge" / "js" / "flows.mjs"

require_bridge_modules()


@pytest.mark.parametrize("fanout", FANOUT_MODES)
def test_access_matrix_with_real_clients_through_the_bridge(workdir: Path, pg_db: str, fanout: str) -> None:
    ports = [free_port(), free_port()]
    # PostgreSQL, as the proxy version: many concurrent client edits through two workers.
    env = prepared_env(workdir, ports, EXAMPLE_FANOUT=fanout, **pg.example_env(pg_db))
    users = demo_users(env)
    # carol: a plain user (no staff, no superuser, no permissions).
    users.update(plain_users(env, "carol"))
    matrix = build_matrix(users, workdir / "access.json")
    config = {"urls": ws_urls(ports), **matrix.config}
    with bridges(env, ports, f"bridge-access-{fanout}"):
        seed(env, matrix)
        drive(
            DRIVER,
            "access",
            json.dumps(config),
            env=env,
            timeout=90,
            log=ARTIFACTS / f"bridge-access-{fanout}-driver.log",
        )
        seen = json.loads((workdir / "access.json").read_text())
        rows = task_rows(env)
    figures = check_matrix(matrix, seen, rows)
    print(f"access matrix (bridge, FANOUT {fanout}):", json.dumps(figures, indent=1))
