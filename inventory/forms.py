"""Forms for the products and listings pages.

They only shape input for the browser (labels, widgets, basic types); the rules — SKU format, no
negative stock, a new product needs its quantity — live in :mod:`inventory.catalog`, whose field
errors the views put back onto these forms.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from inventory.models import SKU_MAX_LENGTH


class ProductForm(forms.Form):
    sku = forms.CharField(
        label="SKU", max_length=SKU_MAX_LENGTH, help_text="Matches listings on every channel."
    )
    name = forms.CharField(max_length=255, required=False)
    on_hand = forms.IntegerField(label="On hand", min_value=0, help_text="Units in your warehouse.")
    price = forms.DecimalField(
        label="Price",
        max_digits=14,
        decimal_places=4,
        min_value=Decimal(0),
        required=False,
        help_text=(
            "Net of tax, or with tax if your product master keeps prices with tax (set on the Products "
            "page). Leave empty if Storelink should not update this product's price."
        ),
    )
    tax_rate = forms.DecimalField(
        label="Tax rate (%)",
        max_digits=6,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=Decimal(100),
        required=False,
        initial=Decimal(0),
        help_text="Added or taken out where a store's price field has the other basis than your master.",
    )

    def service_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data.get("name") or "",
            "on_hand": data["on_hand"],
            "price": data.get("price"),
            "tax_rate": data.get("tax_rate") if data.get("tax_rate") is not None else Decimal(0),
        }


class InlineProductForm(forms.Form):
    """The two numbers a seller changes most, edited in the products list."""

    on_hand = forms.IntegerField(label="On hand", min_value=0)
    price = forms.DecimalField(
        label="Price", max_digits=14, decimal_places=4, min_value=Decimal(0), required=False
    )


class ListingOverridesForm(forms.Form):
    buffer = forms.IntegerField(min_value=0, help_text="Units held back from this channel.")
    max_quantity = forms.IntegerField(
        label="Max quantity",
        min_value=0,
        required=False,
        help_text="Never offer more than this; empty: no cap.",
    )
    price_multiplier = forms.DecimalField(
        label="Price multiplier",
        max_digits=10,
        decimal_places=4,
        min_value=Decimal(0),
        help_text="Markup or exchange rate: channel price = price × multiplier + offset.",
    )
    price_offset = forms.DecimalField(label="Price offset", max_digits=14, decimal_places=4)


def apply_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    """Put a service's field errors onto the form, next to their fields."""
    for name, messages in errors.items():
        field = name if name in form.fields else None
        for message in messages:
            form.add_error(field, message)
