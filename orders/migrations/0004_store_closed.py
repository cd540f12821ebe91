from django.db import migrations, models

#: The statuses that closed an order on each platform when this field was added (the values the
#: reservation rule used then), frozen here so the migration means the same whenever it runs.
CLOSED_AT_MIGRATION = {
    "opencart": ["3", "5", "7", "8", "9", "10", "11", "12", "13", "14", "16"],
    "xcart": ["S", "D", "WND", "R", "NF"],
    "threedcart": ["4", "5", "6"],
}


def fill_store_closed(apps, schema_editor):
    """Existing orders are closed when their status is one of their platform's closed statuses."""
    order = apps.get_model("orders", "Order")
    for platform, codes in CLOSED_AT_MIGRATION.items():
        order.objects.filter(channel__platform=platform, status_code__in=codes).update(store_closed=True)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_money_four_decimals"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="store_closed",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(fill_store_closed, migrations.RunPython.noop),
    ]
