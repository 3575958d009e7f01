"""`manage.py demo_users`: create the example's two demo users (and print Logux tokens with --tokens)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from logux_sync import make_token

DEMO_USERS = [("alice", "alice"), ("bob", "bob")]


class Command(BaseCommand):
    help = "Create the demo users alice/alice and bob/bob (staff, so they can use the admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tokens", action="store_true", help="Print {username: {id, token}} as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        result = {}
        for username, password in DEMO_USERS:
            user, created = model.objects.get_or_create(username=username, defaults={"is_staff": True})
            if created:
                user.set_password(password)
                user.is_superuser = True
                user.save()
            result[username] = {"id": str(user.pk), "token": make_token(user)}
        if options["tokens"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write("Demo users: " + ", ".join(f"{u}/{p}" for u, p in DEMO_USERS))
