"""Beat schedules as django-celery-beat rows, so operators can change them in the admin.

The dispatcher entry has an expiry just under its interval: a tick that waited in the queue longer
than that is dropped instead of piling up behind a slow worker (the next tick does the same work).
"""

from django.db import migrations

SCHEDULES = [
    # (name, task, every seconds, expires seconds)
    ("Storelink: dispatch due sync jobs", "channels.tasks.dispatch_due_jobs", 30, 25),
    ("Storelink: sweep stale sync runs", "channels.tasks.sweep_stale_runs", 60, 55),
    ("Storelink: hourly stock and price reconcile", "channels.tasks.reconcile_inventory", 3600, 3000),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, expires in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": interval, "expire_seconds": expires, "enabled": True},
        )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0002_job_lease_channel_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
