# The model(s) moved here from providers/ (issue 14). The tables exist already (created
# by providers' migrations 0001-0012, names kept with db_table): only Django's state moves,
# no row is copied. providers 0013 removes them from providers' state.

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('providers', '0012_provider_display_name_drop_params_timeouts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ThrottleHit',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(max_length=16)),
                        ('key', models.CharField(max_length=200)),
                        ('at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'providers_throttlehit',
                        'indexes': [models.Index(fields=['scope', 'key', 'at'], name='throttle_scope_key_at'), models.Index(fields=['at'], name='throttle_at')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
