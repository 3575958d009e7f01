"""The board page: a Django-rendered shell that hands the browser what it needs to talk to Logux."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView
from django.core.exceptions import ImproperlyConfigured
from django.views.generic import TemplateView

from logux_sync import make_token
from logux_sync.management.commands.logux_server import bridge_subprotocols

from .models import Task


def logux_ws_url() -> str:
    """Where browsers open their Logux WebSocket.

    `BOARD_LOGUX_WS_URL` (setting or environment) wins; otherwise the example's Logux server is the one
    Django sends actions to (`LOGUX_SYNC["URLS"]`), whose control port also takes WebSockets.
    """
    explicit = getattr(settings, "BOARD_LOGUX_WS_URL", None) or os.environ.get("BOARD_LOGUX_WS_URL")
    if explicit:
        return str(explicit)
    urls = settings.LOGUX_SYNC.get("URLS") or "http://127.0.0.1:31337/"
    first = urls if isinstance(urls, str) else urls[0]
    parts = urlsplit(first.split(",")[0].strip())
    return urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, "/", "", ""))


STACKS = ("bridge", "proxy")


def logux_stack() -> str:
    """The Logux stack the page's bundle is built for: `bridge` (@logux/client 0.23 for `manage.py
    logux_server`, the default) or `proxy` (@logux/client 0.21 for @logux/server 0.13.1)."""
    stack = str(getattr(settings, "BOARD_LOGUX_STACK", None) or os.environ.get("BOARD_LOGUX_STACK") or "bridge")
    if stack not in STACKS:
        raise ImproperlyConfigured(f"BOARD_LOGUX_STACK must be one of {', '.join(STACKS)}, not {stack!r}")
    return stack


def client_subprotocol(stack: str) -> str | int:
    """The subprotocol the page's client sends: @logux/client 0.21 sends Django's semver string,
    0.23 a whole number, the one the bridge maps back to `N.0.0` for Django."""
    subprotocol = str(settings.LOGUX_SYNC.get("SUBPROTOCOL", "1.0.0"))
    if stack == "proxy":
        return subprotocol
    return bridge_subprotocols(subprotocol, str(settings.LOGUX_SYNC.get("SUPPORTS", "^1.0.0")))[0]


class BoardView(LoginRequiredMixin, TemplateView):
    """Three live columns of tasks; everything after the first paint happens over Logux."""

    template_name = "board/board.html"
    login_url = "board:login"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        stack = logux_stack()
        context["columns"] = Task._meta.get_field("column").choices
        context["bundle"] = f"board/app-{stack}.js"
        context["logux"] = {
            "server": logux_ws_url(),
            "subprotocol": client_subprotocol(stack),
            "userId": str(user.pk),
            "token": make_token(user),  # type: ignore[arg-type]
            # Cards show their owner's name; the example has a handful of users, so send them all.
            "users": {str(pk): name for pk, name in get_user_model().objects.values_list("pk", "username")},
        }
        return context


class BoardLoginView(LoginView):
    template_name = "board/login.html"
    redirect_authenticated_user = True
    next_page = "board:board"
