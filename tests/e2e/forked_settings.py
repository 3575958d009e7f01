"""The example's settings with one more view, `forked/change/`, for test_forked_workers.py."""

from example.settings import *  # noqa: F403

ROOT_URLCONF = "tests.e2e.forked_urls"
