"""The example's URLs plus `forked/change/`: many ORM saves of synced rows in one request, starting at
a given moment, so that several gunicorn workers save in the same milliseconds."""

from __future__ import annotations

import json
import os
import time

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def change(request: HttpRequest) -> HttpResponse:
    """POST {ids, title, at}: wait until `at` (epoch ms), then set the title of each task of `ids` to
    `<title> <id>`, one save() each, in one transaction; answers {pid}."""
    from board.models import Task

    body = json.loads(request.body)
    tasks = Task.objects.in_bulk(body["ids"])
    time.sleep(max(0.0, body["at"] / 1000 - time.time()))
    with transaction.atomic():
        for pk in body["ids"]:
            task = tasks[pk]
            task.title = f"{body['title']} {pk}"
            task.save()
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("forked/change/", change),
    path("", include("example.urls")),
]
