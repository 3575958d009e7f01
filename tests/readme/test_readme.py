"""The README, run as written. Every block a reader is told to copy carries a marker comment the line
before it, `<!-- readme-test: <action> <argument> -->`, and runs here verbatim:

- `run <dir>`: a shell block, run with bash in <dir> of a scratch directory, the fresh venv first on PATH;
- `write <path>` / `append <path>`: a file of the project the blocks build;
- `node <stack>`: a Node client, run against a real server of that stack (bridge or proxy).

The Python blocks run in a project made by `django-admin startproject` in a venv of its own, into which
the wheel built from this checkout is installed (with its `[redis]` extra), so the docs cannot drift from
the package, the install or the API again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.servers import (
    NODE,
    ROOT,
    SQLITE_IMMEDIATE,
    bridge_server,
    demo_users,
    free_port,
    gunicorn,
    logux_server,
    prepared_env,
    scratch_dir,
    task_rows,
)

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
MARKED = re.compile(r"<!-- readme-test: (\w+) ?(\S*) -->\n```(\w+)\n(.*?)```", re.S)
NODE_MODULES = {"bridge": ROOT / "logux_sync" / "bridge" / "node_modules", "proxy": ROOT / "node_modules"}


@dataclass
class Block:
    action: str
    argument: str
    lang: str
    code: str


def blocks(action: str | None = None) -> list[Block]:
    found = [Block(*match.groups()) for match in MARKED.finditer(README.read_text())]
    return [block for block in found if action is None or block.action == action]


def test_the_markers_are_read() -> None:
    # A marker that stopped matching would make the tests below pass on nothing.
    actions = [block.action for block in blocks()]
    assert actions.count("run") >= 4 and actions.count("write") >= 3 and actions.count("append") == 2
    assert [block.argument for block in blocks("node")] == ["bridge", "proxy"]


@pytest.fixture(scope="module")
def wheel() -> Iterator[Path]:
    with scratch_dir("logux-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp), str(ROOT)],
            check=True,
            timeout=300,
        )
        [built] = tmp.glob("logux_sync-*.whl")
        yield built


def test_the_wheel_carries_the_bridge_and_a_license(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("bridge.mjs", "package.json", "package-lock.json", "README.md"):
        assert f"logux_sync/bridge/{part}" in names, part
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith("/LICENSE") for name in names), names
    assert "logux_sync/sync/migrations/0001_initial.py" in names
    assert not any(name.startswith(("tests/", "example_project/")) for name in names)


def test_a_fresh_project_follows_the_readme(wheel: Path) -> None:
    with scratch_dir("logux-readme-") as work:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"{wheel}[redis]", "pytest-django==4.14.0"], check=True, timeout=600)
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", LOGUX_CONTROL_SECRET="readme-secret")
        outputs = []
        for block in blocks():
            if block.action == "run":
                run = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block.code],
                    cwd=work / block.argument,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert run.returncode == 0, f"{block.code}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
                outputs.append(run.stdout)
            elif block.action in ("write", "append"):
                with (work / block.argument).open("w" if block.action == "write" else "a") as out:
                    out.write(("\n" if block.action == "append" else "") + block.code)
        text = "\n".join(outputs)
        # logux_routes lists the model's generated handlers, and pytest ran the capture() example.
        assert "tasks/create" in text and "tasks/change" in text and "tasks/delete" in text, text
        assert re.search(r"1 passed", text), text
        assert (work / "mysite" / "tasks" / "migrations" / "0001_initial.py").exists()


def node_client(stack: str) -> str:
    """The README's Node client for `stack`: the bridge's as written, the proxy's with its one new block."""
    [bridge] = [block.code for block in blocks("node") if block.argument == "bridge"]
    if stack == "bridge":
        return bridge
    [proxy] = [block.code for block in blocks("node") if block.argument == "proxy"]
    replaced, count = re.subn(r"const client = new Client\(\{.*?\n\}\)\n", lambda _: proxy, bridge, flags=re.S)
    assert count == 1
    return replaced


@pytest.mark.parametrize("stack", ["bridge", "proxy"])
def test_the_node_client_works_against_its_stack(stack: str) -> None:
    if not (NODE_MODULES[stack] / "@logux" / "client").is_dir():
        pytest.skip(f"no @logux/client in {NODE_MODULES[stack]}: run `make install`")
    with scratch_dir(f"logux-node-{stack}-") as tmp, ExitStack() as servers:
        port = free_port()
        env = prepared_env(tmp, [port], DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE)
        alice = demo_users(env)["alice"]
        backend = servers.enter_context(gunicorn(env, workers=2, name=f"gunicorn-readme-{stack}"))
        server = bridge_server if stack == "bridge" else logux_server
        servers.enter_context(server(backend, port=port, name=f"readme-{stack}"))
        # The snippet as a user has it: a file next to a node_modules with that stack's packages.
        (tmp / "node_modules").symlink_to(NODE_MODULES[stack])
        (tmp / "client.mjs").write_text(node_client(stack))
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGUX_")}
        client_env.update(LOGUX_SERVER=f"ws://127.0.0.1:{port}/", LOGUX_USER_ID=alice["id"], LOGUX_TOKEN=alice["token"])
        run = subprocess.run([NODE, "client.mjs"], cwd=tmp, env=client_env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.strip() == "moved to Doing", run.stdout
        # Every call reached Django: the card was created, renamed, moved (each awaited its `processed`),
        # and deleted at the end.
        assert not any(row["title"] in ("Write docs", "Write the docs") for row in task_rows(env).values())
