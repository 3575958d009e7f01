"""The example's settings as the latency benchmark's `-wal` stacks run them: SQLite in WAL mode with
`synchronous=NORMAL`, where a commit appends to the log without waiting for the disk (the default
rollback journal fsyncs several times per commit). A choice of the deployment, not of logux-sync."""

from tests.e2e.sqlite_immediate_settings import *  # noqa: F403
from tests.e2e.sqlite_immediate_settings import DATABASES

DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"].get("OPTIONS", {}),
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}
