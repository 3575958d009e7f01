from django.db import models
from django.db.models import Q

from logux_sync.sync.models import LoguxSynced


class User(models.Model):
    """The seed README's example model: a name and the meta of its last change."""

    id = models.CharField(max_length=50, primary_key=True)
    first_name = models.CharField(max_length=100, blank=True)
    first_name_meta = models.TextField(default="{}")

    def __str__(self) -> str:
        return self.first_name


class Project(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Task(LoguxSynced):
    """Synced with Django's default permissions."""

    id = models.CharField(max_length=36, primary_key=True)
    title = models.CharField(max_length=100)
    done = models.BooleanField(default=False)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE)
    secret = models.CharField(max_length=100, blank=True, default="")  # never synced

    class LoguxMeta:
        plural = "tasks"
        fields = ["title", "done", "project"]
        channels = ["projects/{project}/tasks"]

    def __str__(self) -> str:
        return self.title


def _owner_only(user: object, obj: "Note") -> bool:
    return getattr(user, "pk", None) == obj.owner_id


class Note(LoguxSynced):
    """Synced with owner-based hooks on LoguxMeta; `pinned` may only be changed by staff."""

    id = models.CharField(max_length=36, primary_key=True)
    text = models.CharField(max_length=200)
    pinned = models.BooleanField(default=False)
    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)

    class LoguxMeta:
        plural = "notes"
        fields = ["text", "pinned", "owner"]
        can_read = staticmethod(_owner_only)

        @staticmethod
        def readers(obj: "Note") -> Q:
            return Q(pk=obj.owner_id)

        can_delete = staticmethod(_owner_only)

        @staticmethod
        def can_subscribe(user: object, filter: dict[str, object], channel: str) -> bool:
            return bool(getattr(user, "is_authenticated", False)) and filter.get("owner") == getattr(user, "pk", None)

        @staticmethod
        def can_create(user: object, fields: dict[str, object]) -> bool:
            return bool(getattr(user, "is_authenticated", False)) and fields.get("owner") == getattr(user, "pk", None)

        @staticmethod
        def can_change(user: object, obj: "Note", fields: dict[str, object]) -> list[str]:
            if not _owner_only(user, obj):
                return []
            return ["text", "pinned"] if getattr(user, "is_staff", False) else ["text"]

    def __str__(self) -> str:
        return self.text


class Counter(LoguxSynced):
    """An AutoField model: synced read-only."""

    value = models.IntegerField(default=0)

    class LoguxMeta:
        plural = "counters"
        fields = ["value"]

    def __str__(self) -> str:
        return str(self.value)
