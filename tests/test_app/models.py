from django.db import models


class User(models.Model):
    """The seed README's example model: a name and the meta of its last change."""

    id = models.CharField(max_length=50, primary_key=True)
    first_name = models.CharField(max_length=100, blank=True)
    first_name_meta = models.TextField(default="{}")

    def __str__(self) -> str:
        return self.first_name
