"""What an OpenCart channel needs, in the words of the seller's guide."""

from __future__ import annotations

from connectors.base import FieldSpec
from connectors.common_fields import (
    SYNC_FIELDS,
    currency_field,
    import_statuses_field,
    processed_status_field,
)

STORE_URL_LABEL = "OpenCart end point"
STORE_URL_HELP = (
    "Your store's address, e.g. https://shop.example.com/ — the folder that holds index.php and "
    "where you uploaded storelink-bridge.php."
)

VERSION_FAMILIES: tuple[tuple[str, str], ...] = (
    ("auto", "Detect automatically"),
    ("2.1", "2.1.0.x"),
    ("2.2", "2.2.0.0 – 2.3.0.x"),
    ("3.0.0", "3.0.0.0 – 3.0.2.0"),
    ("3.0.3", "3.0.3.0 – 3.0.5.0"),
    ("4.0", "4.0.x"),
    ("4.1", "4.1.x"),
)

CREDENTIAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="api_username",
        label="API username",
        default="Default",
        max_length=64,
        help_text=(
            "In your OpenCart admin open System > Users > API (the gear icon > Users > API) and use the "
            "name of the API user you created for Storelink, exactly as written there. OpenCart 2.x calls "
            "it 'API Name'; on OpenCart 2.1 also choose this user under System > Settings > Option > API "
            "User, because 2.1 checks that user's IP addresses."
        ),
    ),
    FieldSpec(
        name="api_key",
        label="Key",
        kind="secret",
        max_length=256,
        pattern=r"[A-Za-z0-9]{16,256}",
        help_text=(
            "On the same API user, click 'Generate' to create a key, copy it, and save the user. Then "
            "edit the user again, open the 'IP addresses' tab and add Storelink's address(es) shown "
            "on this page. Paste the key here."
        ),
    ),
)

SETTINGS_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="version_family",
        label="OpenCart version",
        kind="choice",
        choices=VERSION_FAMILIES,
        default="auto",
        help_text=(
            "Leave on 'Detect automatically' unless the connection test guessed wrong. OpenCart 3.0.0.0 – "
            "3.0.2.0 cannot use its own API (an OpenCart bug): Storelink then confirms shipments through "
            "the bridge file."
        ),
    ),
    currency_field("Set the correct currency for your site."),
    FieldSpec(
        name="use_store_tax_settings",
        label="Use OpenCart tax settings",
        kind="bool",
        default=True,
        required=False,
        help_text=(
            "Yes to use the tax settings in OpenCart for your listing prices: OpenCart keeps prices net "
            "and adds each product's tax class, so Storelink writes net prices. No: Storelink writes the "
            "price customers pay, tax included (from each product's tax rate) — only for products "
            "without a tax class in OpenCart."
        ),
    ),
    FieldSpec(
        name="use_options",
        label="Use product options",
        kind="bool",
        default=True,
        required=False,
        help_text="Yes if you sell variants through OpenCart product options (size, colour ...).",
    ),
    processed_status_field(
        "The status Storelink gives an order when it has been shipped (OpenCart's 'Shipped' is 3).",
        default="3",
    ),
    import_statuses_field(
        "Orders in these statuses are downloaded. OpenCart's 'Pending' (1), 'Processing' (2) and "
        "'Processed' (15) are the usual choices.",
        default=["1", "2", "15"],
    ),
    *SYNC_FIELDS,
)
