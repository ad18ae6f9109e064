# Placeholder for login throttling (issue #7); its operations are filled in with that feature.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0007_provider_health"),
    ]

    operations = []
