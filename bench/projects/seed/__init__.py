"""The seed: logux-django 2.0 from PyPI, with the same handlers written against its API."""
