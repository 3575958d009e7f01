"""Channel handlers `@logux/backend-test` requires."""

from __future__ import annotations

import logux_sync
from logux_sync import ChannelCommand, LoguxProxyException, Meta

from .logux_actions import name_action
from .models import UserName


@logux_sync.register
class UserChannel(ChannelCommand):
    channel_pattern = "users/:id"

    def access(self, action: dict, meta: Meta) -> bool:
        if self.headers.get("error"):
            raise LoguxProxyException(self.headers["error"])
        return self.params["id"] == meta.user_id

    def load(self, action: dict, meta: Meta) -> list:
        row = UserName.objects.filter(user_id=self.params["id"]).first()
        if row is None:
            return []
        return [(name_action(row.user_id, row.name), {"time": Meta(row.changed_meta).time})]
