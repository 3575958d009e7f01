from django.db import models


class UserName(models.Model):
    """The `users/name` state `@logux/backend-test` expects a back end to keep."""

    user_id = models.CharField(max_length=150, primary_key=True)
    name = models.CharField(max_length=200, blank=True)
    # The meta of the edit that set `name`, as JSON: newer edits win (Logux's isFirstOlder).
    changed_meta = models.TextField()

    def __str__(self) -> str:
        return f"{self.user_id}: {self.name}"
