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
                    name='LatencyRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('h', 'hour'), ('d', 'day')], max_length=1)),
                        ('start', models.DateTimeField()),
                        ('provider', models.CharField(blank=True, max_length=63)),
                        ('model', models.CharField(blank=True, max_length=200)),
                        ('token_name', models.CharField(max_length=63)),
                        ('bucket', models.PositiveSmallIntegerField()),
                        ('count', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'providers_latencyrollup',
                        'indexes': [models.Index(fields=['period', 'provider', 'model', 'start'], name='latency_model')],
                        'constraints': [models.UniqueConstraint(fields=('period', 'start', 'provider', 'model', 'token_name', 'bucket'), name='unique_latency_rollup')],
                    },
                ),
                migrations.CreateModel(
                    name='ModelLatencyRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('h', 'hour'), ('d', 'day')], max_length=1)),
                        ('start', models.DateTimeField()),
                        ('provider', models.CharField(blank=True, max_length=63)),
                        ('model', models.CharField(blank=True, max_length=200)),
                        ('bucket', models.PositiveSmallIntegerField()),
                        ('count', models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        'db_table': 'providers_modellatencyrollup',
                        'indexes': [models.Index(fields=['period', 'provider', 'model', 'start'], name='model_latency_model')],
                        'constraints': [models.UniqueConstraint(fields=('period', 'start', 'provider', 'model', 'bucket'), name='unique_model_latency_rollup')],
                    },
                ),
                migrations.CreateModel(
                    name='ModelRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('h', 'hour'), ('d', 'day')], max_length=1)),
                        ('start', models.DateTimeField()),
                        ('requests', models.PositiveIntegerField(default=0)),
                        ('errors', models.PositiveIntegerField(default=0)),
                        ('prompt_tokens', models.BigIntegerField(default=0)),
                        ('completion_tokens', models.BigIntegerField(default=0)),
                        ('cost', models.FloatField(blank=True, null=True)),
                        ('provider', models.CharField(blank=True, max_length=63)),
                        ('model', models.CharField(blank=True, max_length=200)),
                    ],
                    options={
                        'db_table': 'providers_modelrollup',
                        'constraints': [models.UniqueConstraint(fields=('period', 'start', 'provider', 'model'), name='unique_model_rollup')],
                    },
                ),
                migrations.CreateModel(
                    name='RequestLog',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(db_index=True)),
                        ('token_name', models.CharField(default='in-process', max_length=63)),
                        ('requested_model', models.CharField(max_length=264)),
                        ('provider', models.CharField(blank=True, max_length=63)),
                        ('model', models.CharField(blank=True, max_length=200)),
                        ('fallbacks', models.PositiveSmallIntegerField(default=0)),
                        ('ok', models.BooleanField()),
                        ('status', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('error', models.CharField(blank=True, max_length=300)),
                        ('latency_ms', models.FloatField()),
                        ('prompt_tokens', models.PositiveIntegerField(blank=True, null=True)),
                        ('completion_tokens', models.PositiveIntegerField(blank=True, null=True)),
                        ('cost', models.FloatField(blank=True, null=True)),
                        ('stream', models.BooleanField(default=False)),
                    ],
                    options={
                        'db_table': 'providers_requestlog',
                        'ordering': ['-at', '-id'],
                        'indexes': [models.Index(fields=['provider', 'at'], name='providers_r_provide_629d87_idx'), models.Index(fields=['token_name', 'at'], name='providers_r_token_n_fd341f_idx'), models.Index(fields=['model', 'at'], name='providers_r_model_c6f534_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='TokenRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('h', 'hour'), ('d', 'day')], max_length=1)),
                        ('start', models.DateTimeField()),
                        ('requests', models.PositiveIntegerField(default=0)),
                        ('errors', models.PositiveIntegerField(default=0)),
                        ('prompt_tokens', models.BigIntegerField(default=0)),
                        ('completion_tokens', models.BigIntegerField(default=0)),
                        ('cost', models.FloatField(blank=True, null=True)),
                        ('token_name', models.CharField(max_length=63)),
                    ],
                    options={
                        'db_table': 'providers_tokenrollup',
                        'constraints': [models.UniqueConstraint(fields=('period', 'start', 'token_name'), name='unique_token_rollup')],
                    },
                ),
                migrations.CreateModel(
                    name='UsageRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('period', models.CharField(choices=[('h', 'hour'), ('d', 'day')], max_length=1)),
                        ('start', models.DateTimeField()),
                        ('requests', models.PositiveIntegerField(default=0)),
                        ('errors', models.PositiveIntegerField(default=0)),
                        ('prompt_tokens', models.BigIntegerField(default=0)),
                        ('completion_tokens', models.BigIntegerField(default=0)),
                        ('cost', models.FloatField(blank=True, null=True)),
                        ('provider', models.CharField(blank=True, max_length=63)),
                        ('model', models.CharField(blank=True, max_length=200)),
                        ('token_name', models.CharField(max_length=63)),
                    ],
                    options={
                        'db_table': 'providers_usagerollup',
                        'indexes': [models.Index(fields=['period', 'token_name', 'start'], name='usage_token')],
                        'constraints': [models.UniqueConstraint(fields=('period', 'start', 'provider', 'model', 'token_name'), name='unique_usage_rollup')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
