"""The example's board page in a real browser: Debian's Chromium, driven by playwright-core from Node,
against gunicorn (2 workers) and each Logux stack: the bridge (`manage.py logux_server`'s bridge.mjs on
@logux/server 0.14, the page built with @logux/client 0.23) and the 0.13.1 proxy (client 0.21).

Each test runs one scenario of tests/browser/js/board.mjs, which logs alice and bob in through the
login form and uses the page as people do; it prints what the pages showed and how long each step
took, and the assertions (and the checks of the database) are here. Screenshots land in
test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import (
    ARTIFACTS,
    EXAMPLE,
    NODE,
    ROOT,
    SQLITE_IMMEDIATE,
    bridge_server,
    demo_users,
    drive,
    free_port,
    gunicorn,
    last_json,
    logux_server,
    prepared_env,
    python_json,
)

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = ROOT / "tests" / "browser" / "js" / "board.mjs"
SCREENSHOTS = ARTIFACTS / "screenshots"
LIVE_MS = 1000  # another user's page shows an edit within a second


STACKS = ["bridge", "proxy"]


@dataclass
class Board:
    env: dict[str, str]
    base: str
    stack: str
    extra: dict[str, str]  # more of the scenarios' config: pages served otherwise (deadBase, otherBase)

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every Task row as {title: {column, private, owner}}, read straight from the database."""
        code = (
            "import json; from board.models import Task; "
            "print(json.dumps({t.title: {'column': t.column, 'private': t.private, 'owner': t.owner.username} "
            "for t in Task.objects.select_related('owner')}))"
        )
        return python_json(self.env, code)  # type: ignore[no-any-return]

    def drive(self, scenario: str) -> dict[str, Any]:
        config = {
            "base": self.base,
            "stack": self.stack,
            "screenshots": str(SCREENSHOTS),
            "chromium": str(CHROMIUM),
            "timeout": LIVE_MS,
            **self.extra,
        }
        log = ARTIFACTS / f"browser-{self.stack}-{scenario}.log"
        out = drive(DRIVER, scenario, json.dumps(config), timeout=60, log=log, note=f" (screenshots in {SCREENSHOTS})")
        result: dict[str, Any] = last_json(out)
        assert result["problems"] == [], result["problems"]
        print(f"{scenario}: {json.dumps({k: v for k, v in result.items() if k in ('ms', 'hiddenMs', 'sharedMs')})}")
        return result


def build_bundle() -> None:
    subprocess.run([NODE, str(EXAMPLE / "board" / "frontend" / "build.mjs")], cwd=ROOT, check=True, timeout=60)


def base_of(backend: str) -> str:
    return backend.removesuffix("logux/").rstrip("/")


@pytest.fixture(scope="module", params=STACKS)
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    stack: str = request.param
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium: run `make browser-deps`")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    build_bundle()
    tmp = tmp_path_factory.mktemp(f"board-{stack}")
    logux_port = free_port()
    env = prepared_env(tmp, [logux_port], DJANGO_SETTINGS_MODULE=SQLITE_IMMEDIATE, BOARD_LOGUX_STACK=stack)
    demo_users(env)
    with pytest.MonkeyPatch.context() as patch:
        # In development mode Logux server 0.13.1 answers an error on a closing socket by sending a debug
        # message to every client, which fails on that socket again: hundreds of "WS was closed" errors
        # in every open page whenever one goes offline. Production mode sends no debug messages.
        patch.setenv("NODE_ENV", "production")
        with gunicorn(env, workers=2, name=f"gunicorn-board-{stack}") as backend:
            logux = (
                bridge_server(backend, port=logux_port, name="bridge-board")
                if stack == "bridge"
                else logux_server(backend, port=logux_port, name="logux-board")
            )
            with logux:
                # Two more pages of the same board, one worker each: one whose Logux server is down (a
                # port nothing listens on), one built for the other stack's client.
                other = next(s for s in STACKS if s != stack)
                dead = {**env, "BOARD_LOGUX_WS_URL": f"ws://127.0.0.1:{free_port()}/"}
                with gunicorn(dead, workers=1, name=f"gunicorn-board-{stack}-dead") as dead_backend:
                    with gunicorn(
                        {**env, "BOARD_LOGUX_STACK": other}, workers=1, name=f"gunicorn-board-{stack}-other"
                    ) as other_backend:
                        extra = {"deadBase": base_of(dead_backend), "otherBase": base_of(other_backend)}
                        yield Board(env=env, base=base_of(backend), stack=stack, extra=extra)


def test_the_board_page(board: Board) -> None:
    seen = board.drive("tour")

    assert [h.split()[:-1] for h in seen["headings"]] == [["To", "do"], ["Doing"], ["Done"]]
    assert seen["status"] == "online"
    assert seen["alice"]["Try the board offline"] == {"column": "todo", "owner": "alice", "private": True}
    assert seen["alice"]["Show the board to the team"] == {"column": "doing", "owner": "bob", "private": False}
    assert {t: v for t, v in seen["alice"].items() if not v["private"]} == seen["bob"]
    assert seen["afterLogout"] == "/login/?next=/"
    assert os.path.getsize(seen["boardShot"]) > 10_000


def test_edits_reach_the_other_users_page_within_a_second(board: Board) -> None:
    seen = board.drive("live")

    assert all(ms <= LIVE_MS for ms in seen["ms"].values()), seen["ms"]
    assert {t: v for t, v in seen["alice"].items() if not v["private"]} == seen["bob"]
    assert not any(title.startswith(seen["title"]) for title in board.tasks())  # bob deleted it


@pytest.fixture(scope="module")
def private(board: Board) -> dict[str, Any]:
    return board.drive("private")


def test_only_the_owner_may_make_a_card_private_and_its_edits_stay_hers(private: dict[str, Any]) -> None:
    title = private["title"]
    assert private["bobMayToggle"] is False
    assert private["aliceSeesPrivate"] is True
    assert all(not shown.startswith(f"{title}: secret") for shown in private["bobAfterSecretEdits"])
    assert private["alice"][f"{title}: secret"] == {"column": "doing", "owner": "alice", "private": False}


def test_a_card_made_private_leaves_the_other_users_page(private: dict[str, Any]) -> None:
    assert private["hiddenMs"] is not None


def test_a_card_shared_again_shows_its_current_state(private: dict[str, Any]) -> None:
    assert private["sharedMs"] is not None
    assert private["bob"] == private["alice"]


def test_offline_edits_merge_on_reconnect(board: Board) -> None:
    seen = board.drive("offline")

    assert seen["offlineStatus"].startswith("offline"), seen["offlineStatus"]
    assert "waiting" in seen["offlineStatus"], seen["offlineStatus"]
    # While apart, each page shows its own edits.
    shared = next(title for title in seen["expected"] if title.startswith("Shared card"))
    assert seen["bobWhileOffline"][shared]["column"] == "doing"
    assert shared not in seen["aliceWhileBobOffline"]
    # Back together: the same board everywhere, per field the later edit winning.
    assert {t: v for t, v in seen["alice"].items() if not v["private"]} == seen["bob"]
    for title, column in seen["expected"].items():
        assert seen["alice"][title]["column"] == column
    rows = board.tasks()
    for title, shown in seen["alice"].items():
        assert rows[title] == shown, title
    assert seen["bobStatus"] == "online"


def test_an_admin_edit_reaches_both_pages(board: Board) -> None:
    seen = board.drive("admin")

    # From the click on Save: the admin's own request and redirect, then the pages.
    assert seen["ms"]["alice"] <= seen["ms"]["adminPage"] + LIVE_MS, seen["ms"]
    assert seen["ms"]["bob"] <= seen["ms"]["adminPage"] + LIVE_MS, seen["ms"]
    assert seen["alice"][seen["title"]]["column"] == "doing"
    assert seen["bob"][seen["title"]] == {"column": "doing", "owner": "bob", "private": False}
    assert board.tasks()[seen["title"]] == seen["bob"][seen["title"]]


def test_an_edit_the_server_refuses_says_why(board: Board) -> None:
    seen = board.drive("refused")

    # Django's own validation message reaches the page, and the card keeps its title.
    assert "Ensure this value has at most 200 characters (it has 201)." in seen["tooLong"], seen["tooLong"]
    assert seen["empty"] == "A card needs a title: the old one stays."
    assert seen["shownTitle"] == "todo"
    assert board.tasks()[seen["title"]]["column"] == "todo"


def test_a_board_whose_logux_server_is_down_says_so(board: Board) -> None:
    seen = board.drive("down")  # drive() fails on any uncaught page error during the reconnects

    assert seen["problem"].startswith("The Logux server at ws://127.0.0.1:"), seen["problem"]
    assert "cannot be reached" in seen["problem"]
    assert ("`make example`" if board.stack == "bridge" else "`make example-proxy`") in seen["problem"]
    assert seen["status"] == "disconnected"
    assert seen["loading"] == 1


def test_a_page_of_the_other_stack_names_the_version_that_is_too_old(board: Board) -> None:
    seen = board.drive("mismatch")

    # The page holds the other stack's client: 0.21 is too old for the bridge's server, and the
    # 0.13.1 server is too old for client 0.23.
    too_old = "bundle has @logux/client 0.21" if board.stack == "bridge" else "the server is too old"
    assert too_old in seen["problem"], seen["problem"]
    assert "`make example`" in seen["problem"] and "`make example-proxy`" in seen["problem"]
    assert seen["status"] == "disconnected: wrong Logux version"
    assert "reload the page" not in seen["problem"]
