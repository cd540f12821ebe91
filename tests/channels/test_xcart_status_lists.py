"""X-Cart's payment and shipping statuses reuse letters (P = Paid and Processing): the channel page,
the settings service and stored channels keep the two lists apart.

The store facts come from a real "test connection" against the X-Cart sandbox, so the form is
built from exactly what a seller's store reports.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse

from channels import services
from channels.models import SalesChannel
from connectors.base import ConnectorOptions
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _ui_test_settings(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="module")
def xcart_facts() -> dict[str, Any]:
    app = make_sandbox("xcart", flavour="addon")
    app.seed(3, 5, 2, 1)
    with SandboxServer(app):
        connector = build_connector(
            "xcart",
            app.connector_store_url(),
            app.connector_credentials(),
            app.connector_settings(),
            options=ConnectorOptions(allow_private_hosts=True, max_retries=1),
        )
        facts = connector.test_connection()
        connector.close()
    return services.store_facts_to_dict(facts)


@pytest.fixture
def channel(alice: Any, client: Any, xcart_facts: dict[str, Any]) -> SalesChannel:
    client.force_login(alice.user)
    return SalesChannelFactory(
        account=alice.account,
        platform="xcart",
        store_url="https://xcart.example.com",
        credentials={"api_key": "xcrw-secret"},
        settings={
            "api_flavour": "addon",
            "currency": "USD",
            "processed_status": "S",
            "import_statuses": ["P"],
        },
        store_facts=xcart_facts,
    )


def _inputs(body: str, name: str) -> list[str]:
    return re.findall(rf'<input[^>]*name="{name}"[^>]*>', body)


def _select(body: str, name: str) -> str:
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', body, re.S)
    assert match, f"no select {name}"
    return match.group(1)


def _form(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "US shop",
        "api_flavour": "addon",
        "currency": "USD",
        "use_store_tax_settings": "yes",
        "use_store_tax_for_shipping": "yes",
        "prices_include_tax": "no",
        "shipping_surcharge_name": "Shipping cost",
        "processed_status": "S",
        "import_statuses": ["P", "A"],
        "order_lookback_days": "7",
        "order_interval_minutes": "5",
        "stock_sync": "yes",
        "price_sync": "no",
    }
    return values | changes


def test_the_facts_keep_each_status_list_and_closing_flag(xcart_facts: dict[str, Any]) -> None:
    statuses = {(s["group"], s["code"]): s for s in xcart_facts["order_statuses"]}
    assert statuses[("payment", "P")]["name"] == "Paid"
    assert statuses[("shipping", "P")]["name"] == "Processing"
    assert statuses[("payment", "C")]["closes_order"] is True
    assert statuses[("shipping", "N")]["closes_order"] is False


def test_each_status_field_offers_only_its_own_list(client: Any, channel: SalesChannel) -> None:
    body = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()

    payment_boxes = _inputs(body, "import_statuses")
    values = [re.search(r'value="([^"]*)"', box).group(1) for box in payment_boxes]  # type: ignore[union-attr]
    assert values == ["Q", "A", "PP", "P", "D", "C", "R"]  # one checkbox per code: no twin to tick
    ticked = [box for box in payment_boxes if "checked" in box]
    assert len(ticked) == 1
    assert 'value="P"' in ticked[0]
    assert "Paid (P)" in body
    processed = _select(body, "processed_status")
    assert "Processing (P)" in processed
    assert "Paid (P)" not in processed
    assert "Declined (D)" not in processed


def test_ticking_paid_saves_paid_only(client: Any, channel: SalesChannel) -> None:
    response = client.post(reverse("channels:detail", args=[channel.pk]), _form(import_statuses=["P", "A"]))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.settings["import_statuses"] == ["P", "A"]
    assert channel.settings["processed_status"] == "S"

    body = client.get(reverse("channels:detail", args=[channel.pk])).content.decode()
    ticked = [box for box in _inputs(body, "import_statuses") if "checked" in box]
    assert len(ticked) == 2  # Paid and Authorized; Processing is not even on offer here
    assert "Processing (P)" not in "".join(_inputs(body, "import_statuses"))


def test_a_code_ticked_twice_is_saved_once(client: Any, channel: SalesChannel) -> None:
    response = client.post(
        reverse("channels:detail", args=[channel.pk]), _form(import_statuses=["P", "A", "P"])
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.settings["import_statuses"] == ["P", "A"]


def test_a_shipping_code_is_not_a_status_to_import(client: Any, channel: SalesChannel) -> None:
    response = client.post(reverse("channels:detail", args=[channel.pk]), _form(import_statuses=["S"]))
    assert response.status_code == 200
    channel.refresh_from_db()
    assert channel.settings["import_statuses"] == ["P"]


def test_the_settings_service_checks_each_field_against_its_own_list(
    alice: Any, channel: SalesChannel
) -> None:
    with pytest.raises(services.ChannelError) as caught:
        services.update_channel_settings(
            channel, actor=alice.user, settings={"import_statuses": ["P", "S"], "processed_status": "C"}
        )
    errors = caught.value.message_dict
    assert "S is not one of your store's order statuses" in errors["import_statuses"][0]
    assert "C is not one of your store's order statuses" in errors["processed_status"][0]
    updated = services.update_channel_settings(
        channel, actor=alice.user, settings={"import_statuses": ["P", "A"], "processed_status": "P"}
    )
    assert updated.settings["import_statuses"] == ["P", "A"]
    assert updated.settings["processed_status"] == "P"  # Processing, a shipping status


def test_stored_channels_are_migrated_to_separate_lists(alice: Any) -> None:
    old_facts = {
        "platform_version": "5.0–5.4 (REST API add-on)",
        "order_statuses": [
            {"code": "P", "name": "Processing (shipping status)"},
            {"code": "S", "name": "Shipped (shipping status)"},
            {"code": "P", "name": "Paid (payment status)"},
            {"code": "C", "name": "Cancelled (payment status)"},
        ],
    }
    old = SalesChannelFactory(
        account=alice.account,
        platform="xcart",
        settings={"import_statuses": ["P", "A", "P"], "processed_status": "S"},
        store_facts=old_facts,
    )
    other = SalesChannelFactory(account=alice.account, settings={"import_statuses": ["1", "1"]})
    migration = importlib.import_module("channels.migrations.0005_xcart_status_lists")

    migration.forwards(apps, None)

    old.refresh_from_db()
    other.refresh_from_db()
    assert old.settings["import_statuses"] == ["P", "A"]
    assert old.store_facts["order_statuses"] == [
        {"code": "P", "name": "Processing", "group": "shipping", "closes_order": False},
        {"code": "S", "name": "Shipped", "group": "shipping", "closes_order": True},
        {"code": "P", "name": "Paid", "group": "payment", "closes_order": False},
        {"code": "C", "name": "Cancelled", "group": "payment", "closes_order": True},
    ]
    assert other.settings["import_statuses"] == ["1", "1"]  # other platforms are left alone


def test_stored_orders_name_both_lists_and_a_cancelled_payment_closes_them(alice: Any) -> None:
    from tests.orders.factories import make_order

    shop = SalesChannelFactory(account=alice.account, platform="xcart")
    cancelled = make_order(
        shop,
        "7",
        status_code="N",
        status_name="New / Cancelled",
        raw={"paymentStatus": "C", "shippingStatus": "N"},
    )
    paid = make_order(
        shop, "8", status_code="P", status_name="Processing / Paid", raw={"payment_status": {"code": "P"}}
    )
    migration = importlib.import_module("orders.migrations.0005_xcart_status_lists")

    migration.forwards(apps, None)

    cancelled.refresh_from_db()
    paid.refresh_from_db()
    assert cancelled.status_name == "Shipping: New · Payment: Cancelled"
    assert cancelled.store_closed is True
    assert paid.status_name == "Shipping: Processing · Payment: Paid"
    assert paid.store_closed is False
