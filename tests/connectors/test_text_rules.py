"""One rule refuses invisible and text-direction characters in names, SKUs and tracking numbers.

Bidirectional overrides make "gnp.exe" display as "exe.png" and a SKU look like another; zero-width
characters make two identical-looking SKUs differ. Channel names, product names, SKUs and tracking
numbers all refuse them, with a message that names the character.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from channels import services as channel_services
from channels.models import SalesChannel
from connectors.text import describe_character, first_unsafe_character, unsafe_character_message
from inventory.catalog import upsert_products
from inventory.models import Product
from orders.shipments import _clean_tracking
from tests.factories import OPENCART_SECRET

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
REFUSED = BIDI + ZERO_WIDTH


@pytest.mark.parametrize("ch", [*REFUSED, "\x00", "\t", "\n", "\x7f", "\ud800"])
def test_the_rule_refuses_controls_surrogates_bidi_and_zero_width(ch: str) -> None:
    assert first_unsafe_character(f"Mug{ch}Blue") == ch
    assert first_unsafe_character(["ok", f"x{ch}"]) == ch


@pytest.mark.parametrize("text", ["Müller & Söhne", "日本の店", "متجر", "Café – №1", "SKU-42/β"])
def test_ordinary_text_in_any_script_passes(text: str) -> None:
    assert first_unsafe_character(text) is None
    assert unsafe_character_message(text) is None


def test_the_message_names_the_character() -> None:
    assert describe_character("\u202e") == "U+202E (RIGHT-TO-LEFT OVERRIDE)"
    assert describe_character("\ufeff") == "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"
    message = unsafe_character_message("a\u200bb", "The SKU")
    assert message is not None
    assert message.startswith("The SKU contains")
    assert "U+200B (ZERO WIDTH SPACE)" in message


@pytest.mark.django_db
@pytest.mark.parametrize("ch", REFUSED)
def test_channel_names_refuse_bidi_and_zero_width(alice, fake_store, ch: str) -> None:
    with pytest.raises(ValidationError) as caught:
        channel_services.add_channel(
            alice.account,
            actor=alice.user,
            platform="opencart",
            name=f"Main{ch}shop",
            store_url="https://shop.example.com/",
            credentials={"api_username": "Default", "api_key": OPENCART_SECRET},
            settings={"currency": "EUR", "import_statuses": ["1", "2"]},
        )
    assert f"U+{ord(ch):04X}" in caught.value.message_dict["name"][0]
    assert not SalesChannel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("ch", REFUSED)
def test_skus_and_product_names_refuse_bidi_and_zero_width(alice, ch: str) -> None:
    result = upsert_products(
        alice.account,
        [{"sku": f"MUG{ch}", "on_hand": 1}, {"sku": "CAP", "name": f"Cap{ch}", "on_hand": 1}],
        actor=alice.user,
    )
    by_index = {error.index: error.errors for error in result.errors}
    assert f"U+{ord(ch):04X}" in by_index[0]["sku"][0]
    assert f"U+{ord(ch):04X}" in by_index[1]["name"][0]
    assert not Product.objects.exists()


@pytest.mark.parametrize("ch", REFUSED)
def test_tracking_numbers_refuse_bidi_and_zero_width(ch: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _clean_tracking([f"1Z999{ch}AA10123456784"])
    assert f"U+{ord(ch):04X}" in caught.value.message_dict["tracking_numbers"][0]
    assert _clean_tracking(["1Z999AA10123456784"]) == ["1Z999AA10123456784"]
