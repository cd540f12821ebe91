"""The account's one price setting (are the product master's prices net or gross), the sentence the
settings pages show for a price of 100.00, and the data migration that drops the tax answers nothing
reads."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from accounts.models import Account, Role
from channels.models import SalesChannel, SyncJob
from inventory.models import InventoryEvent, Product
from inventory.prices import describe_price_rule, example_tax_rate, price_rule_for
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "channels.sync.send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job)))
    )
    return jobs


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_products_page_saves_the_price_basis_and_reprices_the_channels(
    alice: Any, sent: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    channel = SalesChannelFactory(account=alice.account, settings={"price_sync": True, "currency": "EUR"})
    browser = _browser(alice.user)
    page = browser.get(reverse("inventory:product_list")).content.decode()
    assert 'id="price-basis"' in page
    assert '<option value="no" selected>are net (without tax)</option>' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(reverse("inventory:price_basis"), {"prices_include_tax": "yes"})

    assert response.status_code == 302
    assert Account.objects.get(pk=alice.account.pk).prices_include_tax is True
    assert (str(channel.pk), SyncJob.PRICES) in sent
    assert (
        InventoryEvent.objects.filter(account=alice.account, action="account.prices_include_tax").count() == 1
    )
    page = browser.get(reverse("inventory:product_list")).content.decode()
    assert '<option value="yes" selected>include tax</option>' in page

    # Saving the same answer again changes nothing and asks for nothing.
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(reverse("inventory:price_basis"), {"prices_include_tax": "yes"})
    assert sent == []


def test_the_price_basis_needs_an_admin_and_a_clear_answer(alice: Any) -> None:
    member = _browser(alice.member(Role.MEMBER))
    assert member.post(reverse("inventory:price_basis"), {"prices_include_tax": "yes"}).status_code == 403
    assert Account.objects.get(pk=alice.account.pk).prices_include_tax is False

    owner = _browser(alice.user)
    response = owner.post(reverse("inventory:price_basis"), {"prices_include_tax": "maybe"}, follow=True)
    assert response.status_code == 200
    assert "Say yes (prices include tax) or no (prices are net)." in response.content.decode()
    assert Account.objects.get(pk=alice.account.pk).prices_include_tax is False


@pytest.mark.parametrize(
    ("master_gross", "use_store_tax", "sentence"),
    [
        (
            False,
            True,
            "A price of 100.00 in your product master (net) is written to OpenCart as 100.00; "
            "OpenCart adds its own tax.",
        ),
        (
            False,
            False,
            "A price of 100.00 in your product master (net) is written to OpenCart as 119.00 at a 19 % "
            "tax rate: the price customers pay.",
        ),
        (
            True,
            True,
            "A price of 100.00 in your product master (with tax) is written to OpenCart as 84.03 at a "
            "19 % tax rate: the net price OpenCart keeps.",
        ),
        (
            True,
            False,
            "A price of 100.00 in your product master (with tax) is written to OpenCart as 100.00: the "
            "price customers pay.",
        ),
    ],
)
def test_the_sentence_says_what_a_price_of_100_becomes(
    alice: Any, master_gross: bool, use_store_tax: bool, sentence: str
) -> None:
    Account.objects.filter(pk=alice.account.pk).update(prices_include_tax=master_gross)
    alice.account.refresh_from_db()
    Product.objects.create(account=alice.account, sku="A", on_hand=1, tax_rate=Decimal("19"))
    Product.objects.create(account=alice.account, sku="B", on_hand=1, tax_rate=Decimal("19"))
    Product.objects.create(account=alice.account, sku="C", on_hand=1, tax_rate=Decimal("7"))
    rule = price_rule_for("opencart", {"use_store_tax_settings": use_store_tax}, alice.account)
    rate = example_tax_rate(alice.account)

    assert rate == Decimal("19")  # the rate most of the account's products carry
    assert describe_price_rule(rule, "OpenCart", rate) == sentence


def test_the_channel_page_shows_the_sentence_for_its_saved_settings(alice: Any) -> None:
    channel = SalesChannelFactory(
        account=alice.account, settings={"use_store_tax_settings": False, "currency": "EUR"}
    )
    page = _browser(alice.user).get(reverse("channels:detail", args=[channel.pk])).content.decode()
    assert "written to OpenCart as 120.00 at a 20 % tax rate: the price customers pay." in page


def test_the_migration_drops_the_tax_answers_nothing_reads(alice: Any) -> None:
    migration = importlib.import_module("channels.migrations.0006_drop_unused_tax_settings")
    opencart = SalesChannelFactory(
        account=alice.account, settings={"prices_include_tax": True, "use_store_tax_settings": True}
    )
    xcart = SalesChannelFactory(
        account=alice.account,
        platform="xcart",
        settings={
            "prices_include_tax": False,
            "use_store_tax_for_shipping": True,
            "shipping_surcharge_name": "Shipping cost",
            "use_store_tax_settings": False,
            "currency": "USD",
        },
    )

    migration.drop_settings(apps, None)

    assert SalesChannel.objects.get(pk=opencart.pk).settings == {"use_store_tax_settings": True}
    assert SalesChannel.objects.get(pk=xcart.pk).settings == {
        "use_store_tax_settings": False,
        "currency": "USD",
    }
    assert Account.objects.get(pk=alice.account.pk).prices_include_tax is False  # not guessed from them
