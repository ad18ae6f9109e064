# Login throttling and the connection-test rate limit (issue #7).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0007_provider_health"),
    ]

    operations = [
        migrations.CreateModel(
            name="ThrottleHit",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(max_length=16)),
                ("key", models.CharField(max_length=200)),
                ("at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["scope", "key", "at"], name="throttle_scope_key_at"),
                    models.Index(fields=["at"], name="throttle_at"),
                ],
            },
        ),
    ]
