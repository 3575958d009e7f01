"""Settings for the unit tests (SQLite in memory)."""

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "logux_sync",
    "logux_sync.sync",
    "tests.test_app",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGUX_SYNC = {
    "SECRET": "secret",
    # The unit tests check what was sent right after a commit: send in the committing thread.
    "DELIVERY": "inline",
    "URLS": ["http://127.0.0.1:31337/"],
}
SILENCED_SYSTEM_CHECKS = ["logux_sync.W001"]
