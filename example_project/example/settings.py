"""Settings of the example project. Everything that differs between machines comes from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
# Off unless asked for (DJANGO_DEBUG=1): the example may be reached by others on the network.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "logux_sync",
    "logux_sync.sync",
    "board",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
        # Several gunicorn workers share the file: transactions take the write lock when they begin
        # and wait for it. With SQLite's default deferred transactions two workers editing one card
        # deadlock on the read-to-write upgrade and one fails at once with "database is locked".
        "OPTIONS": {"timeout": 20, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
    }
}

# A cache every worker shares, so the wrong-secret lock holds across workers.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ.get("EXAMPLE_CACHE_DIR", str(BASE_DIR / ".cache")),
    }
}

# EXAMPLE_DATABASE=postgres: PostgreSQL on EXAMPLE_PG_HOST:EXAMPLE_PG_PORT (the tests' concurrency runs).
if os.environ.get("EXAMPLE_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("EXAMPLE_PG_NAME", "logux_example"),
            "HOST": os.environ.get("EXAMPLE_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("EXAMPLE_PG_PORT", "5432"),
            "USER": os.environ.get("EXAMPLE_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("EXAMPLE_PG_PASSWORD", ""),
        }
    }

# EXAMPLE_CACHE=redis: the wrong-secret lock in Redis (EXAMPLE_REDIS_URL) instead of files.
if os.environ.get("EXAMPLE_CACHE") == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("EXAMPLE_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "KEY_PREFIX": os.environ.get("EXAMPLE_CACHE_PREFIX", "example"),
        }
    }

LOGUX_SYNC = {
    "SECRET": os.environ.get("LOGUX_CONTROL_SECRET", "parole"),
    "URLS": os.environ.get("LOGUX_URL", "http://127.0.0.1:31337/"),
    "AUTH_FUNCTION": "logux_sync.auth.token_or_session_auth",
    "SUBPROTOCOL": "1.0.0",
    "SUPPORTS": "^1.0.0",
}
# "bridge" when the example runs behind the logux-sync bridge (`manage.py logux_server`) and should
# let it fan out public cards (README "Running at scale"); "nodes" works behind any Logux server.
LOGUX_SYNC["FANOUT"] = os.environ.get("EXAMPLE_FANOUT", "nodes")
if os.environ.get("EXAMPLE_TOKEN_MAX_AGE"):
    LOGUX_SYNC["TOKEN_MAX_AGE"] = int(os.environ["EXAMPLE_TOKEN_MAX_AGE"])

# `@logux/backend-test`'s fixture handlers (users/name, users/clean that wipes rows for anyone, an auth
# that takes the token `USER_ID:good` and turns an `error` header into the error text) are for its test
# run only: installed when LOGUX_CONFORMANCE=1, never in the example a user runs.
LOGUX_CONFORMANCE = os.environ.get("LOGUX_CONFORMANCE") == "1"
if LOGUX_CONFORMANCE:
    INSTALLED_APPS.append("conformance")
    LOGUX_SYNC["AUTH_FUNCTION"] = "conformance.auth.authenticate"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"logux_sync": {"handlers": ["console"], "level": "WARNING"}},
}

# Handlers only the end-to-end tests need (a slow action); off unless the tests ask for them.
if os.environ.get("EXAMPLE_TEST_SUPPORT") == "1":
    INSTALLED_APPS.append("testsupport")
