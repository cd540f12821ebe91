"""The example platform's connector: everything the product needs, declared on one class."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import (
    Capabilities,
    Connector,
    FieldSpec,
    Listing,
    Order,
    OrderLine,
    OrderPage,
    PriceUpdate,
    PushResult,
    ShipmentRequest,
    ShipmentResult,
    StockUpdate,
    StoreFacts,
    StoreStatus,
)
from connectors.common_fields import (
    SYNC_FIELDS,
    currency_field,
    import_statuses_field,
    processed_status_field,
)
from connectors.errors import AuthError
from connectors.http import StoreHttp


class ExampleConnector(Connector):
    platform = "example"
    label = "Example"
    company = "Example Commerce"
    description = "Example Commerce 1.x through its JSON API: one API key."
    instructions = (
        "In your Example admin, open Settings → API and create a key.",
        "Enter your store's address and paste the key.",
    )
    closed_status_codes = frozenset({"cancelled", "shipped"})
    credential_fields = (FieldSpec(name="api_key", label="API key", kind="secret", printable_ascii=True),)
    settings_fields = (
        currency_field("The currency your store sells in."),
        import_statuses_field("Orders in these statuses are downloaded.", ["paid"]),
        processed_status_field("The status a shipped order gets.", "shipped"),
        *SYNC_FIELDS,
    )
    capabilities = Capabilities()

    def _http(self) -> StoreHttp:
        if getattr(self, "_client", None) is None:
            key = str(self.credentials.get("api_key", ""))
            self._client = StoreHttp(
                self.store_url,
                platform=self.platform,
                client=self.http,
                allow_private_hosts=self.options.allow_private_hosts,
                allowed_ports=self.options.allowed_ports,
                timeout=self.options.timeout,
                max_retries=self.options.max_retries,
                secrets=[key],
            )
            self._headers = {"X-Example-Key": key}
        return self._client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        http = self._http()
        response = http.request(method, path, headers=self._headers, **kwargs)
        if response.status_code == 401:
            raise AuthError("The store refused the API key.", code="bad_key")
        return http.json(response)

    def test_connection(self) -> StoreFacts:
        shop = self._call("GET", "/api/shop")
        return StoreFacts(
            platform_version=str(shop["version"]),
            base_currency=str(shop["currency"]),
            currencies=(str(shop["currency"]),),
            order_statuses=tuple(
                StoreStatus(code, code.title(), closes_order=code in self.closed_status_codes)
                for code in shop["statuses"]
            ),
        )

    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        since = json.loads(checkpoint)["since"] if checkpoint else ""
        rows = self._call("GET", "/api/orders", params={"since": since} if since else None)
        orders = tuple(self._order(row) for row in rows)
        newest = max([since, *(row["updated_at"] for row in rows)])
        yield OrderPage(orders=orders, checkpoint=json.dumps({"since": newest}))

    def _order(self, row: dict[str, Any]) -> Order:
        lines = tuple(
            OrderLine(
                external_line_id=line["id"],
                sku=line["sku"],
                name=line["name"],
                quantity=int(line["qty"]),
                unit_price=Decimal(line["price"]),
                line_total=Decimal(line["price"]) * int(line["qty"]),
                remote_product_id=line["product_id"],
            )
            for line in row["lines"]
        )
        subtotal = sum((line.line_total for line in lines), Decimal("0"))
        return Order(
            external_id=row["id"],
            number=row["number"],
            placed_at=datetime.fromisoformat(row["placed_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            status_code=row["status"],
            status_name=row["status"].title(),
            currency=row["currency"],
            subtotal=subtotal,
            shipping=Decimal(row["shipping"]),
            tax=Decimal("0"),
            discount=Decimal("0"),
            total=Decimal(row["total"]),
            lines=lines,
            customer_email=row["email"],
            closed=row["status"] in self.closed_status_codes,
            raw=row,
        )

    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        self._call(
            "POST",
            f"/api/orders/{shipment.order_external_id}/shipments",
            json_body={"tracking": list(shipment.tracking_numbers), "reference": shipment.reference},
        )
        return ShipmentResult(
            store_reference=shipment.order_external_id, tracking_sent=shipment.tracking_numbers
        )

    def list_listings(self) -> list[Listing]:
        return [
            Listing(
                sku=row["sku"],
                remote_id=row["id"],
                quantity=int(row["quantity"]),
                price=Decimal(row["price"]),
                name=row["name"],
            )
            for row in self._call("GET", "/api/products")
        ]

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        results = []
        for update in updates:
            self._call("PUT", f"/api/products/{update.remote_id}", json_body={"quantity": update.quantity})
            results.append(PushResult(sku=update.sku, remote_id=update.remote_id, ok=True))
        return results

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        results = []
        for update in updates:
            self._call("PUT", f"/api/products/{update.remote_id}", json_body={"price": str(update.price)})
            results.append(PushResult(sku=update.sku, remote_id=update.remote_id, ok=True))
        return results

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
