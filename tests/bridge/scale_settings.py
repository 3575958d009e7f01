"""The example's settings for tests/bridge/test_scale_topology.py (PostgreSQL and Redis come from the
environment: EXAMPLE_DATABASE=postgres, EXAMPLE_CACHE=redis): only `logux_deliver` workers send, and
a send that failed on a dead bridge is tried again within 2 s rather than up to 30 s later."""

from example.settings import *  # noqa: F403
from example.settings import LOGUX_SYNC

LOGUX_SYNC = {**LOGUX_SYNC, "DELIVERY": "worker", "OUTBOX_MAX_BACKOFF": 2, "CONNECT_TIMEOUT": 1.0, "READ_TIMEOUT": 3.0}
