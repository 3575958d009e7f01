"""What logux_sync.compat relies on still holds in the installed Django."""

from __future__ import annotations

from django.db import models

from logux_sync.compat import reads_instance_dict
from tests.test_app.models import Task


def test_a_plain_columns_descriptor_reads_the_instance_dict() -> None:
    assert reads_instance_dict(Task.__dict__["title"])
    task = Task(id="t", title="loaded")
    task.__dict__["title"] = "from the dict"
    assert task.title == "from the dict"  # what the tracker relies on when the check holds


def test_a_descriptor_of_its_own_does_not() -> None:
    assert not reads_instance_dict(models.FileField().descriptor_class(models.FileField()))
    assert not reads_instance_dict(property(lambda self: 1))
    assert not reads_instance_dict(None)
