from django.db import migrations


def seed(apps, schema_editor):
    # The version row exists from the start, so concurrent writers only ever UPDATE it.
    apps.get_model("providers", "ConfigState").objects.get_or_create(id=1, defaults={"version": 0})


class Migration(migrations.Migration):
    dependencies = [("providers", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
