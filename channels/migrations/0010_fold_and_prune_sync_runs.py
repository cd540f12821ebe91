"""Sync runs that change nothing are folded into one row, and old runs are pruned daily.

``checks``/``last_checked_at`` let one row stand for a series of runs that found nothing to do; the
beat entry runs ``channels.tasks.prune_sync_runs`` once a day (``SYNC_RUN_RETENTION_DAYS``).
"""

from django.db import migrations, models

NAME = "Storelink: prune old sync runs"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=86400, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "channels.tasks.prune_sync_runs",
            "interval": interval,
            "expire_seconds": 3600,
            "enabled": True,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0009_channel_counts_failing_runs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="checks",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="last_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
