"""The X-Cart connector: 5.x through the REST API add-on, 5.5+ through the built-in API.

The add-on is thin and trusting, which shapes most of this file (each point seen on a real 5.4 store):

- it validates nothing it writes (``amount=abc`` becomes 0), so every value is checked here first
  and every returned object is compared with what was sent;
- an unknown status code *renames* a status for the whole store, so only codes read from the
  store's own ``order-status-shipping`` list in the same session are ever sent;
- a tracking number POSTed for a missing order *creates* an empty order, so the order is always read
  first and tracking goes in with the status in one ``PUT order/<id>`` (never a POST);
- collection reads have no server-side cap and no "next page" marker, so orders and products are
  read in explicit ``_cnd[limit]`` pages and a short page is the end;
- there is no "modified since" filter, so new orders are found by a creation-date low-water mark
  read with an overlap on the store's own clock (``Date`` header), changes by sorting on the
  last-change date, and open orders are re-read in turn in case a change is not dated;
- payment and shipping statuses are two lists that reuse letters, so a status is always a
  (list, code) pair, and an order is closed when either list says so.

Why one module of this size: the two X-Cart APIs (the 5.4 add-on and 5.5's built-in API) answer
the same questions differently, and each operation keeps both answers side by side so a reader
sees at once where they differ; the wire clients and the JSON mapping are already their own modules.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx

from connectors.base import (
    Capabilities,
    Connector,
    ConnectorOptions,
    Listing,
    Order,
    OrderPage,
    PriceUpdate,
    PushResult,
    ShipmentRequest,
    ShipmentResult,
    StockUpdate,
    StoreFacts,
    StoreStatus,
)
from connectors.errors import AuthError, ConnectorError, OrderClosedError, PermanentError, ProtocolError
from connectors.xcart import fields, mapping
from connectors.xcart.client import ADDON_KEY_HELP, AddonClient, BuiltinClient, Reply

ORDER_PAGE_SIZE = 50
LISTING_PAGE_SIZE = 250
#: API Platform's maximum ``itemsPerPage`` on 5.5+
BUILTIN_PAGE_SIZE = 100
BATCH_SIZE = 50
#: Later runs re-read this much before the checkpoint: order dates are not strictly increasing in
#: the order they become visible (a cart's date is rewritten at placement), and a one-day overlap
#: also catches orders paid within a day of being placed "awaiting payment".
LATER_RUN_OVERLAP_SECONDS = 24 * 3600
#: The window's upper bound is the store's clock plus this, so a store clock ahead of ours loses
#: nothing; the checkpoint itself comes from the store's clock.
WINDOW_END_MARGIN_SECONDS = 24 * 3600
MAX_QUANTITY = 2**31 - 1
MAX_PRICE = Decimal("9999999999")  # price is decimal(14,4)
CHECKPOINT_VERSION = 2
#: The changed-orders scan reads this far past the last run's scan, for changes saved while it ran.
CHANGED_OVERLAP_SECONDS = 600
#: Every open order this channel downloaded is re-read by id at least once every this many runs,
#: REREAD_MIN to REREAD_MAX per run; at most MAX_TRACKED_OPEN open orders are remembered.
REREAD_CYCLE_RUNS = 12
REREAD_MIN = 3
REREAD_MAX = 50
MAX_TRACKED_OPEN = 5000
#: Shown on the channel page: how changes to orders reach Storelink, and how late they may be.
CHANGES_WARNING = (
    "X-Cart cannot list orders changed since a date, so Storelink finds status changes by sorting on "
    "each order's last-change time and also re-reads the open orders it downloaded, a few per "
    f"download: a change X-Cart does not date (if any) shows within {REREAD_CYCLE_RUNS} downloads."
)
#: Shown when the store's own version cannot be read.
ADDON_VERSION_RANGE = "5.0–5.4 (REST API add-on)"
CONFIG_PAGE_SIZE = 100
CONFIG_MAX_PAGES = 10
VERSION_RE = re.compile(r"\d+(?:\.\d+){1,3}")
VARIANT_PATH = "xc-productvariants-productvariant"
PRODUCT_ORDER: list[tuple[str, Any]] = [("_cnd[orderBy][0]", "p.product_id"), ("_cnd[orderBy][1]", "ASC")]

T = TypeVar("T")


class XCartConnector(Connector):
    platform = "xcart"
    label = "X-Cart"
    company = "X-Cart"
    description = "X-Cart 5 with the REST API add-on, or X-Cart 5.5+ with its built-in API."
    logo = "img/logos/xcart.svg"
    instructions_template = "channels/_instructions_xcart.html"
    store_url_label = fields.STORE_URL_LABEL
    store_url_help = fields.STORE_URL_HELP
    credential_fields = fields.CREDENTIAL_FIELDS
    settings_fields = fields.SETTINGS_FIELDS
    capabilities = Capabilities(
        partial_shipment=False,
        multiple_tracking_numbers=True,
        variants=True,
        stock_batch_size=BATCH_SIZE,
        price_batch_size=BATCH_SIZE,
        tax_inclusive_prices=False,  # the price before the tax that X-Cart's tax settings apply
        order_page_size=ORDER_PAGE_SIZE,
        order_probe=True,  # one-row reads: placed since the checkpoint, and the newest change
    )
    #: ``Order.status_code`` is the *shipping* status: Shipped, Delivered, Will not deliver, Returned,
    #: Not finished. Payment statuses close orders too (:data:`closed_payment_codes`); the letters
    #: overlap, so the two sets must never be merged.
    closed_status_codes = mapping.CLOSING_SHIPPING
    closed_payment_codes = mapping.CLOSING_PAYMENT

    def __init__(
        self,
        store_url: str,
        credentials: Mapping[str, Any],
        settings: Mapping[str, Any],
        *,
        http: httpx.Client | None = None,
        options: ConnectorOptions | None = None,
    ) -> None:
        super().__init__(store_url, credentials, settings, http=http, options=options)
        self._client: AddonClient | BuiltinClient | None = None
        self._shipping_rows: list[Any] | None = None

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def _key(self) -> str:
        key = str(self.credentials.get("api_key") or "").strip()
        if not key:
            raise AuthError(f"The X-Cart API key is missing: {ADDON_KEY_HELP}.", code="bad_key")
        return key

    def _addon(self) -> AddonClient:
        return AddonClient(self.store_url, self._key, options=self.options, client=self.http)

    def _builtin(self) -> BuiltinClient:
        return BuiltinClient(self.store_url, self._key, options=self.options, client=self.http)

    def _api(self) -> AddonClient | BuiltinClient:
        """The client for this store's API, detecting the flavour once per connector when asked to."""
        if self._client is None:
            flavour = str(self.settings.get("api_flavour") or "auto")
            if flavour == "addon":
                self._client = self._addon()
            elif flavour == "builtin":
                self._client = self._builtin()
            else:
                self._client = self._detect()
        return self._client

    def _detect(self) -> AddonClient | BuiltinClient:
        """5.5+ first (``GET /api/orders``), then the add-on.

        Only a conclusive answer settles it: JSON from ``/api`` or a JSON 401 means 5.5+; a status list
        from the add-on means 5.x. Anything else (404, a login redirect, an HTML page) tries the other;
        when neither answers the add-on's error is raised, since the seller's guide is for the add-on.
        Transient errors propagate, so a flaky store is retried rather than misdetected.
        """
        builtin = self._builtin()
        try:
            reply = builtin.get("orders", [("itemsPerPage", 1)])
        except AuthError as exc:
            if exc.status_code == 401:
                builtin.close()
                raise
        except (ProtocolError, PermanentError):
            pass
        else:
            if isinstance(reply.data, (list, dict)):
                return builtin
        builtin.close()
        addon = self._addon()
        try:
            rows = addon.get("order-status-shipping").data
        except (ProtocolError, PermanentError) as exc:
            addon.close()
            exc.message = (
                f"{exc.message} Neither X-Cart's built-in API (5.5+) nor the REST API add-on (5.x) "
                "answered at this website end point."
            )
            exc.args = (exc.message,)
            raise
        except ConnectorError:
            addon.close()
            raise
        if not isinstance(rows, list):
            addon.close()
            raise ProtocolError(
                "The REST API add-on answered the status list with something that is not a list.",
                code="not_a_list",
                raw=str(rows)[:500],
            )
        self._shipping_rows = rows
        return addon

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _setting_list(self, name: str) -> list[str]:
        value = self.settings.get(name) or []
        if isinstance(value, str):
            value = [part for part in value.split(",")]
        return [str(item).strip() for item in value if str(item).strip()]

    def _lookback_seconds(self) -> int:
        try:
            days = int(self.settings.get("order_lookback_days") or 7)
        except (TypeError, ValueError):
            days = 7
        return max(1, days) * 86400

    # -- statuses ----------------------------------------------------------------------------------

    def _shipping_statuses(self, api: AddonClient) -> list[StoreStatus]:
        """The store's shipping statuses, read once per connector (they are what writes may send)."""
        if self._shipping_rows is None:
            self._shipping_rows = api.get("order-status-shipping").data
        with _reading("a shipping status list"):
            return mapping.status_list(self._shipping_rows, mapping.SHIPPING)

    # -- test connection ---------------------------------------------------------------------------

    def test_connection(self) -> StoreFacts:
        """Read the status lists and probe write access, changing nothing.

        The add-on's write probe is ``PUT product/0`` without a body: id 0 never exists and PUT never
        creates, so the read/write key gets ``null`` and the read-only key 403.
        """
        api = self._api()
        if isinstance(api, BuiltinClient):
            return self._test_builtin(api)
        shipping = self._shipping_statuses(api)
        payment_rows = api.get("order-status-payment").data
        with _reading("a payment status list"):
            payment = mapping.status_list(payment_rows, mapping.PAYMENT)
        warnings: list[str] = []
        can_write = True
        try:
            api.write("PUT", "product/0", None)
        except AuthError as exc:
            if exc.code != "read_only_key":
                raise
            can_write = False
            warnings.append(
                "The API key is read-only: Storelink can download orders but cannot confirm shipments "
                "or update stock and prices. Paste 'API key (read/write)' from My addons > REST API."
            )
        latest = api.get(
            "order",
            schema="complex",
            cnd=[("_cnd[orderBy][0]", "o.date"), ("_cnd[orderBy][1]", "DESC"), *_limit(0, 1)],
        ).data
        if api.write_key_in_url:
            warnings.append(
                "This store's REST API add-on took the API key only from the request address for "
                "writes, so the key appears in its web server's access log: keep the website end "
                "point on https:// and limit who can read that log."
            )
        currency = self._currency_from(latest)
        store_version = self._store_version(api)
        version = f"{store_version} (REST API add-on)" if store_version else ADDON_VERSION_RANGE
        extra = {"store_version": store_version} if store_version else {}
        return self._facts(version, "addon", currency, shipping, payment, can_write, warnings, extra)

    def _store_version(self, api: AddonClient) -> str:
        """The core version X-Cart keeps as option ``version`` of category ``Version`` ("" if unread).

        The ``config`` entity has no search condition for a category or a name (unknown ``_cnd``
        names are ignored), so it is paged in its own order until the option turns up. A store that
        refuses or answers oddly only loses the exact version, never the connection test; the values
        read are not kept (other options may be passwords).
        """
        offset = 0
        for _ in range(CONFIG_MAX_PAGES):
            try:
                reply = api.get("config", cnd=_limit(offset, CONFIG_PAGE_SIZE))
                rows = _page_rows(reply, CONFIG_PAGE_SIZE, "setting")
            except (ProtocolError, PermanentError):
                return ""
            for row in rows:
                if (
                    isinstance(row, Mapping)
                    and row.get("category") == "Version"
                    and row.get("name") == "version"
                ):
                    value = str(row.get("value") or "").strip()
                    return value if VERSION_RE.fullmatch(value) else ""
            if len(rows) < CONFIG_PAGE_SIZE:
                return ""
            offset += CONFIG_PAGE_SIZE
        return ""

    def _test_builtin(self, api: BuiltinClient) -> StoreFacts:
        """5.5+: read one order, then probe writes with a status PUT on order 0, which never exists.

        A read/write token gets 400/404 ("Order with ID 0 not found"), a read-only one 403.
        UNCONFIRMED on a live 5.5 store. 5.5 has no status-list endpoint, so X-Cart's default status
        codes are offered and a warning says so.
        """
        latest = api.get("orders", [("itemsPerPage", 1), ("order[date]", "desc")]).data
        warnings = [
            "X-Cart 5.5's API does not list order statuses, so X-Cart's default statuses are shown; "
            "custom statuses must be typed by code.",
            "X-Cart 5.5's API cannot store tracking numbers: shipments set the processed status only.",
        ]
        can_write = True
        try:
            api.put("orders/0/shipping_status", {"code": self._processed_default()}, missing_ok=True)
        except AuthError as exc:
            if exc.code != "read_only_key":
                raise
            can_write = False
            warnings.append("The API token is read-only: paste the read/write token from Settings > API.")
        except PermanentError:
            pass  # "Order with ID 0 not found": the token may write
        shipping = mapping.status_list(
            [{"code": code, "position": n} for n, code in enumerate(mapping.SHIPPING_STATUS_NAMES)],
            mapping.SHIPPING,
        )
        payment = mapping.status_list(
            [{"code": code, "position": n} for n, code in enumerate(mapping.PAYMENT_STATUS_NAMES)],
            mapping.PAYMENT,
        )
        currency = self._currency_from(latest)
        return self._facts("5.5+ (built-in API)", "builtin", currency, shipping, payment, can_write, warnings)

    def _processed_default(self) -> str:
        return str(self.settings.get("processed_status") or "S")

    def _currency_from(self, latest: Any) -> str:
        configured = str(self.settings.get("currency") or "").strip().upper()
        if isinstance(latest, list) and latest and isinstance(latest[0], Mapping):
            currency = latest[0].get("currency")
            if isinstance(currency, Mapping):
                currency = currency.get("code")
            if isinstance(currency, str) and len(currency.strip()) == 3:
                return currency.strip().upper()
        return configured

    def _facts(
        self,
        version: str,
        flavour: str,
        currency: str,
        shipping: list[StoreStatus],
        payment: list[StoreStatus],
        can_write: bool,
        warnings: list[str],
        extra_details: Mapping[str, Any] | None = None,
    ) -> StoreFacts:
        """Both status lists in one ``order_statuses``, each status tagged with its list.

        "Statuses to import" are *payment* codes and "processed status" is a *shipping* code. The
        letters overlap (``P`` is Paid and Processing), so every status carries its ``group`` and the
        settings offer each field only its own list; ``details`` carries the two lists apart too.
        """
        shipping = [status for status in shipping if status.code != mapping.NOT_FINISHED]
        shipping_codes = {status.code for status in shipping}
        payment_codes = {status.code for status in payment}
        processed = self._processed_default()
        if processed not in shipping_codes:
            warnings.append(
                f"The processed order status '{processed}' is not one of this store's shipping statuses "
                f"({', '.join(sorted(shipping_codes))})."
            )
        unknown = [code for code in self._setting_list("import_statuses") if code not in payment_codes]
        if unknown:
            warnings.append(
                f"Statuses to import {', '.join(unknown)} are not payment statuses of this store "
                f"({', '.join(sorted(payment_codes))})."
            )
        warnings.append(CHANGES_WARNING)
        statuses = tuple(shipping + payment)
        return StoreFacts(
            platform_version=version,
            base_currency=currency,
            timezone="UTC",
            prices_include_tax=None,
            order_statuses=statuses,
            currencies=(currency,) if currency else (),
            can_read=True,
            can_write=can_write,
            warnings=tuple(warnings),
            details={
                "api_flavour": flavour,
                "shipping_statuses": [
                    {"code": s.code, "name": s.name, "closes_order": s.closes_order} for s in shipping
                ],
                "payment_statuses": [
                    {"code": s.code, "name": s.name, "closes_order": s.closes_order} for s in payment
                ],
                "import_statuses_are": "payment_statuses",
                "processed_status_is": "shipping_statuses",
                **(extra_details or {}),
            },
        )

    # -- orders ------------------------------------------------------------------------------------

    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        """New orders, then changed ones, then a turn of re-reading open ones; see the module docstring.

        1. *New orders*: placed in the window (first run: the configured look-back; later runs: from
           the checkpoint minus a one-day overlap), in the payment statuses to import, oldest first.
        2. *Changed orders* (later runs): X-Cart cannot filter on the last-change date, but it can
           sort by it, so orders are read newest change first until the changes are older than the
           last run's. A changed order is passed on whatever its status when this channel already
           downloaded it; an order it never downloaded only when its payment status is one to import.
        3. *Open orders in turn* (later runs): which store actions move the last-change date is not
           documented, so a slice of the orders this channel downloaded and last saw open is re-read
           by id every run, every open order at least once every ``REREAD_CYCLE_RUNS`` runs.

        The checkpoint keeps the marks of 1 and 2 and the ids of 3. "Not finished" (``NF``) orders
        are never passed on, and an order seen twice in one run is passed on once.
        """
        saved = _read_checkpoint(checkpoint)
        local_now = int(time.time())
        first_run = saved is None
        if saved is None:
            start = max(0, local_now - self._lookback_seconds())
            progress = _Progress(since=start + LATER_RUN_OVERLAP_SECONDS, changed=local_now)
        else:
            progress = saved
            start = max(0, saved.since - LATER_RUN_OVERLAP_SECONDS)
        api = self._api()
        progress.api = api.flavour
        imports = set(self._setting_list("import_statuses"))
        seen: set[str] = set()
        run_started: int | None = None

        def take(order: Order) -> bool:
            """Pass the order on (once per run) and remember whether it is open."""
            if order.status_code == mapping.NOT_FINISHED:
                progress.forget(order.external_id)
                return False
            if order.external_id in seen:
                return False
            seen.add(order.external_id)
            progress.note(order)
            return True

        high_water = progress.since
        pages = (
            self._addon_order_pages(api, start, local_now)
            if isinstance(api, AddonClient)
            else self._builtin_order_pages(api, start, local_now)
        )
        for rows, store_time, last in pages:
            if run_started is None:
                run_started = int(store_time.timestamp()) if store_time else local_now
                if first_run:
                    progress.changed = run_started
            orders: list[Order] = []
            for row in rows:
                order = self._map_order(api, row)
                high_water = max(high_water, int(order.placed_at.timestamp()))
                if take(order):
                    orders.append(order)
            progress.since = max(high_water, run_started) if last else high_water
            yield OrderPage(tuple(orders), progress.dump())
            if last:
                break
        if first_run:
            return
        assert run_started is not None

        oldest_change = progress.changed - CHANGED_OVERLAP_SECONDS
        if isinstance(api, AddonClient):
            changed_pages = self._addon_changed_pages(api)
        else:
            changed_pages = self._builtin_changed_pages(api)
        for rows, last in changed_pages:
            orders = []
            done = last
            for row in rows:
                order = self._map_order(api, row)
                if int(order.updated_at.timestamp()) < oldest_change:
                    done = True  # newest change first: the rest is older still
                    continue
                wanted = (
                    order.external_id in progress.open
                    or _payment_code(order) in imports
                    or (order.closed and not progress.complete)
                )
                if wanted and take(order):
                    orders.append(order)
            if done:
                progress.changed = max(progress.changed, run_started)
            yield OrderPage(tuple(orders), progress.dump())
            if done:
                break

        batch = progress.next_to_reread(seen)
        if not batch:
            return
        orders = []
        for order_id in batch:
            row = self._read_order(api, order_id)
            if row is None:
                progress.forget(order_id)  # deleted on the store
                continue
            order = self._map_order(api, row)
            if take(order):
                orders.append(order)
        yield OrderPage(tuple(orders), progress.dump())

    def orders_changed_since(self, checkpoint: str) -> bool | None:
        """Two one-row reads instead of pages of full orders: an order placed since the
        checkpoint's placement mark (the same date filter and import statuses as a download's new
        orders, the default schema, at most one row), then the order changed last (sorted on
        ``lastRenewDate``) and whether that change is newer than the last run's scan of changes.

        A change X-Cart does not date is not seen here; the download's re-reading of open orders,
        at least once per order interval, finds it as before.
        """
        saved = _read_checkpoint(checkpoint)
        if saved is None:
            return None
        remembered = self._client is None and str(self.settings.get("api_flavour") or "auto") == "auto"
        if remembered and saved.api:
            self._client = self._addon() if saved.api == "addon" else self._builtin()
        try:
            return self._changed_since(saved)
        except (PermanentError, ProtocolError):
            if not (remembered and saved.api):
                raise
            # The store may have moved to another X-Cart (5.4 → 5.5): the download detects again.
            self.close()
            return None

    def _changed_since(self, saved: _Progress) -> bool:
        api = self._api()
        with _reading("an order"):
            if isinstance(api, AddonClient):
                imports = [("_cnd[paymentStatus][]", code) for code in self._setting_list("import_statuses")]
                window = [("_cnd[date][0]", saved.since), ("_cnd[date][1]", _far_end(saved.since))]
                placed = api.get("order", cnd=[*window, *imports, *_limit(0, 1)]).data
                if _page_rows(Reply(placed, None, None), 1, "order"):
                    return True
                order_by = [("_cnd[orderBy][0]", "o.lastRenewDate"), ("_cnd[orderBy][1]", "DESC")]
                newest = _page_rows(api.get("order", cnd=[*order_by, *_limit(0, 1)]), 1, "order")
                changed_at = _changed_at(newest[0], "lastRenewDate") if newest else 0
            else:
                base = [("date[after]", _iso(saved.since)), ("date[before]", _iso(_far_end(saved.since)))]
                base += [("paymentStatus.code[]", code) for code in self._setting_list("import_statuses")]
                if _page_rows(api.get("orders", [*base, ("page", 1), ("itemsPerPage", 1)]), 1, "order"):
                    return True
                params = [("order[lastRenewDate]", "desc"), ("page", 1), ("itemsPerPage", 1)]
                newest = _page_rows(api.get("orders", params), 1, "order")
                changed_at = _changed_at(newest[0], "update_date") if newest else 0
        # X-Cart dates changes to the second, and the last scan began inside ``saved.changed``: a
        # change later in that second was not read by it, so the same second still counts as new.
        return changed_at >= saved.changed

    def _map_order(self, api: AddonClient | BuiltinClient, row: Any) -> Order:
        # Totals that fit neither reading (tax on top or inside) take the basis X-Cart's price field
        # is declared to hold; no channel setting says otherwise any more.
        include = self.capabilities.tax_inclusive_prices
        currency = str(self.settings.get("currency") or "")
        with _reading("an order"):
            if isinstance(api, AddonClient):
                return mapping.order_from_complex(row, prices_include_tax=include, default_currency=currency)
            return mapping.order_from_builtin(row, prices_include_tax=include, default_currency=currency)

    def _read_order(self, api: AddonClient | BuiltinClient, order_id: str) -> Any:
        """One order in the shape downloads map (``None``: the store has no such order)."""
        if isinstance(api, AddonClient):
            row = api.get(f"order/{order_id}", schema="complex").data
        else:
            row = api.get(f"orders/{order_id}", missing_ok=True).data
        if row is not None and not isinstance(row, Mapping):
            raise ProtocolError(
                f"X-Cart sent order {order_id} as something that is not an object.", code="bad_data"
            )
        return row

    def _addon_order_pages(
        self, api: AddonClient, start: int, local_now: int
    ) -> Iterator[tuple[list[Any], datetime | None, bool]]:
        """The window's orders oldest first, in pages that cost the store the same however deep.

        An offset makes the store step over every earlier row again (a first import of N orders
        costs it N²/page rows), and the add-on has no "order id greater than" condition. But
        ``_cnd[date][0]`` is ``date >= start`` and the sort is on ``o.date``, so each page starts at
        the newest date of the page before (keyset paging). Orders of that one second come again
        and are passed on once by the caller. Only when a whole page shares one second does the
        cursor not move: that second alone is then read with an offset, and the cursor moves past it.
        """
        end = local_now + WINDOW_END_MARGIN_SECONDS
        filters = [("_cnd[paymentStatus][]", code) for code in self._setting_list("import_statuses")]
        filters += [("_cnd[orderBy][0]", "o.date"), ("_cnd[orderBy][1]", "ASC")]
        cursor = start
        while True:
            cnd = [("_cnd[date][0]", cursor), ("_cnd[date][1]", end), *filters]
            reply = api.get("order", schema="complex", cnd=cnd + _limit(0, ORDER_PAGE_SIZE))
            rows = _page_rows(reply, ORDER_PAGE_SIZE, "order")
            last = len(rows) < ORDER_PAGE_SIZE
            yield rows, reply.store_time, last
            if last:
                return
            newest = _newest_date(rows, cursor)
            if newest > cursor:
                cursor = newest
                continue
            yield from self._addon_one_second(api, cursor, filters)
            cursor += 1

    def _addon_one_second(
        self, api: AddonClient, second: int, filters: list[tuple[str, Any]]
    ) -> Iterator[tuple[list[Any], datetime | None, bool]]:
        """Every order placed in one second, for a second that holds more than a page."""
        offset = ORDER_PAGE_SIZE  # the first page of this second has just been read
        cnd = [("_cnd[date][0]", second), ("_cnd[date][1]", second), *filters]
        while True:
            reply = api.get("order", schema="complex", cnd=cnd + _limit(offset, ORDER_PAGE_SIZE))
            rows = _page_rows(reply, ORDER_PAGE_SIZE, "order")
            yield rows, reply.store_time, False
            if len(rows) < ORDER_PAGE_SIZE:
                return
            offset += ORDER_PAGE_SIZE

    def _addon_changed_pages(self, api: AddonClient) -> Iterator[tuple[list[Any], bool]]:
        """Every order, newest change first; the caller stops once the changes are old."""
        order_by = [("_cnd[orderBy][0]", "o.lastRenewDate"), ("_cnd[orderBy][1]", "DESC")]
        offset = 0
        while True:
            reply = api.get("order", schema="complex", cnd=order_by + _limit(offset, ORDER_PAGE_SIZE))
            rows = _page_rows(reply, ORDER_PAGE_SIZE, "order")
            last = len(rows) < ORDER_PAGE_SIZE
            yield rows, last
            if last:
                return
            offset += ORDER_PAGE_SIZE

    def _builtin_order_pages(
        self, api: BuiltinClient, start: int, local_now: int
    ) -> Iterator[tuple[list[Any], datetime | None, bool]]:
        base: list[tuple[str, Any]] = [
            ("date[after]", _iso(start)),
            ("date[before]", _iso(local_now + WINDOW_END_MARGIN_SECONDS)),
            ("order[date]", "asc"),
        ]
        base += [("paymentStatus.code[]", code) for code in self._setting_list("import_statuses")]
        page = 1
        while True:
            reply = api.get("orders", [*base, ("page", page), ("itemsPerPage", BUILTIN_PAGE_SIZE)])
            rows = _page_rows(reply, BUILTIN_PAGE_SIZE, "order")
            last = len(rows) < BUILTIN_PAGE_SIZE
            yield rows, reply.store_time, last
            if last:
                return
            page += 1

    def _builtin_changed_pages(self, api: BuiltinClient) -> Iterator[tuple[list[Any], bool]]:
        """5.5+: newest change first (``order[lastRenewDate]`` exists in every 5.5 release)."""
        page = 1
        while True:
            params = [("order[lastRenewDate]", "desc"), ("page", page), ("itemsPerPage", BUILTIN_PAGE_SIZE)]
            reply = api.get("orders", params)
            rows = _page_rows(reply, BUILTIN_PAGE_SIZE, "order")
            last = len(rows) < BUILTIN_PAGE_SIZE
            yield rows, last
            if last:
                return
            page += 1

    # -- shipments ---------------------------------------------------------------------------------

    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        """Add the tracking numbers the order lacks and set the processed status, or do nothing.

        Safe to repeat: the order is read first, and a call whose tracking numbers are all present
        and whose status is already the processed one writes nothing.
        """
        order_id = str(shipment.order_external_id).strip()
        if not order_id.isdigit() or int(order_id) <= 0:
            raise PermanentError(f"'{order_id}' is not an X-Cart order id.", code="bad_order_id")
        tracking: list[str] = []
        for value in shipment.tracking_numbers:
            text = str(value).strip()
            if any(ch in text for ch in "\r\n\x00"):
                raise PermanentError("A tracking number must be a single line.", code="bad_tracking")
            if text and text not in tracking:
                tracking.append(text)
        processed = (shipment.processed_status or self._processed_default()).strip()
        if processed == mapping.NOT_FINISHED or not processed:
            raise PermanentError(f"'{processed}' cannot be the processed status.", code="bad_status")
        api = self._api()
        if isinstance(api, BuiltinClient):
            return self._confirm_builtin(api, order_id, tracking, processed, shipment.is_partial)
        reference = str(shipment.reference or "").strip()
        if any(ch in reference for ch in "\r\n\x00"):
            raise PermanentError("A shipment reference must be a single line.", code="bad_reference")
        return self._confirm_addon(api, order_id, tracking, processed, shipment.is_partial, reference)

    def _confirm_addon(
        self,
        api: AddonClient,
        order_id: str,
        tracking: list[str],
        processed: str,
        partial: bool,
        shipment_reference: str = "",
    ) -> ShipmentResult:
        """Tracking, status and Storelink's reference in one ``PUT order/<id>``, after reading it.

        The add-on keeps no note on a tracking number (a tracking row is a value and a date), so the
        reference goes into the order's staff note (``adminNotes``), after whatever the seller wrote
        there. X-Cart applies one PUT in one flush, so an order whose note holds the reference has
        the tracking and status of that shipment too: a retry that finds it (the reply to the first
        attempt was lost) writes nothing, even if the seller has since moved the order on.
        """
        codes = [status.code for status in self._shipping_statuses(api)]
        if processed not in codes:
            # Sending an unknown code would rename one of the store's statuses for every order.
            raise PermanentError(
                f"'{processed}' is not one of this store's shipping statuses ({', '.join(codes)}); pick the "
                "processed order status again in the channel settings.",
                code="unknown_status",
            )
        order = api.get(f"order/{order_id}").data
        if order is None:
            raise PermanentError(f"X-Cart has no order with id {order_id}.", code="order_not_found")
        if not isinstance(order, Mapping):
            raise ProtocolError(
                f"X-Cart sent order {order_id} as something that is not an object.", code="bad_data"
            )
        reference = str(order.get("orderNumber") or order_id)
        notes_value = order.get("adminNotes")
        notes = notes_value if isinstance(notes_value, str) else ""
        if shipment_reference and shipment_reference in notes:
            return ShipmentResult(store_reference=reference, tracking_sent=(), warnings=())
        present = mapping.tracking_values(order)
        missing = [value for value in tracking if value not in present]
        warnings: list[str] = []
        model: dict[str, Any] = {}
        if missing:
            model["trackingNumbers"] = [{"value": value} for value in missing]
        if partial:
            warnings.append("X-Cart has no partial shipments: the order's status was left unchanged.")
        elif mapping.status_code_of(order.get("shippingStatus")) != processed:
            model["shippingStatus"] = {"code": processed}
        self._refuse_closed(
            api, order_id, reference, order.get("paymentStatus"), order.get("shippingStatus"), model
        )
        if not model:
            return ShipmentResult(store_reference=reference, tracking_sent=(), warnings=tuple(warnings))
        if shipment_reference:
            line = f"Storelink shipment {shipment_reference}: " + (
                f"tracking {', '.join(tracking)}" if tracking else "shipped"
            )
            model["adminNotes"] = f"{notes.rstrip()}\n{line}" if notes.strip() else line
        updated = api.write("PUT", f"order/{order_id}", model, idempotent=not missing).data
        if updated is None:
            raise PermanentError(f"X-Cart has no order with id {order_id}.", code="order_not_found")
        if not isinstance(updated, Mapping):
            raise ProtocolError(f"X-Cart answered the update of order {order_id} oddly.", code="bad_data")
        after = mapping.tracking_values(updated)
        if any(value not in after for value in tracking) or (
            "shippingStatus" in model and mapping.status_code_of(updated.get("shippingStatus")) != processed
        ):
            raise ProtocolError(
                f"X-Cart answered the update of order {order_id} without the tracking number or status "
                "that was sent.",
                code="not_applied",
                raw=json.dumps({"trackingNumbers": after, "shippingStatus": updated.get("shippingStatus")}),
            )
        if shipment_reference and shipment_reference not in str(updated.get("adminNotes") or ""):
            # Tracking and status are there; a retry would still find them and send nothing.
            warnings.append("X-Cart did not keep Storelink's shipment reference in the order's staff notes.")
        return ShipmentResult(
            store_reference=reference, tracking_sent=tuple(missing), warnings=tuple(warnings)
        )

    def _refuse_closed(
        self,
        api: AddonClient | BuiltinClient,
        order_id: str,
        number: str,
        payment: Any,
        shipping: Any,
        writes: Mapping[str, Any],
        row: Any = None,
    ) -> None:
        """Raise :class:`OrderClosedError` when the store has closed the order and this shipment
        would still write to it.

        Cancelling in the X-Cart admin changes the *payment* status only, so both lists are asked.
        A closed order with nothing left to write whose goods went out (Shipped, Delivered, every
        tracking number there) is an earlier confirmation of this shipment, not a refusal. The
        order is read again in the shape downloads map, so Storelink's copy can be brought up to
        date from it.
        """
        payment_code = mapping.status_code_of(payment)
        shipping_code = mapping.status_code_of(shipping)
        if not mapping.is_closed(payment_code, shipping_code):
            return
        if not writes and shipping_code in mapping.FULFILLED_SHIPPING:
            return
        fresh_row = row if row is not None else self._read_order(api, order_id)
        fresh = self._map_order(api, fresh_row) if fresh_row is not None else None
        raise OrderClosedError(
            f"X-Cart shows order {number} as closed ({mapping.status_name(shipping_code, payment_code)}), "
            "so the shipment was not sent; nothing was changed on the store.",
            code="order_closed",
            order=fresh,
        )

    def _confirm_builtin(
        self, api: BuiltinClient, order_id: str, tracking: list[str], processed: str, partial: bool
    ) -> ShipmentResult:
        """5.5+: the API can set the shipping status but has no way to store a tracking number."""
        order = api.get(f"orders/{order_id}", missing_ok=True).data
        if order is None:
            raise PermanentError(f"X-Cart has no order with id {order_id}.", code="order_not_found")
        if not isinstance(order, Mapping):
            raise ProtocolError(
                f"X-Cart sent order {order_id} as something that is not an object.", code="bad_data"
            )
        warnings: list[str] = []
        present = mapping.tracking_values(order)
        missing = [value for value in tracking if value not in present]
        if missing:
            warnings.append(
                "X-Cart 5.5's API cannot store tracking numbers; add "
                f"{', '.join(missing)} to the order in the X-Cart admin."
            )
        reference = str(order.get("order_number") or order_id)
        current = mapping.status_code_of(order.get("shipping_status"))
        writes = {} if partial or current == processed else {"shippingStatus": processed}
        self._refuse_closed(
            api, order_id, reference, order.get("payment_status"), order.get("shipping_status"), writes, order
        )
        if partial:
            warnings.append("X-Cart has no partial shipments: the order's status was left unchanged.")
        elif current != processed:
            reply = api.put(f"orders/{order_id}/shipping_status", {"code": processed}).data
            if mapping.status_code_of(reply) != processed:
                raise ProtocolError(
                    f"X-Cart answered the status change of order {order_id} without the new status.",
                    code="not_applied",
                    raw=json.dumps(reply)[:500],
                )
        return ShipmentResult(store_reference=reference, tracking_sent=(), warnings=tuple(warnings))

    # -- listings ----------------------------------------------------------------------------------

    def list_listings(self) -> list[Listing]:
        api = self._api()
        if isinstance(api, BuiltinClient):
            return self._builtin_listings(api)
        product_rows = self._addon_collection(api, "product", PRODUCT_ORDER)
        with _reading("a product"):
            products = [mapping.product_listing(row) for row in product_rows]
        try:
            variant_rows = self._addon_collection(api, VARIANT_PATH, [])
        except ProtocolError as exc:
            if exc.code != "addon_missing":
                raise
            variant_rows = []  # the Product Variants add-on is off: the entity does not exist (404)
        listings = list(products)
        if variant_rows:
            listings.extend(self._link_variants(api, products, variant_rows))
        return listings

    def _addon_collection(self, api: AddonClient, path: str, conditions: list[tuple[str, Any]]) -> list[Any]:
        """Every row of a default-schema collection, in explicit pages (the add-on has no cap).

        Variants are read without ``_cnd[orderBy]``: the variant repository's query alias is not
        documented, and a wrong alias breaks the query; rows then come in the table's natural order.
        """
        rows: list[Any] = []
        offset = 0
        while True:
            reply = api.get(path, cnd=[*conditions, *_limit(offset, LISTING_PAGE_SIZE)])
            page = _page_rows(reply, LISTING_PAGE_SIZE, path)
            rows.extend(page)
            if len(page) < LISTING_PAGE_SIZE:
                return rows
            offset += LISTING_PAGE_SIZE

    def _link_variants(
        self, api: AddonClient, products: list[Listing], variant_rows: list[Any]
    ) -> list[Listing]:
        """Find each variant's product (collection rows carry no associations) via ``_cnd[product]``.

        Products are asked in order until every variant is placed, so a catalogue whose variants sit
        on its first products costs few requests.
        """
        pending = {str(row.get("id")) for row in variant_rows if isinstance(row, Mapping)}
        found: list[Listing] = []
        for product in products:
            if not pending:
                break
            rows = self._addon_collection(api, VARIANT_PATH, [("_cnd[product]", product.remote_id)])
            for row in rows:
                if isinstance(row, Mapping) and str(row.get("id")) in pending:
                    pending.discard(str(row.get("id")))
                    with _reading("a variant"):
                        found.append(mapping.variant_listing(row, product))
        return found

    def _builtin_listings(self, api: BuiltinClient) -> list[Listing]:
        listings: list[Listing] = []
        page = 1
        while True:
            reply = api.get("products", [("page", page), ("itemsPerPage", BUILTIN_PAGE_SIZE)])
            rows = _page_rows(reply, BUILTIN_PAGE_SIZE, "product")
            for row in rows:
                with _reading("a product"):
                    product = mapping.product_listing(row, id_key="id")
                listings.append(product)
                variants = api.get(f"products/{product.remote_id}/variants", missing_ok=True).data or []
                if not isinstance(variants, list):
                    raise ProtocolError("X-Cart sent a product's variants as something that is not a list.")
                with _reading("a variant"):
                    listings.extend(mapping.variant_listing(v, product, snake=True) for v in variants)
            if len(rows) < BUILTIN_PAGE_SIZE:
                return listings
            page += 1

    # -- stock and prices --------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        if not self.settings.get("stock_sync", True):
            return [_failed(u, "Stock updates are turned off for this channel.") for u in updates]

        def prepare(update: StockUpdate) -> Any:
            quantity = update.quantity
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise ValueError(f"quantity {quantity!r} is not a whole number")
            if quantity > MAX_QUANTITY:
                raise ValueError(f"quantity {quantity} is too large")
            return max(0, quantity)  # X-Cart clamps negative stock to 0 itself

        return self._push(updates, prepare, "amount", "default_amount", "defaultAmount", _same_int)

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        if not self.settings.get("price_sync", False):
            return [_failed(u, "Price updates are turned off for this channel.") for u in updates]

        def prepare(update: PriceUpdate) -> Any:
            try:
                price = Decimal(str(update.price))
            except InvalidOperation:
                raise ValueError(f"price {update.price!r} is not a number") from None
            if not price.is_finite() or price < 0:
                raise ValueError(f"price {update.price} must be a positive amount")
            if price > MAX_PRICE:
                raise ValueError(f"price {update.price} is too large for X-Cart")
            if price != price.quantize(Decimal("0.0001")):
                raise ValueError(f"price {update.price} has more than 4 decimal places")
            return price.quantize(Decimal("0.01")) if price == price.quantize(Decimal("0.01")) else price

        return self._push(updates, prepare, "price", "default_price", "defaultPrice", _same_money)

    def _push(
        self,
        updates: Sequence[StockUpdate | PriceUpdate],
        prepare: Callable[[Any], Any],
        field: str,
        builtin_default_flag: str,
        addon_default_flag: str,
        same: Callable[[Any, Any], bool],
    ) -> list[PushResult]:
        """Validate every update, write the valid ones in batches, verify what the store returned.

        One result per update in input order. A batch the store rejects (400) fails its items and
        the rest carry on; authentication, rate-limit and transient errors stop the whole push.
        """
        results: list[PushResult | None] = [None] * len(updates)
        valid: list[tuple[int, Any, Any]] = []
        for index, update in enumerate(updates):
            try:
                if not str(update.remote_id).isdigit() or (
                    update.remote_variant_id and not str(update.remote_variant_id).isdigit()
                ):
                    raise ValueError("the remote id is not an X-Cart id")
                valid.append((index, update, prepare(update)))
            except ValueError as exc:
                results[index] = _failed(update, f"Not sent: {exc}.")
        api = self._api()
        if isinstance(api, BuiltinClient):
            for index, update, value in valid:
                results[index] = self._push_builtin_one(api, update, field, builtin_default_flag, value, same)
        else:
            products = [item for item in valid if not item[1].remote_variant_id]
            variants = [item for item in valid if item[1].remote_variant_id]
            for group, path, id_key in ((products, "product", "product_id"), (variants, VARIANT_PATH, "id")):
                for start in range(0, len(group), BATCH_SIZE):
                    batch = group[start : start + BATCH_SIZE]
                    for index, result in self._push_addon_batch(
                        api, batch, path, id_key, field, addon_default_flag, same
                    ):
                        results[index] = result
        return [result for result in results if result is not None]

    def _push_addon_batch(
        self,
        api: AddonClient,
        batch: list[tuple[int, Any, Any]],
        path: str,
        id_key: str,
        field: str,
        default_flag: str,
        same: Callable[[Any, Any], bool],
    ) -> list[tuple[int, PushResult]]:
        rows: list[dict[str, Any]] = []
        for _, update, value in batch:
            row: dict[str, Any] = {id_key: update.remote_variant_id or update.remote_id, field: value}
            if path == VARIANT_PATH:
                row[default_flag] = False  # give the variant its own stock/price
            rows.append(row)
        try:
            returned = api.write("PUT", path, rows).data
        except PermanentError as exc:
            return [(index, _failed(update, exc.message)) for index, update, _ in batch]
        if not isinstance(returned, list):
            raise ProtocolError(
                f"X-Cart answered a batch update of {path} with something that is not a list.",
                code="not_a_list",
                raw=json.dumps(returned)[:500],
            )
        by_id: dict[str, Any] = {}
        for entry in returned:
            if isinstance(entry, Mapping) and entry.get(id_key) is not None:
                by_id[str(entry[id_key])] = entry
        outcome: list[tuple[int, PushResult]] = []
        for index, update, value in batch:
            entry = by_id.get(str(update.remote_variant_id or update.remote_id))
            if entry is None:
                outcome.append(
                    (index, _failed(update, "X-Cart did not confirm this item (it may no longer exist)."))
                )
            elif not same(entry.get(field), value):
                outcome.append(
                    (index, _failed(update, f"X-Cart stored {entry.get(field)!r} instead of {value}."))
                )
            else:
                outcome.append((index, _ok(update)))
        return outcome

    def _push_builtin_one(
        self,
        api: BuiltinClient,
        update: Any,
        field: str,
        default_flag: str,
        value: Any,
        same: Callable[[Any, Any], bool],
    ) -> PushResult:
        if update.remote_variant_id:
            path = f"products/{update.remote_id}/variants/{update.remote_variant_id}"
            body = {field: value, default_flag: False}
        else:
            path = f"products/{update.remote_id}"
            body = {field: value}
        try:
            returned = api.put(path, body, missing_ok=True).data
        except PermanentError as exc:
            return _failed(update, exc.message)
        if returned is None:
            return _failed(update, "X-Cart has no such product or variant.")
        if not isinstance(returned, Mapping) or not same(returned.get(field), value):
            got = returned.get(field) if isinstance(returned, Mapping) else returned
            return _failed(update, f"X-Cart stored {got!r} instead of {value}.")
        return _ok(update)


# -- small helpers --------------------------------------------------------------------------------


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """An unreadable store object becomes a ProtocolError that says what and why."""
    try:
        yield
    except mapping.MappingError as exc:
        raise ProtocolError(f"X-Cart sent {what} Storelink cannot read: {exc}", code="bad_data") from None


def _changed_at(row: Any, key: str) -> int:
    """An order's last-change time in epoch seconds: ``lastRenewDate`` (add-on, a Unix time) or
    ``update_date`` (5.5, ISO 8601); 0 when the store has none."""
    if not isinstance(row, Mapping):
        raise mapping.MappingError("an order is not an object")
    value = row.get(key)
    if value in (None, "", 0, "0"):
        return 0
    if key == "update_date":
        return int(mapping.parse_time(value).timestamp())
    try:
        return int(value)
    except (TypeError, ValueError):
        raise mapping.MappingError(f"{key} {value!r} is not a time") from None


def _far_end(since: int) -> int:
    """The upper bound of a "placed since" window: far enough ahead for any store clock."""
    return max(since, int(time.time())) + WINDOW_END_MARGIN_SECONDS


def _limit(offset: int, count: int) -> list[tuple[str, Any]]:
    return [("_cnd[limit][0]", offset), ("_cnd[limit][1]", count)]


def _newest_date(rows: list[Any], floor: int) -> int:
    """The placement date (epoch seconds) of a page's last order, checking the page is sorted: a
    store that ignored the sort would make a date cursor skip orders."""
    previous = floor
    for row in rows:
        with _reading("an order"):
            if not isinstance(row, Mapping):
                raise mapping.MappingError("an order is not an object")
            placed = int(mapping.parse_time(row.get("orderDate")).timestamp())
        if placed < previous:
            raise ProtocolError(
                "X-Cart sent a page of orders out of date order (or outside the asked window); "
                "Storelink cannot page through it safely.",
                code="unsorted_page",
            )
        previous = placed
    return previous


def _page_rows(reply: Reply, page_size: int, what: str) -> list[Any]:
    """A page must be a list, no longer than asked for, and as long as ``X-Result-Count`` says."""
    rows = reply.data
    if not isinstance(rows, list):
        raise ProtocolError(
            f"X-Cart answered a page of {what}s with something that is not a list.",
            code="not_a_list",
            raw=json.dumps(rows)[:500] if rows is not None else "null",
        )
    if reply.result_count is not None and reply.result_count != len(rows):
        raise ProtocolError(
            f"X-Cart said the page of {what}s has {reply.result_count} rows but sent {len(rows)}.",
            code="short_page",
        )
    if len(rows) > page_size:
        raise ProtocolError(
            f"X-Cart sent {len(rows)} {what}s for a page of {page_size}: the page limit was ignored.",
            code="page_limit_ignored",
        )
    return rows


@dataclass
class _Progress:
    """What a download run carries to the next one (serialised as the checkpoint).

    ``since`` is the placement-date low-water mark of the new-orders window, ``changed`` the store
    time up to which changes were scanned, ``open`` the ids (oldest first) of orders this channel
    downloaded and last saw open, ``cursor`` the last id re-read in turn. ``complete`` is false when
    ``open`` may lack some of them (the checkpoint predates the list, or the list overflowed): the
    changed-orders scan then also passes on every order that closed, so none keeps reserving stock.
    """

    since: int
    changed: int
    open: dict[str, None] = field(default_factory=dict)
    cursor: int = 0
    complete: bool = True
    #: The API the download went through (``addon`` or ``builtin``): a poll on an "auto" channel
    #: asks through it without detecting the flavour again (two requests saved on every poll).
    api: str = ""

    def note(self, order: Order) -> None:
        if order.closed:
            self.open.pop(order.external_id, None)
            return
        self.open[order.external_id] = None
        if len(self.open) > MAX_TRACKED_OPEN:
            del self.open[next(iter(self.open))]
            self.complete = False

    def forget(self, order_id: str) -> None:
        self.open.pop(order_id, None)

    def next_to_reread(self, skip: set[str]) -> list[str]:
        """This run's slice of open orders, in id order from after the cursor, wrapping round."""
        ids = sorted(int(i) for i in self.open if i not in skip)
        if not ids:
            return []
        count = min(len(ids), REREAD_MAX, max(REREAD_MIN, -(-len(self.open) // REREAD_CYCLE_RUNS)))
        after = [i for i in ids if i > self.cursor]
        batch = (after + [i for i in ids if i <= self.cursor])[:count]
        self.cursor = batch[-1]
        return [str(i) for i in batch]

    def dump(self) -> str:
        data = {
            "v": CHECKPOINT_VERSION,
            "since": int(self.since),
            "changed": int(self.changed),
            "open": [int(i) for i in self.open],
            "cursor": self.cursor,
            "complete": self.complete,
        }
        if self.api:
            data["api"] = self.api
        return json.dumps(data, separators=(",", ":"))


def _read_checkpoint(checkpoint: str | None) -> _Progress | None:
    """The saved progress; a version-1 checkpoint (``since`` only) is read as an incomplete one."""
    if not checkpoint:
        return None
    try:
        data = json.loads(checkpoint)
        since = _whole(data["since"])
        if data.get("v", 1) == 1:
            return _Progress(since=since, changed=since, complete=False)
        return _Progress(
            since=since,
            changed=_whole(data["changed"]),
            open={str(_whole(i)): None for i in data["open"]},
            cursor=_whole(data.get("cursor", 0)),
            complete=data.get("complete") is True,
            api=data.get("api") if data.get("api") in ("addon", "builtin") else "",
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PermanentError(
            "The saved X-Cart order checkpoint is unreadable; reset the channel's order sync.",
            code="bad_checkpoint",
            raw=str(checkpoint)[:200],
        ) from None


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(value)
    return value


def _payment_code(order: Order) -> str:
    """The payment status code of a mapped order, from the store's payload (both flavours)."""
    return mapping.status_code_of(order.raw.get("paymentStatus", order.raw.get("payment_status")))


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_int(returned: Any, sent: Any) -> bool:
    try:
        return int(Decimal(str(returned))) == int(sent)
    except (InvalidOperation, TypeError, ValueError):
        return False


def _same_money(returned: Any, sent: Any) -> bool:
    try:
        return Decimal(str(returned)).quantize(Decimal("0.0001")) == Decimal(sent).quantize(Decimal("0.0001"))
    except (InvalidOperation, TypeError, ValueError):
        return False


def _ok(update: Any) -> PushResult:
    return PushResult(
        sku=update.sku, remote_id=update.remote_id, ok=True, remote_variant_id=update.remote_variant_id
    )


def _failed(update: Any, error: str) -> PushResult:
    return PushResult(
        sku=update.sku,
        remote_id=update.remote_id,
        ok=False,
        error=error,
        remote_variant_id=update.remote_variant_id,
    )
