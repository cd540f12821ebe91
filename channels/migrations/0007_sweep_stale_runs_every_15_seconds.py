"""Stale runs are swept every 15 seconds instead of every minute.

Leases are now short (30 s, renewed while a job works), so a killed worker's job can be handed on
within a minute only if the sweeper looks that often; it is one indexed query when nothing is stale.
A schedule an operator already changed in the admin is left as it is.
"""

from django.db import migrations

NAME = "Storelink: sweep stale sync runs"


def sweep_often(apps, schema_editor, every=15, expires=14, was=60):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    task = PeriodicTask.objects.filter(name=NAME, interval__every=was, interval__period="seconds").first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    task.expire_seconds = expires
    task.save(update_fields=["interval", "expire_seconds"])


def sweep_every_minute(apps, schema_editor):
    sweep_often(apps, schema_editor, every=60, expires=55, was=15)


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0006_drop_unused_tax_settings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(sweep_often, sweep_every_minute)]
