"""Action handlers `@logux/backend-test` requires."""

from __future__ import annotations

from django.db import transaction

import logux_sync
from logux_sync import ActionCommand, LoguxProxyException, Meta

from .models import UserName


def name_action(user_id: str, name: str) -> dict:
    return {"type": "users/name", "payload": {"userId": user_id, "name": name}}


@logux_sync.register
class RenameUser(ActionCommand):
    action_type = "users/name"

    def resend(self, action: dict, meta: Meta) -> dict:
        return {"channels": [f"users/{action['payload']['userId']}"]}

    def access(self, action: dict, meta: Meta) -> bool:
        if self.headers.get("error"):
            raise LoguxProxyException(self.headers["error"])
        return str(action["payload"]["userId"]) == meta.user_id

    def process(self, action: dict, meta: Meta) -> None:
        with transaction.atomic():
            row = UserName.objects.select_for_update().filter(user_id=meta.user_id).first()
            if row is None:
                UserName.objects.create(
                    user_id=meta.user_id, name=action["payload"]["name"], changed_meta=meta.get_json()
                )
            elif Meta(row.changed_meta).is_older(meta):
                row.name = action["payload"]["name"]
                row.changed_meta = meta.get_json()
                row.save()


@logux_sync.register
class CleanNames(ActionCommand):
    action_type = "users/clean"

    def access(self, action: dict, meta: Meta) -> bool:
        return True

    def process(self, action: dict, meta: Meta) -> None:
        user_ids = list(UserName.objects.values_list("user_id", flat=True))
        logux_sync.add_batch([(name_action(user_id, ""), {"channels": [f"users/{user_id}"]}) for user_id in user_ids])
        UserName.objects.all().delete()


@logux_sync.register
class ErrorAction(ActionCommand):
    action_type = "error"

    def access(self, action: dict, meta: Meta) -> bool:
        raise LoguxProxyException("Error in action")
