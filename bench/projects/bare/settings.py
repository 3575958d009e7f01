from __future__ import annotations

from base_settings import *  # noqa: F403
from base_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bare"]
ROOT_URLCONF = "bare.urls"
WSGI_APPLICATION = "bare.wsgi.application"
