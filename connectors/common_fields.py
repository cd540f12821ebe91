"""Settings every platform shares, so the three field declarations only spell out what differs."""

from __future__ import annotations

from connectors.base import FieldSpec


def currency_field(help_text: str) -> FieldSpec:
    return FieldSpec(
        name="currency",
        label="Currency",
        kind="text",
        help_text=help_text,
        choices_from="currencies",
        pattern=r"[A-Z]{3}",
        max_length=3,
    )


def processed_status_field(help_text: str, default: str | None = None) -> FieldSpec:
    return FieldSpec(
        name="processed_status",
        label="Processed order status",
        kind="text",
        help_text=help_text,
        choices_from="order_statuses",
        default=default,
        max_length=32,
    )


def import_statuses_field(help_text: str, default: list[str]) -> FieldSpec:
    return FieldSpec(
        name="import_statuses",
        label="Order statuses to import",
        kind="multichoice",
        help_text=help_text,
        choices_from="order_statuses",
        default=default,
        required=False,
    )


#: Where a partial shipment leaves the order: never at the processed status (the store would then call
#: the whole order shipped and its unshipped units would stop reserving stock).
PARTIAL_STATUS_FIELD = FieldSpec(
    name="partial_status",
    label="Partially shipped order status",
    kind="text",
    help_text=(
        "The status Storelink gives an order when only some of its items have shipped. Leave it empty to "
        "keep the order's status; the shipment that completes the order sets the processed status."
    ),
    choices_from="order_statuses",
    required=False,
    max_length=32,
)

SYNC_FIELDS: tuple[FieldSpec, ...] = (
    PARTIAL_STATUS_FIELD,
    FieldSpec(
        name="order_lookback_days",
        label="Order look-back (days)",
        kind="int",
        default=7,
        min_value=1,
        max_value=90,
        help_text="On the first download, fetch orders placed up to this many days ago.",
    ),
    FieldSpec(
        name="order_interval_minutes",
        label="Download orders every (minutes)",
        kind="int",
        default=5,
        min_value=1,
        max_value=1440,
        help_text=(
            "Storelink asks the store for new orders every 15 to 60 seconds (often while it is busy, "
            "less when it is quiet) and downloads them when there are some; a full download of new "
            "and changed orders runs at least this often."
        ),
    ),
    FieldSpec(
        name="stock_sync",
        label="Update stock levels",
        kind="bool",
        default=True,
        required=False,
        help_text="Push available quantities from your product master to this store.",
    ),
    FieldSpec(
        name="price_sync",
        label="Update prices",
        kind="bool",
        default=False,
        required=False,
        help_text="Push prices from your product master to this store.",
    ),
)
