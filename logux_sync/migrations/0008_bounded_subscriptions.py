import hashlib
from typing import Any

from django.db import migrations, models


def digest_keys(apps: Any, schema_editor: Any) -> None:
    # The key was the JSON of [channel, filter]; it is now the SHA-256 digest of that JSON.
    Subscription = apps.get_model("logux_sync", "LoguxSubscription")
    for sub in Subscription.objects.using(schema_editor.connection.alias).iterator():
        if len(sub.filter_key) != 64:
            sub.filter_key = hashlib.sha256(sub.filter_key.encode("utf-8", "surrogatepass")).hexdigest()
            sub.save(update_fields=["filter_key"])


class Migration(migrations.Migration):

    dependencies = [
        ("logux_sync", "0007_outbox_payload_text"),
    ]

    operations = [
        migrations.RunPython(digest_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="loguxsubscription",
            name="filter_key",
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name="loguxsubscription",
            index=models.Index(fields=["node_id", "expires_at"], name="logux_sync_sub_node"),
        ),
        migrations.AddIndex(
            model_name="loguxsubscription",
            index=models.Index(fields=["user_id", "expires_at"], name="logux_sync_sub_user"),
        ),
    ]
