"""`@logux/backend-test` 4.0.16, the official back-end protocol v4 suite, against gunicorn."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .servers import NODE, ROOT, example_env, gunicorn, migrate

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUITE = ROOT / "node_modules" / "@logux" / "backend-test" / "bin.js"


def test_backend_test_passes_21_of_21(tmp_path: Path) -> None:
    # The suite's own Logux test server listens on 127.0.0.1:31337 and uses the secret "parole".
    env = example_env(tmp_path, LOGUX_CONFORMANCE="1", LOGUX_URL="http://127.0.0.1:31337/")
    migrate(env)
    with gunicorn(env, name="gunicorn-conformance") as url:
        run = subprocess.run([NODE, str(SUITE), url], cwd=ROOT, capture_output=True, text=True, timeout=300)
    # The suite colours its report when it thinks a terminal is attached; count on plain text.
    output = ANSI.sub("", run.stdout + run.stderr)
    passed = re.findall(r"✔\s+\d+ ", output)
    failed = re.findall(r"✖\s+\d+ ", output)
    assert run.returncode == 0, output
    assert (len(passed), len(failed)) == (21, 0), output
