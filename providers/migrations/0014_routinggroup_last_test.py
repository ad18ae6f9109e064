# Issue 14: a group's test is recorded on the group, as a provider's is (models.LastTest).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('providers', '0013_move_models_to_their_apps'),
    ]

    operations = [
        migrations.AddField(
            model_name='routinggroup',
            name='last_test_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='routinggroup',
            name='last_test_latency_ms',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='routinggroup',
            name='last_test_message',
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name='routinggroup',
            name='last_test_ok',
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
