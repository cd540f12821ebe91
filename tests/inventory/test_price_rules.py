"""Price rules against the sandbox stores: what each store's price field holds after a push.

The master's basis is the account's setting, the store's basis the connector's declaration (or the
seller's "do not use the store's tax settings"); a storefront's "display prices with tax" must never
change what is written. Every price is read back from the sandbox's own product table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Account
from channels import services as channel_services
from channels.forms import facts_as_dict
from channels.models import SalesChannel
from channels.wizard_views import _settings_defaults_from_facts
from connectors.registry import CONNECTORS
from connectors.sandbox import SandboxApp, SandboxServer, make_sandbox
from inventory.catalog import upsert_products
from inventory.matching import refresh_listings
from inventory.prices import price_rule
from inventory.push import PushSummary, push_prices_for_channel
from tests.inventory.stores import SANDBOX_CASES

pytestmark = pytest.mark.django_db

PRICE = Decimal("249.50")
RATE = Decimal("20")


@pytest.fixture
def sandbox(sandbox_settings: Any) -> Iterator[Any]:
    """``sandbox(platform, options)`` starts a seeded sandbox store (no channel yet); stops them all."""
    servers: list[SandboxServer] = []

    def start(platform: str, options: dict[str, Any] | None = None) -> SandboxApp:
        app = make_sandbox(platform, **(options or {}))
        app.seed(6, 0, 1, 7)
        servers.append(SandboxServer(app).start())
        extra = app.connector_options()
        if extra.get("api_base"):
            sandbox_settings.THREEDCART_API_BASE = extra["api_base"]
        keys = extra.get("app_keys") or {}
        if keys:
            sandbox_settings.THREEDCART_PUBLIC_KEY = keys.get("threedcart_public_key") or keys.get(
                "public_key"
            )
            sandbox_settings.THREEDCART_PRIVATE_KEY = keys.get("threedcart_private_key") or keys.get(
                "private_key"
            )
        return app

    yield start
    for server in servers:
        server.stop()


def _api_channel(account: Account, app: SandboxApp, platform: str, name: str, **answers: Any) -> SalesChannel:
    """A channel added the way the REST API adds it: the connection is tested, ``answers`` sent as
    given over the sandbox's own settings (currency, statuses)."""
    return channel_services.add_channel(
        account,
        actor=None,
        platform=platform,
        name=name,
        store_url=app.connector_store_url(),
        credentials=app.connector_credentials(),
        settings={**app.connector_settings(), "price_sync": True, **answers},
    )


def _form_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value if isinstance(value, list) else ("" if value is None else str(value))


def _wizard_channel(client: Any, app: SandboxApp, platform: str, name: str, **answers: Any) -> SalesChannel:
    """A channel added through the wizard's pages; the seller keeps what the settings step pre-fills
    (from the store's test connection) and changes only ``answers``."""
    assert client.post(reverse("channels:add_name", args=[platform]), {"name": name}).status_code == 302
    response = client.post(
        reverse("channels:add_connection", args=[platform]),
        {"store_url": app.connector_store_url(), **app.connector_credentials()},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    facts = channel_services.test_connection(
        platform, app.connector_store_url(), app.connector_credentials(), {}
    )
    values = {**_settings_defaults_from_facts(platform, facts_as_dict(facts)), "price_sync": True, **answers}
    page = client.post(
        reverse("channels:add_settings", args=[platform]), {k: _form_value(v) for k, v in values.items()}
    )
    assert page.status_code == 302, page.content.decode()[:3000]
    return SalesChannel.objects.get(name=name)


def _product_sku(channel: SalesChannel) -> str:
    """A store product (not a variant: option prices are relative on some stores) to price."""
    connector = channel_services.connector_for(channel)
    try:
        return sorted(
            item.sku for item in connector.list_listings() if item.sku and not item.remote_variant_id
        )[0]
    finally:
        connector.close()


def _push(channel: SalesChannel) -> PushSummary:
    refresh_listings(channel)
    connector = channel_services.connector_for(channel)
    try:
        return push_prices_for_channel(channel, connector)
    finally:
        connector.close()


def _price_master(account: Account, sku: str, *, gross: bool) -> None:
    Account.objects.filter(pk=account.pk).update(prices_include_tax=gross)
    result = upsert_products(
        account, [{"sku": sku, "price": str(PRICE), "tax_rate": str(RATE), "on_hand": 3}], actor=None
    )
    assert result.ok, result.errors


def _declare_gross_store(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    connector = CONNECTORS[platform]
    monkeypatch.setattr(
        connector, "capabilities", dataclasses.replace(connector.capabilities, tax_inclusive_prices=True)
    )


@pytest.mark.parametrize(("platform", "options"), SANDBOX_CASES)
@pytest.mark.parametrize(
    ("master_gross", "store_gross", "expected"),
    [
        pytest.param(False, False, Decimal("249.50"), id="net-master-net-store"),
        pytest.param(False, True, Decimal("299.40"), id="net-master-gross-store"),
        pytest.param(True, False, Decimal("207.92"), id="gross-master-net-store"),
        pytest.param(True, True, Decimal("249.50"), id="gross-master-gross-store"),
    ],
)
def test_the_store_price_field_holds_what_the_rule_says(
    alice: Any,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    options: dict[str, Any],
    master_gross: bool,
    store_gross: bool,
    expected: Decimal,
) -> None:
    if store_gross:
        _declare_gross_store(monkeypatch, platform)
    app = sandbox(platform, options)
    channel = _api_channel(alice.account, app, platform, "Shop")
    sku = _product_sku(channel)
    _price_master(alice.account, sku, gross=master_gross)

    summary = _push(channel)

    assert summary.failed == 0, summary.errors
    assert app.price_of(sku) == expected
    # Nothing differs any more: the next run writes nothing.
    app.clear_writes()
    assert _push(channel).sent == 0


@pytest.mark.parametrize(("platform", "options"), [case for case in SANDBOX_CASES if case.id != "threedcart"])
def test_not_using_the_store_tax_settings_writes_the_price_customers_pay(
    alice: Any, sandbox: Any, platform: str, options: dict[str, Any]
) -> None:
    app = sandbox(platform, options)
    channel = _api_channel(alice.account, app, platform, "Shop", use_store_tax_settings=False)
    sku = _product_sku(channel)
    _price_master(alice.account, sku, gross=False)

    _push(channel)

    assert app.price_of(sku) == Decimal("299.40")


def test_opencart_showing_prices_with_tax_still_gets_net_prices_from_the_wizard(
    client: Any, alice: Any, sandbox: Any
) -> None:
    """config_tax=1 (the default: the storefront displays prices with tax) says nothing about how
    product.price is stored; a channel set up with the wizard's pre-filled answers writes net."""
    client.force_login(alice.user)
    app = sandbox("opencart")
    facts = channel_services.test_connection(
        "opencart", app.connector_store_url(), app.connector_credentials(), {}
    )
    assert facts.prices_include_tax is True  # the store displays gross ...

    channel = _wizard_channel(client, app, "opencart", "OpenCart shop")
    sku = _product_sku(channel)
    _price_master(alice.account, sku, gross=False)
    _push(channel)

    assert app.price_of(sku) == PRICE  # ... and stores net: 249.50, never 299.40


@pytest.mark.parametrize(("platform", "options"), SANDBOX_CASES)
@pytest.mark.parametrize("answers", [{}, {"use_store_tax_settings": False}], ids=["defaults", "no-store-tax"])
def test_wizard_and_api_channels_with_the_same_answers_write_the_same_price(
    client: Any, alice: Any, sandbox: Any, platform: str, options: dict[str, Any], answers: dict[str, Any]
) -> None:
    names = {spec.name for spec in CONNECTORS[platform].settings_fields}
    answers = {key: value for key, value in answers.items() if key in names}
    client.force_login(alice.user)
    # One store after the other: a 3DCart sandbox is reached through one deployment-wide API host.
    wizard_store = sandbox(platform, options)
    answers = {**wizard_store.connector_settings(), **answers}
    by_wizard = _wizard_channel(client, wizard_store, platform, "By wizard", **answers)
    sku = _product_sku(by_wizard)
    _price_master(alice.account, sku, gross=False)
    _push(by_wizard)
    api_store = sandbox(platform, options)
    by_api = _api_channel(alice.account, api_store, platform, "By API", **answers)
    assert sku == _product_sku(by_api)
    _push(by_api)

    assert by_wizard.settings == by_api.settings
    assert price_rule(by_wizard) == price_rule(by_api)
    assert wizard_store.price_of(sku) == api_store.price_of(sku)
    expected = Decimal("299.40") if answers.get("use_store_tax_settings") is False else PRICE
    assert api_store.price_of(sku) == expected
