"""3DCart status 6 is Hold, not "Not Completed" (7): held orders reserve stock again.

Migration 0004 closed 3DCart orders in 4, 5 and 6; a held order is still to be shipped, and an
abandoned checkout (7) is the one that holds nothing. The next download keeps the field current.
"""

from django.db import migrations


def hold_is_open(apps, schema_editor):
    order = apps.get_model("orders", "Order")
    threedcart = order.objects.filter(channel__platform="threedcart")
    threedcart.filter(status_code="6").update(store_closed=False)
    threedcart.filter(status_code="7").update(store_closed=True)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_xcart_status_lists"),
    ]

    operations = [migrations.RunPython(hold_is_open, migrations.RunPython.noop)]
