from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    name = "conformance"
    verbose_name = "Logux back-end protocol conformance"
    default_auto_field = "django.db.models.BigAutoField"
