"""The 3DCart / Shift4Shop connector: orders down, shipments and stock/prices up.

The store is reached through 3DCart's shared API host (:mod:`connectors.threedcart.client`); this
module holds the sync rules that 3DCart's API makes necessary:

- **Orders** are listed with 1-based ``offset`` paging, sorted by ``OrderID`` (not date), filtered
  by dates in the store's own clock. The first run reads ``datestart`` = now − look-back; later runs
  read ``lastupdatestart`` (date granularity, so the window starts a whole day before the last
  change seen) and ``datestart`` again for new orders. Orders are de-duplicated by ``OrderID`` and
  ``LastUpdate`` across passes and runs through the checkpoint. ``countonly`` is asked first, so a
  store that silently returns fewer rows than it counted fails loudly instead of losing orders.
  The import statuses decide only an order's first download: the checkpoint follows every open
  order Storelink has, so a later cancel or hold arrives whatever the new status, closed
  (cancelled, shipped, abandoned) orders carry ``Order.closed`` and stop reserving stock.
- **Shipments** are written with ``PUT /Orders/{id}/Shipments/{sid}`` and the order status with a
  ``PUT /Orders/{id}`` body of only ``OrderID``/``OrderStatusID``: order and product PUTs *replace*
  any collection (shipments, items, variants) they carry, so Storelink never sends one. Each
  shipment written carries Storelink's shipment reference in its ``ShipmentInternalComment``
  (after the seller's own text) and is not resent blind when the reply is lost: the retry reads
  the order and leaves alone every shipment holding the reference.
- **Stock and prices** go to parents in ``PUT /Products`` batches (≤100, only ``SKUInfo`` members)
  and to variants one row at a time (whether the variant-collection PUT replaces rows is
  UNCONFIRMED, so it is not used). 3DCart answers per item; only failed items are retried.

Why one module of this size: each operation's defences against 3DCart's replies (error arrays
with 200, collection-replace PUTs, per-item results) sit next to the call they guard; the HTTP
client and the JSON mapping are already their own modules.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

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
from connectors.errors import AuthError, OrderClosedError, PermanentError, ProtocolError, TransientError
from connectors.threedcart import fields
from connectors.threedcart.client import (
    MAX_ORDER_PAGE,
    MAX_PRODUCT_PAGE,
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    REAUTHORISE_HINT,
    ThreeDCartClient,
    WriteReply,
    store_url_hint,
)
from connectors.threedcart.mapping import (
    DEFAULT_STATUS_NAMES,
    NOT_COMPLETED_STATUS,
    PARTIAL_STATUS,
    SHIPPED_DATE_FORMAT,
    WriteResult,
    format_query_date,
    format_query_datetime,
    join_tracking_codes,
    json_number,
    local_to_utc,
    map_listings,
    map_order,
    member,
    order_times,
    parse_money,
    resolve_zone,
    sanitise_method_name,
    split_tracking_codes,
    status_names_from_table,
    utc_to_local,
    zone_from_store_setting,
)

log = logging.getLogger("connectors.threedcart")

CHECKPOINT_VERSION = 1
#: Orders remembered in the checkpoint to skip unchanged ones in the next run's overlap window.
MAX_REMEMBERED_ORDERS = 20_000
#: Open orders whose changes are downloaded whatever their new status.
MAX_FOLLOWED_ORDERS = 50_000
PUSH_BATCH_SIZE = 100
#: Extra sends of a batch whose reply was lost or whose items failed on the store's side.
PUSH_RETRIES = 2
TRACKING_CODE_MAX = 100
STATUS_PAGE_SIZE = 500


@dataclass
class _Run:
    """An order download in progress: the fixed window and where the current pass stands."""

    window: str
    passes: list[str]
    offset: int = 1
    high: str | None = None
    #: What ``countonly`` said at the start of each pass, kept for the next polls to compare with.
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Checkpoint:
    since: str | None = None
    emitted: dict[str, str] = field(default_factory=dict)
    run: _Run | None = None
    #: OrderIDs downloaded while open: their later changes arrive whatever the new status.
    followed: set[int] = field(default_factory=set)
    #: The last finished run's window and its counts per pass: a poll counts the next run's window
    #: again and downloads only when a count moved (:meth:`ThreeDCartConnector.orders_changed_since`).
    baseline: dict[str, Any] | None = None

    def knows(self, order_id: str) -> bool:
        return order_id in self.emitted or (order_id.isdigit() and int(order_id) in self.followed)

    def dump(self) -> str:
        data: dict[str, Any] = {
            "v": CHECKPOINT_VERSION,
            "since": self.since,
            "emitted": self.emitted,
            "followed": sorted(self.followed),
        }
        if self.baseline is not None:
            data["baseline"] = self.baseline
        if self.run is not None:
            data["run"] = {
                "window": self.run.window,
                "passes": self.run.passes,
                "offset": self.run.offset,
                "high": self.run.high,
                "counts": self.run.counts,
            }
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def load(cls, text: str | None) -> _Checkpoint:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != CHECKPOINT_VERSION:
                raise ValueError("unknown checkpoint version")
            run_data = data.get("run")
            run = None
            if run_data:
                run = _Run(
                    window=str(run_data["window"]),
                    passes=[str(p) for p in run_data["passes"]],
                    offset=int(run_data["offset"]),
                    high=run_data.get("high"),
                    counts={str(k): int(v) for k, v in (run_data.get("counts") or {}).items()},
                )
                if not run.passes or any(p not in ("updated", "new") for p in run.passes):
                    raise ValueError("bad passes")
            since = data.get("since")
            if since is not None:
                datetime.fromisoformat(since)
            emitted = {str(k): str(v) for k, v in (data.get("emitted") or {}).items()}
            # Checkpoints written before orders were followed have none: the orders in the
            # overlap window are still recognised through ``emitted``.
            followed = {int(order_id) for order_id in data.get("followed") or []}
            baseline = data.get("baseline")
            if baseline is not None:
                baseline = {
                    "window": str(baseline["window"]),
                    "counts": {str(k): int(v) for k, v in baseline["counts"].items()},
                }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentError(
                f"The saved 3DCart download position is not readable ({exc}); reset the channel's "
                "order checkpoint to download from the look-back period again.",
                code="bad_checkpoint",
            ) from None
        return cls(since=since, emitted=emitted, run=run, followed=followed, baseline=baseline)


def _pass_params(current: str, window: str) -> dict[str, str]:
    """The order filter of one download pass: changed since the window's day, or placed since it
    (``lastupdatestart`` is documented as a date only, ``datestart`` takes a time of day)."""
    if current == "updated":
        return {"lastupdatestart": format_query_date(window)}
    return {"datestart": window}


def _day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


class ThreeDCartConnector(Connector):
    platform = "threedcart"
    label = "3DCart"
    company = "Shift4Shop (3DCart)"
    description = "3DCart / Shift4Shop through its REST API module."
    logo = "img/logos/threedcart.svg"
    instructions_template = "channels/_instructions_threedcart.html"
    callback_credential = "access_token"
    app_key_settings: ClassVar[Mapping[str, str]] = {
        PUBLIC_KEY_NAME: "THREEDCART_PUBLIC_KEY",
        PRIVATE_KEY_NAME: "THREEDCART_PRIVATE_KEY",
    }
    public_app_key = PUBLIC_KEY_NAME
    api_base_setting = "THREEDCART_API_BASE"
    store_url_label = fields.STORE_URL_LABEL
    store_url_help = fields.STORE_URL_HELP
    credential_fields = fields.CREDENTIAL_FIELDS
    settings_fields = fields.SETTINGS_FIELDS
    capabilities = Capabilities(
        partial_shipment=True,
        multiple_tracking_numbers=True,
        variants=True,
        stock_batch_size=PUSH_BATCH_SIZE,
        price_batch_size=PUSH_BATCH_SIZE,
        tax_inclusive_prices=False,  # no tax-inclusive flag on a SKU: tax is added on the order
        order_page_size=100,
        order_probe=True,  # countonly over the next download's window
    )
    #: 3DCart's built-in statuses that end an order: 4 Shipped, 5 Cancelled, 7 Not Completed (an
    #: abandoned checkout). 6 is Hold: a held order is still to be shipped and keeps its stock.
    closed_status_codes = frozenset({"4", "5", "7"})

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
        #: Orders per page; 3DCart allows up to 300 but large pages are slow to build on its side.
        self.order_page_size = min(self.capabilities.order_page_size, MAX_ORDER_PAGE)
        self.product_page_size = MAX_PRODUCT_PAGE
        self._client: ThreeDCartClient | None = None
        self._status_names: dict[str, str] | None = None
        self._store_settings: dict[str, Any] | None = None
        self._sku_index: dict[str, Listing] | None = None

    @property
    def client(self) -> ThreeDCartClient:
        """Built on first use, so a connector can be created (and its fields read) without keys."""
        if self._client is None:
            self._client = ThreeDCartClient(
                self.store_url,
                str(self.credentials.get("access_token", "") or ""),
                options=self.options,
                http=self.http,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def zone(self) -> ZoneInfo:
        return resolve_zone(self.settings.get("timezone") or "America/New_York")

    # -- store facts -------------------------------------------------------------------------------

    def test_connection(self) -> StoreFacts:
        """``GET /StoreSettings`` and ``GET /OrderStatus``: read-only, so nothing changes store-side.

        3DCart answers one 401 for a wrong store URL and a wrong token alike. A store URL that is not
        the store's secure address is the likelier mistake while connecting (the token came from
        3DCart itself), so that refusal names the URL first.
        """
        try:
            store = self._read_store_settings()
        except AuthError as exc:
            if exc.code != "unauthorised" or exc.status_code == 403:
                raise
            raise AuthError(
                "3DCart refused this store URL together with the token and does not say which is "
                f"wrong. First {store_url_hint(self.store_url)}. " + REAUTHORISE_HINT,
                code="unauthorised",
                raw=exc.raw,
                status_code=exc.status_code,
            ) from None
        rows = self._read_status_table()
        standards = member(store, "StoreStandards") or {}
        information = member(store, "StoreInformation") or {}
        currency = str(member(standards, "CurrencyCode", "") or "").strip().upper()
        configured_zone = str(self.settings.get("timezone") or "America/New_York")
        store_zone = member(standards, "StoreTimeZone", "")
        zone_name, zone_warning = zone_from_store_setting(store_zone, configured_zone)
        warnings = [zone_warning] if zone_warning else []
        configured_currency = str(self.settings.get("currency") or "").upper()
        if currency and configured_currency and configured_currency != currency:
            warnings.append(
                f"The store sells in {currency} but the channel's currency is {configured_currency}."
            )
        secure_url = str(member(information, "StoreSecureURL", "") or "").rstrip("/")
        if secure_url and _host(secure_url) != _host(self.store_url):
            warnings.append(
                f"3DCart reports the store's secure URL as {secure_url}; the channel uses {self.store_url}."
            )
        statuses = tuple(
            StoreStatus(
                code=str(member(row, "OrderStatusID")),
                name=name,
                closes_order=str(member(row, "OrderStatusID")) in self.closed_status_codes,
            )
            for row, name in (
                (row, str(member(row, "StatusText") or member(row, "StatusDefinition") or ""))
                for row in rows
                if str(member(row, "OrderStatusID", "")).strip()
            )
        ) or tuple(
            StoreStatus(code, name, closes_order=code in self.closed_status_codes)
            for code, name in DEFAULT_STATUS_NAMES.items()
        )
        return StoreFacts(
            platform_version="3DCart REST API v2",
            base_currency=currency or configured_currency or "USD",
            timezone=zone_name,
            prices_include_tax=False,
            order_statuses=statuses,
            currencies=(currency,) if currency else (),
            can_read=True,
            can_write=True,
            warnings=tuple(warnings),
            details={
                "store_name": str(member(information, "StoreName", "") or ""),
                "secure_url": secure_url,
                "store_time_zone": str(store_zone or ""),
                "currency_symbol": str(member(standards, "CurrencySymbol", "") or ""),
                # Reads prove read access only; write scope shows at the first update (401 then).
                "write_access": "unknown until the first update",
            },
        )

    def _read_store_settings(self) -> dict[str, Any]:
        if self._store_settings is None:
            self._store_settings = self.client.get_one("StoreSettings", what="store settings")
        return self._store_settings

    def _read_status_table(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for _, page in self.client.iterate_pages(
            "OrderStatus", {}, limit=STATUS_PAGE_SIZE, what="order status list"
        ):
            rows.extend(dict(row) for row in page if isinstance(row, Mapping))
        self._status_names = status_names_from_table(rows)
        return rows

    def status_names(self) -> dict[str, str]:
        if self._status_names is None:
            self._read_status_table()
        assert self._status_names is not None
        return self._status_names

    def _currency(self) -> str:
        configured = str(self.settings.get("currency") or "").strip().upper()
        if configured:
            return configured
        standards = member(self._read_store_settings(), "StoreStandards") or {}
        return str(member(standards, "CurrencyCode", "") or "USD").upper()

    # -- orders ------------------------------------------------------------------------------------

    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        """Every order placed or changed since ``checkpoint``, one API page per :class:`OrderPage`."""
        state = _Checkpoint.load(checkpoint)
        zone = self.zone
        if state.run is None:
            state.run = self._start_run(state.since, zone)
        statuses = self.status_names()
        currency = self._currency()
        wanted = {str(code) for code in (self.settings.get("import_statuses") or [])}
        run = state.run
        while run.passes:
            current = run.passes[0]
            params = _pass_params(current, run.window)
            expected = self.client.count("Orders", params, what="order count")
            if run.offset == 1:
                run.counts[current] = expected
            read = run.offset - 1
            for offset, items in self.client.iterate_pages(
                "Orders", params, limit=self.order_page_size, what="order list", start_offset=run.offset
            ):
                read += len(items)
                orders = self._orders_from_page(items, zone, statuses, currency, wanted, state, run)
                run.offset = offset + len(items)
                if len(items) < self.order_page_size:  # the pass ends with this page
                    if read < expected:
                        raise ProtocolError(
                            f"3DCart counted {expected} orders but listed only {read}; Storelink stops "
                            "rather than miss orders.",
                            code="short_read",
                        )
                    run.passes = run.passes[1:]
                    run.offset = 1
                    if not run.passes:
                        state = self._finish_run(state, zone)
                yield OrderPage(orders=tuple(orders), checkpoint=state.dump())
                if state.run is None:
                    return

    def orders_changed_since(self, checkpoint: str) -> bool | None:
        """``countonly`` over the next download's window, compared with what the last one counted.

        One or two small requests (the "updated" and the "new" pass), no order rows: a count that
        moved means a new order or an order changed for the first time since the window's day
        began; a download that was interrupted always continues. ``lastupdatestart`` has whole-day
        granularity, so a second change to an order already changed that day leaves the count
        alone: the order job's full download once per order interval finds those.
        """
        state = _Checkpoint.load(checkpoint)
        if state.run is not None:
            return True
        if state.baseline is None:
            # No finished download to compare with (none yet, or one from before the counts were
            # kept): download, which records them.
            return None if state.since is None else True
        # A store that had no order in the look-back period yet keeps no ``since``: its next
        # download reads the look-back window again, and the count of that window is compared.
        upcoming = self._start_run(state.since, self.zone)
        if state.baseline["window"] != upcoming.window:
            return True
        counts = state.baseline["counts"]
        for current in upcoming.passes:
            if current not in counts:
                return True
            found = self.client.count("Orders", _pass_params(current, upcoming.window), what="order count")
            if found != counts[current]:
                return True
        return False

    def _start_run(self, since: str | None, zone: ZoneInfo) -> _Run:
        if since is None:
            days = int(self.settings.get("order_lookback_days") or 7)
            start = utc_to_local(datetime.now(UTC) - timedelta(days=days), zone)
            return _Run(window=format_query_datetime(_day_start(start)), passes=["new"], high=None)
        # lastupdatestart is documented as date-only: overlap by a whole day before the last change.
        start = utc_to_local(datetime.fromisoformat(since), zone) - timedelta(days=1)
        return _Run(window=format_query_datetime(_day_start(start)), passes=["updated", "new"], high=since)

    def _finish_run(self, state: _Checkpoint, zone: ZoneInfo) -> _Checkpoint:
        assert state.run is not None
        since = state.run.high or state.since
        emitted = state.emitted
        if since is not None:
            next_start = _day_start(utc_to_local(datetime.fromisoformat(since), zone) - timedelta(days=1))
            floor = local_to_utc(next_start, zone).isoformat()
            emitted = {k: v for k, v in emitted.items() if v >= floor}
        if len(emitted) > MAX_REMEMBERED_ORDERS:
            newest = sorted(emitted.items(), key=lambda item: item[1])[-MAX_REMEMBERED_ORDERS:]
            emitted = dict(newest)
        followed = state.followed
        if len(followed) > MAX_FOLLOWED_ORDERS:
            # OrderIDs grow with time: the oldest open orders are the likeliest to be forgotten ones.
            log.warning("threedcart.followed_orders_capped", extra={"open_orders": len(followed)})
            followed = set(sorted(followed)[-MAX_FOLLOWED_ORDERS:])
        baseline = {"window": state.run.window, "counts": dict(state.run.counts)}
        return _Checkpoint(since=since, emitted=emitted, run=None, followed=followed, baseline=baseline)

    def _orders_from_page(
        self,
        items: list[Any],
        zone: ZoneInfo,
        statuses: Mapping[str, str],
        currency: str,
        wanted: set[str],
        state: _Checkpoint,
        run: _Run,
    ) -> list[Order]:
        orders: list[Order] = []
        for raw in items:
            if not isinstance(raw, Mapping):
                raise ProtocolError("3DCart listed an order that is not an object.", code="bad_order")
            order_id = str(member(raw, "OrderID", "")).strip()
            times = order_times(raw, zone)
            updated = times.updated_at.isoformat()
            if run.high is None or updated > run.high:
                run.high = updated
            status = str(member(raw, "OrderStatusID", "")).strip()
            # The import statuses choose which orders are downloaded the first time; a change of
            # an order Storelink already has arrives whatever its new status (a cancel, a hold).
            if not state.knows(order_id) and (
                status == NOT_COMPLETED_STATUS or (wanted and status not in wanted)
            ):
                continue
            # LastUpdate has whole seconds: two changes in one second differ by status only.
            seen = f"{updated}#{status}"
            if state.emitted.get(order_id) in (seen, updated):  # (older checkpoints: time only)
                continue  # seen in an earlier pass or run, unchanged since
            order = map_order(
                raw,
                zone=zone,
                currency=currency,
                status_names=statuses,
                closed_codes=self.closed_status_codes,
            )
            orders.append(order)
            state.emitted[order_id] = seen
            if order_id.isdigit():
                if order.closed:
                    state.followed.discard(int(order_id))
                else:
                    state.followed.add(int(order_id))
        return orders

    # -- shipments ---------------------------------------------------------------------------------

    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        """Tracking on the order's shipment(s), then the order status; nothing already there is sent.

        3DCart keeps tracking per shipment and has no shipped quantity per line, so a partial
        shipment marks the shipments holding the given lines and sets the order to "Partial" (3).
        """
        order_id = str(shipment.order_external_id).strip()
        if not order_id.isdigit():
            raise PermanentError(f"'{order_id}' is not a 3DCart order id.", code="bad_order_id")
        target_status = str(shipment.processed_status or self.settings.get("processed_status") or "").strip()
        if not target_status.isdigit():
            raise PermanentError(
                "Choose the 'Processed order status' in the channel settings before confirming shipments.",
                code="no_processed_status",
            )
        codes = [code.strip() for code in shipment.tracking_numbers if code.strip()]
        order = self._read_order(order_id)
        shipments = [s for s in (member(order, "ShipmentList") or []) if isinstance(s, Mapping)]
        if not shipments:
            raise PermanentError(
                f"3DCart order {order_id} has no shipment to put the tracking number on.", code="no_shipment"
            )
        items = [i for i in (member(order, "OrderItemList") or []) if isinstance(i, Mapping)]
        warnings: list[str] = []
        base = self._shipments_for_lines(shipment, shipments, items, warnings)
        plan = self._plan_shipments(shipment, base, shipments, codes, target_status)
        reference = shipment.reference.strip()
        recognised: set[str] = set()
        if reference:
            # A shipment carrying this reference was written by an earlier attempt whose reply was
            # lost (or by this very shipment before): it is never written again, even when the
            # seller has edited its tracking since.
            recognised = {str(member(row, "ShipmentID")) for row in shipments if _carries(row, reference)}
            plan = [
                (row, row_codes)
                for row, row_codes in plan
                if str(member(row, "ShipmentID")) not in recognised
            ]
        current = str(member(order, "OrderStatusID", "")).strip()
        closed = current in self.closed_status_codes
        if closed and not recognised and (plan or current != target_status):
            # Checked only after our own earlier write was looked for: that write may be what moved
            # the order to Shipped, and it must be reported as done, not as closed.
            self._refuse_closed(order, order_id, current)
        if closed:
            plan = []  # done already (by us, or the same tracking): a closed order is never written

        method = sanitise_method_name(" ".join(p for p in (shipment.carrier, shipment.service) if p))
        shipped_on = utc_to_local(shipment.shipped_at or datetime.now(UTC), self.zone).strftime(
            SHIPPED_DATE_FORMAT
        )
        written: list[str] = []
        for row, row_codes in plan:
            sid = str(member(row, "ShipmentID", "0"))
            existing = split_tracking_codes(member(row, "ShipmentTrackingCode"))
            joined = join_tracking_codes([*existing, *row_codes])
            if len(joined) > TRACKING_CODE_MAX:
                raise PermanentError(
                    f"3DCart keeps at most {TRACKING_CODE_MAX} characters of tracking per shipment; "
                    f"'{joined}' is too long.",
                    code="tracking_too_long",
                )
            body: dict[str, Any] = {"ShipmentID": _as_id(sid), "ShipmentOrderStatus": int(target_status)}
            if joined != join_tracking_codes(existing):
                body["ShipmentTrackingCode"] = joined
            if method:
                body["ShipmentMethodName"] = method
            if not str(member(row, "ShipmentShippedDate", "") or "").strip():
                body["ShipmentShippedDate"] = shipped_on
            if reference:
                comment = str(member(row, "ShipmentInternalComment", "") or "").strip()
                body["ShipmentInternalComment"] = f"{comment} {reference}".strip()
            reply = self.client.put(
                f"Orders/{order_id}/Shipments/{sid}",
                body,
                what=f"shipment {sid} of order {order_id}",
                resend_on_lost_reply=not reference,
            )
            self._require_ok(reply, f"shipment {sid} of order {order_id}")
            written.append(sid)

        shipped_ids = {str(member(s, "ShipmentID")) for s in shipments if _is_shipped(s, target_status)}
        shipped_ids.update(written)
        all_shipped = all(str(member(s, "ShipmentID")) in shipped_ids for s in shipments)
        desired = target_status
        if shipment.is_partial or not all_shipped:
            if current == target_status:
                desired = current  # never move an order back from shipped to partial
            elif PARTIAL_STATUS in self.status_names():
                desired = PARTIAL_STATUS
            else:
                desired = current
                warnings.append("The store has no 'Partial' status; the order status was left as it is.")
        if desired and desired != current and not closed:
            reply = self.client.put(
                f"Orders/{order_id}",
                {"OrderID": int(order_id), "OrderStatusID": int(desired)},
                what=f"status of order {order_id}",
            )
            self._require_ok(reply, f"status of order {order_id}")
        if not shipment.notify_customer:
            warnings.append(
                "3DCart decides by its own settings whether to e-mail the customer; Storelink cannot "
                "turn that off per shipment."
            )
        sids = ",".join(str(member(s, "ShipmentID")) for s in base)
        return ShipmentResult(
            store_reference=f"{order_id}:{sids}", tracking_sent=tuple(codes), warnings=tuple(warnings)
        )

    def _refuse_closed(self, order: Mapping[str, Any], order_id: str, status: str) -> None:
        """The store has closed this order (cancelled, shipped by the seller, never completed): 3DCart
        would still take the tracking and set it to shipped, so nothing is sent and the order as the
        store shows it now goes back with the error for Storelink to bring its copy up to date."""
        names = self.status_names()
        name = names.get(status) or DEFAULT_STATUS_NAMES.get(status) or f"status {status}"
        fresh = map_order(
            order,
            zone=self.zone,
            currency=self._currency(),
            status_names=names,
            closed_codes=self.closed_status_codes,
        )
        raise OrderClosedError(
            f"3DCart shows order {order_id} as '{name}', a status that closes the order, so the "
            "shipment was not sent. Check the order in your store.",
            order=fresh,
        )

    def _read_order(self, order_id: str) -> dict[str, Any]:
        """The order with this ``OrderID``, as the store shows it now.

        ``GET /Orders/{id}`` is documented to take the *invoice number*, which differs from the
        ``OrderID`` every write under ``/Orders/{id}`` takes, and on a store whose invoice numbers
        have grown into the OrderID range it would answer with another order. The list filter
        ``orderid`` is what the recorded live client used; its answer is still checked, so a store
        that ignored the filter can never make Storelink write to someone else's order.
        """
        found = self.client.get_list("Orders", {"orderid": order_id}, what=f"order {order_id}")
        matching = [
            row
            for row in found
            if isinstance(row, Mapping) and str(member(row, "OrderID", "")).strip() == order_id
        ]
        if len(matching) == 1:
            return dict(matching[0])
        if not found:
            raise PermanentError(f"3DCart has no order {order_id}.", code="not_found", status_code=404)
        raise ProtocolError(
            f"3DCart answered the request for order {order_id} with "
            f"{', '.join(str(member(row, 'OrderID')) for row in found[:5] if isinstance(row, Mapping))}.",
            code="wrong_order",
        )

    @staticmethod
    def _shipments_for_lines(
        shipment: ShipmentRequest,
        shipments: list[Mapping[str, Any]],
        items: list[Mapping[str, Any]],
        warnings: list[str],
    ) -> list[Mapping[str, Any]]:
        """The shipments holding the requested lines (all of them for a whole-order shipment)."""
        if not shipment.lines:
            return shipments
        by_line = {str(member(item, "ItemIndexID")): item for item in items}
        wanted_ids: list[str] = []
        for line in shipment.lines:
            item = by_line.get(str(line.external_line_id))
            if item is None:
                raise PermanentError(
                    f"Order {shipment.order_external_id} has no line {line.external_line_id}.",
                    code="unknown_line",
                )
            sid = str(member(item, "ItemShipmentID", "0"))
            if sid not in wanted_ids:
                wanted_ids.append(sid)
            try:
                ordered = Decimal(str(member(item, "ItemQuantity", 0)))
            except ArithmeticError:
                ordered = Decimal(0)
            if line.quantity < ordered:
                warnings.append(
                    f"3DCart records shipments per parcel, not per quantity: line {line.external_line_id} "
                    f"ships {line.quantity} of {ordered.normalize()}."
                )
        selected = [s for s in shipments if str(member(s, "ShipmentID")) in wanted_ids]
        if not selected:
            # Lines point at a shipment the order does not list (seen with ShipmentID 0 stores).
            selected = shipments[:1]
        requested = {str(line.external_line_id) for line in shipment.lines}
        for row in selected:
            sid = str(member(row, "ShipmentID"))
            others = [
                str(member(i, "ItemIndexID"))
                for i in items
                if str(member(i, "ItemShipmentID", "0")) == sid
                and str(member(i, "ItemIndexID")) not in requested
            ]
            if others:
                warnings.append(
                    f"3DCart shipment {sid} also holds line(s) {', '.join(others)}; "
                    "its tracking covers them too."
                )
        return selected

    @staticmethod
    def _plan_shipments(
        shipment: ShipmentRequest,
        base: list[Mapping[str, Any]],
        shipments: list[Mapping[str, Any]],
        codes: list[str],
        target_status: str,
    ) -> list[tuple[Mapping[str, Any], list[str]]]:
        """Which shipments to write and which tracking codes each gets; empty when all is there.

        - As many codes as shipments (and more than one): one code per shipment, in order.
        - Otherwise the codes not yet anywhere on the order go on the first shipment written, and
          the other shipments only get the shipped status — a code is never put on the order twice,
          also when a retry finds an earlier attempt half done.
        - A whole-order confirmation leaves shipments already marked shipped (an earlier partial
          shipment) alone; if all are shipped and a code is still missing, the last one gets it.
        """
        everywhere = {
            code for row in shipments for code in split_tracking_codes(member(row, "ShipmentTrackingCode"))
        }
        if shipment.lines:
            candidates = list(base)
        else:
            candidates = [row for row in base if not _is_shipped(row, target_status)]
            if not candidates:
                if set(codes) <= everywhere:
                    return []
                candidates = [base[-1]]
        ids = [str(member(row, "ShipmentID")) for row in base]
        if len(codes) == len(ids) > 1:
            assigned = {sid: [code] for sid, code in zip(ids, codes, strict=True)}
        else:
            missing = [code for code in codes if code not in everywhere]
            assigned = {str(member(candidates[0], "ShipmentID")): missing}
        plan = []
        for row in candidates:
            want = assigned.get(str(member(row, "ShipmentID")), [])
            have = set(split_tracking_codes(member(row, "ShipmentTrackingCode")))
            status = str(member(row, "ShipmentOrderStatus", "")).strip()
            if not set(want) <= have or status != target_status:
                plan.append((row, want))
        return plan

    @staticmethod
    def _require_ok(reply: WriteReply, what: str) -> None:
        failed = [result for result in reply.results if not result.ok]
        if failed:
            raise PermanentError(
                f"3DCart did not update the {what}: {failed[0].message or f'status {failed[0].status}'}",
                code="rejected",
                status_code=reply.status_code,
            )

    # -- listings ----------------------------------------------------------------------------------

    def list_listings(self) -> list[Listing]:
        """Every product (limit 200 a page) and its variants; fails loudly on a short read."""
        expected = self.client.count("Products", {}, what="product count")
        read = 0
        listings: list[Listing] = []
        for _, products in self.client.iterate_pages(
            "Products", {}, limit=self.product_page_size, what="product list"
        ):
            read += len(products)
            for product in products:
                if not isinstance(product, Mapping):
                    raise ProtocolError("3DCart listed a product that is not an object.", code="bad_product")
                if member(product, "AdvancedOptionList") is None:
                    product = {**product, "AdvancedOptionList": self._advanced_options(product)}
                listings.extend(map_listings(product))
        if read < expected:
            raise ProtocolError(
                f"3DCart counted {expected} products but listed only {read}.", code="short_read"
            )
        self._sku_index = {listing.sku: listing for listing in listings}
        return listings

    def _advanced_options(self, product: Mapping[str, Any]) -> list[Any]:
        """Variant rows for a product whose listing did not embed them (a lighter reply shape)."""
        sku_info = member(product, "SKUInfo") or product
        catalog_id = str(member(sku_info, "CatalogID", "")).strip()
        rows: list[Any] = []
        for _, page in self.client.iterate_pages(
            f"Products/{catalog_id}/AdvancedOptions", {}, limit=STATUS_PAGE_SIZE, what="variant list"
        ):
            rows.extend(page)
        return rows

    # -- stock and prices --------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Quantities: parents as ``SKUInfo.Stock`` (a decimal on 3DCart), variants as
        ``AdvancedOptionStock`` (an integer)."""
        return self._push(
            list(updates),
            parent_fields=lambda u: {"Stock": int(u.quantity)},
            variant_fields=lambda u: {"AdvancedOptionStock": int(u.quantity)},
        )

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Prices: ``SKUInfo.Price`` and ``AdvancedOptionPrice`` (sent as an absolute price; whether
        3DCart reads it as a surcharge on some stores is UNCONFIRMED)."""
        return self._push(
            list(updates),
            parent_fields=lambda u: {"Price": json_number(parse_money(u.price))},
            variant_fields=lambda u: {"AdvancedOptionPrice": json_number(parse_money(u.price))},
        )

    def _push(self, updates: list[Any], *, parent_fields: Any, variant_fields: Any) -> list[PushResult]:
        results: list[PushResult | None] = [None] * len(updates)
        resolved: list[Any] = list(updates)
        if any(not str(u.remote_id).strip() for u in updates):
            index = (
                self._sku_index
                if self._sku_index is not None
                else {listing.sku: listing for listing in self.list_listings()}
            )
            for position, update in enumerate(updates):
                if str(update.remote_id).strip():
                    continue
                listing = index.get(update.sku)
                if listing is None:
                    results[position] = PushResult(
                        update.sku,
                        "",
                        False,
                        "This SKU is not on the 3DCart store.",
                        update.remote_variant_id,
                    )
                else:
                    resolved[position] = _with_ids(update, listing)
        parents = [(i, u) for i, u in enumerate(resolved) if results[i] is None and not u.remote_variant_id]
        variants = [(i, u) for i, u in enumerate(resolved) if results[i] is None and u.remote_variant_id]
        for start in range(0, len(parents), PUSH_BATCH_SIZE):
            self._push_parent_batch(parents[start : start + PUSH_BATCH_SIZE], parent_fields, results)
        for position, update in variants:
            results[position] = self._push_variant(update, variant_fields)
        return [result for result in results if result is not None]

    def _push_parent_batch(
        self, batch: list[tuple[int, Any]], make_fields: Any, results: list[PushResult | None]
    ) -> None:
        pending = list(batch)
        for attempt in range(PUSH_RETRIES + 1):
            body = [{"SKUInfo": {"CatalogID": _as_id(u.remote_id), **make_fields(u)}} for _, u in pending]
            try:
                reply = self.client.put("Products", body, what="product update")
            except (TransientError, ProtocolError):
                # Absolute values are safe to send again; only a lost reply gets here.
                if attempt == PUSH_RETRIES:
                    raise
                continue
            except PermanentError as exc:
                for position, update in pending:
                    results[position] = _result(update, False, exc.message)
                return
            matched = _match_results(pending, reply.results)
            retry: list[tuple[int, Any]] = []
            for (position, update), outcome in zip(pending, matched, strict=True):
                if outcome is not None and outcome.ok:
                    results[position] = _result(update, True)
                elif outcome is not None and not outcome.retryable:
                    results[position] = _result(update, False, outcome.message or f"status {outcome.status}")
                else:
                    retry.append((position, update))
                    results[position] = _result(
                        update,
                        False,
                        (outcome.message if outcome else "")
                        or "3DCart did not report a result for this item.",
                    )
            if not retry:
                return
            pending = retry

    def _push_variant(self, update: Any, make_fields: Any) -> PushResult:
        code = str(update.remote_variant_id)
        path = f"Products/{update.remote_id}/AdvancedOptions/{code}"
        last_message = ""
        for attempt in range(PUSH_RETRIES + 1):
            try:
                reply = self.client.put(
                    path, {"AdvancedOptionCode": code, **make_fields(update)}, what="variant update"
                )
            except (TransientError, ProtocolError):
                if attempt == PUSH_RETRIES:
                    raise
                continue
            except PermanentError as exc:
                return _result(update, False, exc.message)
            outcome = reply.results[0] if reply.results else None
            if outcome is not None and outcome.ok:
                return _result(update, True)
            last_message = (outcome.message if outcome else "") or "3DCart did not report a result."
            if outcome is not None and not outcome.retryable:
                break
        return _result(update, False, last_message)


def _carries(row: Mapping[str, Any], reference: str) -> bool:
    """Whether a shipment's internal comment holds Storelink's reference (as a whole word)."""
    comment = str(member(row, "ShipmentInternalComment", "") or "")
    return reference in comment.split()


def _is_shipped(row: Mapping[str, Any], target_status: str) -> bool:
    """A shipment already carrying the processed status (with or without its own tracking code)."""
    return str(member(row, "ShipmentOrderStatus", "")).strip() == target_status


def _as_id(value: Any) -> Any:
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()
    return host.removeprefix("www.")


def _with_ids(update: Any, listing: Listing) -> Any:
    from dataclasses import replace

    return replace(update, remote_id=listing.remote_id, remote_variant_id=listing.remote_variant_id)


def _result(update: Any, ok: bool, error: str = "") -> PushResult:
    return PushResult(
        sku=update.sku,
        remote_id=str(update.remote_id),
        ok=ok,
        error=error,
        remote_variant_id=str(update.remote_variant_id or ""),
    )


def _match_results(
    pending: list[tuple[int, Any]], outcomes: Sequence[WriteResult]
) -> list[WriteResult | None]:
    """Pair each sent item with its result: by position when 3DCart echoes every CatalogID in order,
    otherwise by ``Value`` (a missing item stays ``None`` and is retried)."""
    ids = [str(update.remote_id).strip() for _, update in pending]
    if len(outcomes) == len(pending) and all(
        outcome.value.strip() in ("", ident) for outcome, ident in zip(outcomes, ids, strict=True)
    ):
        return list(outcomes)
    by_value: dict[str, list[WriteResult]] = {}
    for outcome in outcomes:
        by_value.setdefault(outcome.value.strip(), []).append(outcome)
    matched: list[WriteResult | None] = []
    for ident in ids:
        queue = by_value.get(ident)
        matched.append(queue.pop(0) if queue else None)
    return matched
