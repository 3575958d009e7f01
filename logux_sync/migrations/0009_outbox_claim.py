from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("logux_sync", "0008_bounded_subscriptions"),
    ]

    operations = [
        migrations.AddField(
            model_name="loguxoutbox",
            name="claim",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
    ]
