"""What an X-Cart channel needs, in the words of the seller's guide."""

from __future__ import annotations

from dataclasses import replace

from connectors.base import FieldSpec
from connectors.common_fields import (
    SYNC_FIELDS,
    currency_field,
    import_statuses_field,
    processed_status_field,
)

STORE_URL_LABEL = "Website end point"
STORE_URL_HELP = (
    "Your store's address, e.g. https://shop.example.com/ (where admin.php lives). If your store "
    "renamed its admin script, paste the full admin address instead, e.g. https://shop.example.com/myadmin.php."
)

CREDENTIAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="api_key",
        label="API key",
        kind="secret",
        max_length=256,
        printable_ascii=True,  # sent as the X-Auth-Token header
        help_text=(
            "In your X-Cart admin open 'My addons', search for 'REST API', install the REST API "
            "add-on and copy the value of 'API key (read/write)'. On X-Cart 5.5 and later paste the "
            "API token from Settings > API instead."
        ),
    ),
)

SETTINGS_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="api_flavour",
        label="X-Cart API",
        kind="choice",
        choices=(
            ("auto", "Detect automatically"),
            ("addon", "REST API add-on (5.x)"),
            ("builtin", "Built-in API (5.5+)"),
        ),
        default="auto",
        help_text=(
            "Leave on 'Detect automatically': Storelink tries X-Cart 5.5's built-in API first, then the "
            "REST API add-on of X-Cart 5.0–5.4."
        ),
    ),
    currency_field("The currency your X-Cart store sells in."),
    FieldSpec(
        name="use_store_tax_settings",
        label="Use X-Cart tax settings",
        kind="bool",
        default=True,
        required=False,
        help_text=(
            "Yes if your site's tax settings should be used for product prices: Storelink writes the "
            "price before tax and X-Cart's tax settings apply. No: Storelink writes the price customers "
            "pay, tax included (from each product's tax rate) — for stores whose prices are entered "
            "with tax or that charge none."
        ),
    ),
    # Each status field offers only its own list: the two lists reuse letters (P = Paid and Processing).
    replace(
        processed_status_field(
            "The shipping status Storelink gives an order once it has been shipped ('S' = Shipped). Pick "
            "one of your store's shipping statuses; X-Cart e-mails the customer when an order becomes "
            "Shipped.",
            default="S",
        ),
        choices_group="shipping",
    ),
    replace(
        import_statuses_field(
            "Orders whose payment status is one of these are downloaded ('P' = Paid, 'A' = Authorized). "
            "These are payment statuses, not shipping statuses.",
            default=["P", "A"],
        ),
        choices_group="payment",
    ),
    # A partially shipped order gets a shipping status, like the processed one.
    *(replace(f, choices_group="shipping") if f.name == "partial_status" else f for f in SYNC_FIELDS),
)
