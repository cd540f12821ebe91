"""Drop channel settings that no longer decide anything.

- ``prices_include_tax`` (every platform) said whether the product master's prices include tax. That
  is now one account setting (``Account.prices_include_tax``); what each store's price field holds is
  declared by its connector. The wizard used to pre-fill the channel value from OpenCart's "display
  prices with tax" switch, so stored values cannot be trusted as the seller's answer and are not
  copied to the account (which starts net, as every push so far assumed without this setting).
- ``use_store_tax_for_shipping`` and ``shipping_surcharge_name`` (X-Cart): Storelink downloads each
  order's shipping and tax as the store computed them (surcharges carry their own type and included
  flag), and pushes no shipping costs, so neither has anything to change.
"""

from django.db import migrations

DROPPED = {
    "opencart": ("prices_include_tax",),
    "threedcart": ("prices_include_tax",),
    "xcart": ("prices_include_tax", "use_store_tax_for_shipping", "shipping_surcharge_name"),
}


def drop_settings(apps, schema_editor):
    SalesChannel = apps.get_model("channels", "SalesChannel")
    for platform, keys in DROPPED.items():
        for channel in SalesChannel.objects.filter(platform=platform).only("pk", "settings").iterator():
            settings = dict(channel.settings or {})
            if any(key in settings for key in keys):
                for key in keys:
                    settings.pop(key, None)
                SalesChannel.objects.filter(pk=channel.pk).update(settings=settings)


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0005_xcart_status_lists"),
    ]

    operations = [
        migrations.RunPython(drop_settings, migrations.RunPython.noop),
    ]
