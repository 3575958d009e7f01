from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from logux_sync.conf import logux_settings
from logux_sync.sync.models import LoguxSynced


def _is_user(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


class Task(LoguxSynced):
    """A card on the shared board. Private cards are seen by their owner only."""

    id = models.CharField(max_length=36, primary_key=True)  # nanoid from the browser
    title = models.CharField(max_length=200)
    column = models.CharField(
        max_length=10, choices=[("todo", "To do"), ("doing", "Doing"), ("done", "Done")], default="todo"
    )
    private = models.BooleanField(default=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")

    class LoguxMeta:
        plural = "tasks"
        fields = ["title", "column", "private", "owner"]

        @staticmethod
        def can_read(user: Any, task: Task) -> bool:
            return _is_user(user) and (not task.private or task.owner_id == user.pk)

        @staticmethod
        def readers(task: Task) -> Q | bool:
            # can_read in bulk: who receives a change is decided in one query, whatever the subscribers.
            if task.private:
                return Q(pk=task.owner_id)
            # Every subscriber of the board signed in as an active user (the auth function refuses
            # others, and can_subscribe anonymous ones), so behind the bridge a public card is for
            # every subscriber: True lets the bridge fan it out without listing users. The one
            # difference from Q(): a user deactivated while connected hears of public cards until it
            # disconnects.
            return True if logux_settings.FANOUT == "bridge" else Q()

        @staticmethod
        def can_subscribe(user: Any, filter: dict[str, Any], channel: str) -> bool:
            return _is_user(user)

        @staticmethod
        def can_create(user: Any, fields: dict[str, Any]) -> bool:
            return _is_user(user) and fields.get("owner") == user.pk

        @staticmethod
        def can_change(user: Any, task: Task, fields: dict[str, Any]) -> list[str]:
            # Anyone who sees a card may edit it; only its owner may make it private or give it away.
            if task.owner_id == user.pk:
                return ["title", "column", "private"]
            return ["title", "column"]

        @staticmethod
        def can_delete(user: Any, task: Task) -> bool:
            return _is_user(user) and (not task.private or task.owner_id == user.pk)

    def __str__(self) -> str:
        return self.title
