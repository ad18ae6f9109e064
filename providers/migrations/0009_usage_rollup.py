# Placeholder for hourly usage roll-up (issue #5); its operations are filled in with that feature.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0008_login_throttle"),
    ]

    operations = []
