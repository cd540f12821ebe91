"""What a 3DCart channel needs, in the words of the seller's guide."""

from __future__ import annotations

from connectors.base import FieldSpec
from connectors.common_fields import (
    SYNC_FIELDS,
    currency_field,
    import_statuses_field,
    processed_status_field,
)

STORE_URL_LABEL = "Store URL"
STORE_URL_HELP = "Your 3DCart / Shift4Shop store's address, e.g. https://yourstore.3dcartstores.com/"

CREDENTIAL_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="access_token",
        label="Access token",
        kind="secret",
        max_length=256,
        printable_ascii=True,  # sent as the Token header
        required=False,
        help_text=(
            "In your 3DCart admin open Modules, search for 'REST API', click Settings then Add, paste "
            "Storelink's public key shown here, click Save and then Authorize. The store sends the "
            "token to Storelink by itself; if it shows you a token instead, paste it here."
        ),
    ),
)

SETTINGS_FIELDS: tuple[FieldSpec, ...] = (
    currency_field("The currency your 3DCart store sells in."),
    FieldSpec(
        name="timezone",
        label="Store time zone",
        default="America/New_York",
        max_length=64,
        help_text=(
            "3DCart reports order times in the store's own clock without a time zone; Storelink "
            "converts them from this zone (for example America/New_York). Testing the connection "
            "warns when it does not match the store's setting."
        ),
    ),
    processed_status_field(
        "The order status Storelink sets when an order has shipped (3DCart's 'Shipped' is 4).",
        default="4",
    ),
    import_statuses_field(
        "Orders in these statuses are downloaded. 'Not Completed' (7) is never downloaded.",
        default=["1", "2"],
    ),
    *SYNC_FIELDS,
)
