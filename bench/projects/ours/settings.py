from __future__ import annotations

from base_settings import *  # noqa: F403
from base_settings import INSTALLED_APPS, LOGUX_SECRET

INSTALLED_APPS = [*INSTALLED_APPS, "logux_sync", "ours"]  # the engine alone, without model sync
ROOT_URLCONF = "ours.urls"
WSGI_APPLICATION = "ours.wsgi.application"

LOGUX_SYNC = {
    "SECRET": LOGUX_SECRET,
    "URLS": ["http://127.0.0.1:31337/"],
    "AUTH_FUNCTION": "benchrows.auth.authenticate",
    "SUBPROTOCOL": "1.0.0",
    "SUPPORTS": "^1.0.0",
    "CACHE": "default",
}
