"""The X-Cart connector (skeleton: operations are filled in by the connectors issue)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from connectors.base import (
    Capabilities,
    Connector,
    Listing,
    OrderPage,
    PriceUpdate,
    PushResult,
    ShipmentRequest,
    ShipmentResult,
    StockUpdate,
    StoreFacts,
)
from connectors.xcart import fields


class XCartConnector(Connector):
    platform = "xcart"
    label = "X-Cart"
    company = "X-Cart"
    store_url_label = fields.STORE_URL_LABEL
    store_url_help = fields.STORE_URL_HELP
    credential_fields = fields.CREDENTIAL_FIELDS
    settings_fields = fields.SETTINGS_FIELDS
    capabilities = Capabilities()

    def test_connection(self) -> StoreFacts:
        raise NotImplementedError

    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        raise NotImplementedError

    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        raise NotImplementedError

    def list_listings(self) -> list[Listing]:
        raise NotImplementedError

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        raise NotImplementedError

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        raise NotImplementedError
