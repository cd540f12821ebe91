"""Order polling adapts to each store, and the dispatcher ticks every 10 seconds.

Two columns on the schedule say when an order poll last found something and when the last full
download ran. The dispatcher looks for due work every 10 s instead of every 30 s: a due poll waits
for the next tick, so the tick is part of how late a sale reaches the other stores, and an idle tick
is one indexed query. A dispatcher schedule an operator already changed in the admin is left alone.
"""

from django.db import migrations, models

NAME = "Storelink: dispatch due sync jobs"


def tick_often(apps, schema_editor, every=10, expires=9, was=30):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    task = PeriodicTask.objects.filter(name=NAME, interval__every=was, interval__period="seconds").first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    task.expire_seconds = expires
    task.save(update_fields=["interval", "expire_seconds"])


def tick_every_30_seconds(apps, schema_editor):
    tick_often(apps, schema_editor, every=30, expires=25, was=10)


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0012_partial_due_indexes_and_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelschedule",
            name="orders_active_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="channelschedule",
            name="orders_downloaded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(tick_often, tick_every_30_seconds),
    ]
