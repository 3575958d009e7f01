"""The README's routing: the view under a path() of its own."""

from __future__ import annotations

from django.urls import path

from logux_sync.views import LoguxView

urlpatterns = [path("logux/", LoguxView.as_view(), name="logux")]
