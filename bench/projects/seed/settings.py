from __future__ import annotations

from base_settings import *  # noqa: F403
from base_settings import INSTALLED_APPS, LOGUX_SECRET
from benchrows.auth import authenticate

INSTALLED_APPS = [*INSTALLED_APPS, "logux", "seed"]
ROOT_URLCONF = "seed.urls"
WSGI_APPLICATION = "seed.wsgi.application"

LOGUX_CONFIG = {
    "URL": "http://127.0.0.1:31337/",
    "CONTROL_SECRET": LOGUX_SECRET,
    "AUTH_FUNC": authenticate,
    "SUBPROTOCOL": "1.0.0",
    "SUPPORTS": "^1.0.0",
}
