from django.apps import AppConfig


class TestSupportConfig(AppConfig):
    """Handlers only the end-to-end tests use; installed when EXAMPLE_TEST_SUPPORT=1."""

    name = "testsupport"
    verbose_name = "End-to-end test support"
