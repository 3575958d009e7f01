"""`path("logux/", include("logux_sync.urls"))`."""

from __future__ import annotations

from django.urls import path

from .views import LoguxView

app_name = "logux_sync"

urlpatterns = [path("", LoguxView.as_view(), name="endpoint")]
