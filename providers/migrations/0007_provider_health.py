# Health history (issue #6): consecutive-failure counting, the unhealthy state, the
# per-provider "take out of routing groups while unhealthy" switch, and ProbeResult.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0006_name_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="provider",
            name="consecutive_failures",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="provider",
            name="drain_when_unhealthy",
            field=models.BooleanField(
                default=False, verbose_name="Take out of routing groups while unhealthy"
            ),
        ),
        migrations.AddField(
            model_name="provider",
            name="unhealthy_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.CreateModel(
            name="ProbeResult",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                ("ok", models.BooleanField()),
                ("latency_ms", models.FloatField(blank=True, null=True)),
                ("status", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("message", models.CharField(blank=True, max_length=300)),
                ("source", models.CharField(blank=True, max_length=150)),
                (
                    "provider",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="probes",
                        to="providers.provider",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["provider", "-at"], name="probe_provider_at")],
            },
        ),
    ]
