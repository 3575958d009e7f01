"""The README's alternative, include("logux_sync.urls"): what its nested resolver costs."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("logux/", include("logux_sync.urls"))]
