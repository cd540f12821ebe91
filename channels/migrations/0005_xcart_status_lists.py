"""X-Cart channels keep payment and shipping statuses apart.

X-Cart's two status lists reuse letters (P = Paid and Processing, D = Declined and Delivered,
R = Refunded and Returned). Store facts saved before this told them apart only by a suffix on the
name ("Paid (payment status)"); each status now carries its list in ``group`` and whether it closes
an order in ``closes_order``. The settings form used to offer both lists to every status field, so
ticking Paid also ticked Processing and "statuses to import" could be saved as ``["P", "A", "P"]``:
those lists lose their repeats (the field only ever held payment codes).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

SUFFIXES = {" (payment status)": "payment", " (shipping status)": "shipping"}
CLOSING = {
    "payment": {"D", "C", "R"},
    "shipping": {"S", "D", "WND", "R", "NF"},
}


def _status(item: Any) -> Any:
    if not isinstance(item, dict) or item.get("group"):
        return item
    name = str(item.get("name") or "")
    for suffix, group in SUFFIXES.items():
        if name.endswith(suffix):
            code = str(item.get("code") or "")
            return {
                **item,
                "name": name[: -len(suffix)],
                "group": group,
                "closes_order": code in CLOSING[group],
            }
    return item


def _unique(codes: Any) -> Any:
    if not isinstance(codes, list):
        return codes
    kept: list[Any] = []
    for code in codes:
        if code not in kept:
            kept.append(code)
    return kept


def forwards(apps: Any, schema_editor: Any) -> None:
    channel_model = apps.get_model("channels", "SalesChannel")
    for channel in channel_model.objects.filter(platform="xcart").only("pk", "settings", "store_facts"):
        settings = dict(channel.settings or {})
        facts = dict(channel.store_facts or {})
        new_settings = dict(settings)
        if "import_statuses" in settings:
            new_settings["import_statuses"] = _unique(settings["import_statuses"])
        new_facts = dict(facts)
        if isinstance(facts.get("order_statuses"), list):
            new_facts["order_statuses"] = [_status(item) for item in facts["order_statuses"]]
        if new_settings != settings or new_facts != facts:
            channel_model.objects.filter(pk=channel.pk).update(settings=new_settings, store_facts=new_facts)


class Migration(migrations.Migration):
    dependencies = [("channels", "0004_threedcart_callback_address")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
