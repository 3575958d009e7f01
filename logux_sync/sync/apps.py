"""Model sync as a Django app of its own: its tables, and the handlers of every synced model."""

from __future__ import annotations

from django.apps import AppConfig, apps


class LoguxModelSyncConfig(AppConfig):
    name = "logux_sync.sync"
    label = "logux_sync_models"
    verbose_name = "Logux model sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .models import LoguxSynced  # the app registry is ready: models may be imported
        from .registry import register_model
        from .signals import connect

        for model in apps.get_models(include_swapped=True):
            if not issubclass(model, LoguxSynced):
                continue
            if model._meta.proxy:  # saved and deleted as itself: post_save and post_delete name the proxy
                connect(model)
            else:
                register_model(model)
