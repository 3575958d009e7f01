from django.db import migrations

import logux_sync.sync.models


class Migration(migrations.Migration):
    """The outbox payload as JSON text: the database no longer parses each one written."""

    dependencies = [
        ("logux_sync", "0006_late_deliveries"),
    ]

    operations = [
        migrations.AlterField(
            model_name="loguxoutbox",
            name="payload",
            field=logux_sync.sync.models.OutboxPayload(),
        ),
    ]
