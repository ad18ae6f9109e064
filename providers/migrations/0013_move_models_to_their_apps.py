# Issue 14: the access tokens moved to gateway/, the request log and its roll-ups to usage/,
# the throttle's counters to accounts/. Their tables keep their names (db_table), so this
# changes Django's state only: no table is dropped, no row copied. Their content types follow
# them, so permissions given to a group on these models stay where they are.

from django.db import migrations

MOVED = {
    "accesstoken": "gateway",
    "requestlog": "usage",
    "usagerollup": "usage",
    "modelrollup": "usage",
    "tokenrollup": "usage",
    "latencyrollup": "usage",
    "modellatencyrollup": "usage",
    "throttlehit": "accounts",
}


def _relabel(apps, moves):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, (old, new) in moves.items():
        # A content type already made for the new app (post_migrate of an earlier run) wins:
        # the old one is then only a stale row.
        if ContentType.objects.filter(app_label=new, model=model).exists():
            continue
        ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    _relabel(apps, {model: ("providers", app) for model, app in MOVED.items()})


def backwards(apps, schema_editor):
    _relabel(apps, {model: (app, "providers") for model, app in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("providers", "0012_provider_display_name_drop_params_timeouts"),
        ("gateway", "0001_initial"),
        ("usage", "0001_initial"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AccessToken"),
                migrations.DeleteModel(name="RequestLog"),
                migrations.DeleteModel(name="UsageRollup"),
                migrations.DeleteModel(name="ModelRollup"),
                migrations.DeleteModel(name="TokenRollup"),
                migrations.DeleteModel(name="LatencyRollup"),
                migrations.DeleteModel(name="ModelLatencyRollup"),
                migrations.DeleteModel(name="ThrottleHit"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
