"""The example's settings, with SQLite transactions that take the write lock when they begin.

With the default deferred transactions, two gunicorn workers editing the same card deadlock on the
lock upgrade (read, then write) and SQLite fails one at once with "database is locked", whatever the
busy timeout. IMMEDIATE (Django 5.1+) makes them wait for each other instead.
"""

from example.settings import *  # noqa: F403
from example.settings import DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), "transaction_mode": "IMMEDIATE"}
