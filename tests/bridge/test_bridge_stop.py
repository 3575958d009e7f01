"""A client's action queued behind a slow one is confirmed (`synced`) by the bridge long before Django
sees it: a Logux server confirms an action when it arrives and runs one client's actions one after
another. A client never sends a confirmed action again, so the bridge must not drop it when it stops:
on SIGTERM it waits (up to bridge.mjs's DRAIN_MS) until the actions it holds were processed. A
SIGKILL still loses it (README "Several machines"): the client reconnects, does not resend it, its
`sync()` never settles, and the database never gets the change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.servers import (
    ROOT,
    SQLITE_IMMEDIATE,
    bridge_args,
    finished,
    free_port,
    gunicorn,
    kill,
    node_env,
    plain_users,
    prepared_env,
    run_python,
    scratch_dir,
    spawn,
    spawn_driver,
    stop,
    task_rows,
    wait_for_file,
)

from .stack import require_bridge_modules

pytestmark = pytest.mark.e2e

require_bridge_modules()

DRIVER = ROOT / "tests" / "bridge" / "js" / "stop.mjs"
SLOW_SECONDS = 3


@pytest.fixture(scope="module")
def django() -> Iterator[tuple[dict[str, str], str, dict[str, str]]]:
    """The example (with its slow test action) under gunicorn: (environment, endpoint URL, user ann)."""
    with scratch_dir("logux-bridge-stop-") as tmp:
        env = prepared_env(tmp, [free_port()], DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE, EXAMPLE_TEST_SUPPORT="1")
        users = plain_users(env, "ann")
        with gunicorn(env, workers=2, name="gunicorn-bridge-stop") as backend:
            yield env, backend, users["ann"]


@pytest.mark.parametrize("how", ["not stopped", "SIGTERM", "SIGKILL"])
def test_an_action_the_bridge_confirmed_survives_a_sigterm_not_a_sigkill(
    django: tuple[dict[str, str], str, dict[str, str]], workdir: Path, how: str
) -> None:
    env, backend, ann = django
    label = how.replace(" ", "-")
    row = f"stop-{label}"
    run_python(
        env, f"from board.models import Task\nTask.objects.create(id={row!r}, title='Before', owner_id={ann['id']})\n"
    )
    port = free_port()
    log = f"bridge-stop-{label}.log"
    bridge = spawn(bridge_args(backend, port), node_env(), port, log, ROOT, append=False)
    out = workdir / "seen.json"
    config = {
        "url": f"ws://127.0.0.1:{port}/",
        "user": ann,
        "row": row,
        "seconds": SLOW_SECONDS,
        "dir": str(workdir),
        "out": str(out),
        "stopped": how != "not stopped",
    }
    driver_log = workdir / "driver.log"
    driver = spawn_driver(DRIVER, config, env, driver_log)
    try:
        wait_for_file(workdir / "stop", driver, driver_log, 30, "both actions confirmed")
        if how != "not stopped":
            (stop if how == "SIGTERM" else kill)(bridge)
            bridge = spawn(bridge_args(backend, port), node_env(), port, log, ROOT)
        (workdir / "started").touch()
        finished(driver, driver_log)
    finally:
        stop(driver)
        stop(bridge)
    seen = json.loads(out.read_text())
    title = task_rows(env)[row]["title"]

    assert seen["confirmed"] >= 1
    if how == "SIGKILL":
        # Reconnected, yet the confirmed change was never sent again: Django never saw it.
        assert "disconnected" in seen["states"] and seen["states"][-1] == "synchronized", seen["states"]
        assert seen["outcome"]["change"] == "pending"
        assert title == "Before"
    else:
        assert seen["outcome"] == {"change": "processed", "slow": "processed"}
        assert title == "After the slow action"
