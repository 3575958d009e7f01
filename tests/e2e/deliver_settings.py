"""The example's settings with a 1-second SQLite busy timeout: test_deliver_faults.py holds the database
longer than that without making the test slow."""

from example.settings import *  # noqa: F403
from example.settings import DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), "timeout": 1}
