from __future__ import annotations

import os

from base_settings import *  # noqa: F403
from base_settings import INSTALLED_APPS, LOGUX_SECRET

INSTALLED_APPS = [*INSTALLED_APPS, "logux_sync", "ours"]  # the engine alone, without model sync
# The README's routing, the view under a path() of its own; BENCH_OURS_URLCONF=ours.urls_include measures
# its alternative, include("logux_sync.urls") (a nested resolver).
ROOT_URLCONF = os.environ.get("BENCH_OURS_URLCONF", "ours.urls")
WSGI_APPLICATION = "ours.wsgi.application"

LOGUX_SYNC = {
    "SECRET": LOGUX_SECRET,
    "URLS": ["http://127.0.0.1:31337/"],
    "AUTH_FUNCTION": "benchrows.auth.authenticate",
    "SUBPROTOCOL": "1.0.0",
    "SUPPORTS": "^1.0.0",
    "CACHE": "default",
}
