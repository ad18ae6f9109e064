# Hourly and daily roll-ups of the request log (issue #5): the usage page reads these for
# ranges of a day or more. Existing records are counted in once, here.

from django.db import migrations, models

from providers.migrations._rollup_backfill import rebuild


def backfill(apps, schema_editor):
    # Counts the existing records into the two tables this migration creates, through a
    # frozen copy of the rebuild (see _rollup_backfill.py), never the live service.
    rebuild(apps, ("UsageRollup", "LatencyRollup"))


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0008_login_throttle"),
    ]

    operations = [
        migrations.CreateModel(
            name="LatencyRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.CharField(choices=[("h", "hour"), ("d", "day")], max_length=1)),
                ("start", models.DateTimeField()),
                ("provider", models.CharField(blank=True, max_length=63)),
                ("model", models.CharField(blank=True, max_length=200)),
                ("token_name", models.CharField(max_length=63)),
                ("bucket", models.PositiveSmallIntegerField()),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("period", "start", "provider", "model", "token_name", "bucket"),
                        name="unique_latency_rollup",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="UsageRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.CharField(choices=[("h", "hour"), ("d", "day")], max_length=1)),
                ("start", models.DateTimeField()),
                ("provider", models.CharField(blank=True, max_length=63)),
                ("model", models.CharField(blank=True, max_length=200)),
                ("token_name", models.CharField(max_length=63)),
                ("requests", models.PositiveIntegerField(default=0)),
                ("errors", models.PositiveIntegerField(default=0)),
                ("prompt_tokens", models.BigIntegerField(default=0)),
                ("completion_tokens", models.BigIntegerField(default=0)),
                ("cost", models.FloatField(blank=True, null=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("period", "start", "provider", "model", "token_name"),
                        name="unique_usage_rollup",
                    )
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
