# Placeholder for health history (issue #6); its operations are filled in with that feature.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0006_name_validators"),
    ]

    operations = []
