"""The endpoint routed without include(): what the nested resolver of the documented URLconf costs."""

from __future__ import annotations

from django.urls import path

from logux_sync.views import LoguxView

urlpatterns = [path("logux/", LoguxView.as_view(), name="logux")]
