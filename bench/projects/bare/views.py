"""Parse the same JSON body, check the secret, answer the protocol's fixed answers: no handlers, no I/O."""

from __future__ import annotations

import hmac
import json

from base_settings import LOGUX_SECRET
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

LOADED = {"type": "bench/item", "id": "1", "text": "hello"}


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = json.loads(request.body)
    if not hmac.compare_digest(body["secret"].encode(), LOGUX_SECRET.encode()):
        return HttpResponse("Wrong secret", status=403)
    answers: list[dict] = []
    for command in body["commands"]:
        if command["command"] == "auth":
            answers.append({"answer": "authenticated", "authId": command["authId"], "subprotocol": "1.0.0"})
            continue
        id = command["meta"]["id"]
        answers.append({"answer": "approved", "id": id})
        if command["action"]["type"] == "logux/subscribe":
            answers.append({"answer": "action", "id": id, "action": LOADED, "meta": {"nodes": ["10:bench:tab"]}})
        answers.append({"answer": "processed", "id": id})
    return JsonResponse(answers, safe=False)
