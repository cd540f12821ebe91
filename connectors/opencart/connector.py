"""The OpenCart connector: OpenCart's own core API where it works, the Storelink store bridge for the rest.

No OpenCart version lets its core API list orders or change stock and prices (its routes serve the
admin's order editor: cart, customer, order, payment and shipping), so orders, listings, stock,
prices, store facts and order history are read and written through the bridge (``storelink-bridge.php``
on the store, client in ``bridge_client.py``). The core API is used for what it does
well: proving the API user works and adding the order-history entry that confirms a shipment — that
path runs OpenCart's own events, so the customer gets OpenCart's own e-mail. Only 3.0.0.0–3.0.2.0,
whose core login is broken, confirm shipments through the bridge.

Why one module of this size: it decides, per OpenCart family, whether the core API or the bridge
answers each operation; the core client, the bridge client, versions and signing are their own
modules already.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import httpx

from connectors.base import (
    Capabilities,
    Connector,
    ConnectorOptions,
    Listing,
    OrderPage,
    PriceUpdate,
    PushResult,
    ShipmentRequest,
    ShipmentResult,
    StockUpdate,
    StoreFacts,
    StoreStatus,
)
from connectors.base import Order as CanonicalOrder
from connectors.errors import (
    AuthError,
    ConnectorError,
    OrderClosedError,
    PermanentError,
    ProtocolError,
    RateLimited,
    TransientError,
)
from connectors.http import StoreHttp
from connectors.opencart import fields
from connectors.opencart.bridge_client import store_zone, version_tuple
from connectors.opencart.client import (
    CoreCheck,
    CoreLoginBroken,
    OpenCartCoreClient,
    comment_mentions,
    shipment_comment,
)
from connectors.opencart.statuses import CLOSED_STATUS_CODES
from connectors.opencart.versions import AUTO, TRAITS, family_for_version, normalise_family

OPEN_API_VERSION = "4.0.0.0"
#: bridge answers to a request it could not verify: the key or user is wrong, or it cannot read them
BRIDGE_REFUSED_UNVERIFIED = ("unauthorized", "bad_signature", "unknown_user", "auth_required")
#: bridge answers given only once the key verified: their cause is the one the bridge names
BRIDGE_VERIFIED_REFUSALS = ("user_disabled", "ip_not_allowed", "clock_skew", "bridge_outdated")


class BridgeInfoLike(Protocol):
    """The fields of ``bridge_client.BridgeInfo`` this connector reads (read-only: it is frozen)."""

    @property
    def bridge_version(self) -> str: ...

    @property
    def opencart_version(self) -> str: ...

    @property
    def schema_family(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def currencies(self) -> Sequence[str]: ...

    @property
    def prices_include_tax(self) -> bool: ...

    @property
    def timezone(self) -> str: ...

    @property
    def languages(self) -> Sequence[Any]: ...

    @property
    def stores(self) -> Sequence[Any]: ...

    @property
    def features(self) -> Sequence[str]: ...


class BridgeApi(Protocol):
    """The store bridge's client as the connector uses it (``connectors/opencart/bridge_client.py``).

    Declared here so the connector depends on the interface, not on the module, and tests can stand
    an in-process fake in for it.
    """

    def info(self) -> BridgeInfoLike: ...

    def statuses(self) -> tuple[StoreStatus, ...]: ...

    def fetch_orders(
        self,
        checkpoint: str | None,
        *,
        lookback_days: int,
        import_statuses: Sequence[str],
        page_size: int = 100,
    ) -> Iterator[OrderPage]: ...

    def orders_changed(self, checkpoint: str, *, import_statuses: Sequence[str]) -> bool | None: ...

    def get_order(self, order_id: str) -> CanonicalOrder | None: ...

    def history(self, order_id: str) -> list[dict[str, Any]]: ...

    def list_listings(self, *, use_options: bool = True) -> list[Listing]: ...

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]: ...

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]: ...

    def order_history(self, order_id: str) -> tuple[str, list[dict[str, Any]]]: ...

    def add_history(self, order_id: str, order_status_id: str, comment: str, notify: bool) -> None: ...


class OpenCartConnector(Connector):
    platform = "opencart"
    label = "OpenCart"
    company = "OpenCart"
    description = "OpenCart 2.1 to 4.1: API user and key, plus the Storelink store bridge file."
    logo = "img/logos/opencart.svg"
    instructions_template = "channels/_instructions_opencart.html"
    store_url_label = fields.STORE_URL_LABEL
    store_url_help = fields.STORE_URL_HELP
    credential_fields = fields.CREDENTIAL_FIELDS
    settings_fields = fields.SETTINGS_FIELDS
    capabilities = Capabilities(
        partial_shipment=False,  # OpenCart has no shipment lines: one history entry per order
        multiple_tracking_numbers=True,  # several numbers fit in one history comment
        variants=True,  # option values (2.x/3.x) and variant products (4.x) through the bridge
        stock_batch_size=100,
        price_batch_size=100,
        # product.price is stored net in every version (the storefront adds the tax class's tax);
        # config_tax only switches the storefront's "display prices with tax".
        tax_inclusive_prices=False,
        order_page_size=100,
        order_probe=True,  # the bridge's orders_changed (1.4.0), answered from its cursor
    )
    #: OpenCart's stock order statuses that end an order (Shipped, Complete, Canceled, Denied, Canceled
    #: Reversal, Failed, Refunded, Reversed, Chargeback, Expired, Voided); used where the store does not
    #: declare its complete/processing statuses (bridge before 1.1.0)
    closed_status_codes = CLOSED_STATUS_CODES

    def __init__(
        self,
        store_url: str,
        credentials: Mapping[str, Any],
        settings: Mapping[str, Any],
        *,
        http: httpx.Client | None = None,
        options: ConnectorOptions | None = None,
        bridge: BridgeApi | None = None,
    ) -> None:
        super().__init__(store_url, credentials, settings, http=http, options=options)
        self.api_username = str(self.credentials.get("api_username") or "Default")
        self.api_key = str(self.credentials.get("api_key") or "")
        self._store_http: StoreHttp | None = None
        self._bridge = bridge
        self._core: OpenCartCoreClient | None = None
        self._info: BridgeInfoLike | None = None
        self._family: str | None = None
        self._core_unusable = False

    # -- plumbing -----------------------------------------------------------------------------------

    @property
    def store_http(self) -> StoreHttp:
        """One StoreHttp (one gate, one connection pool) shared by the core client and the bridge."""
        if self._store_http is None:
            opts = self.options
            self._store_http = StoreHttp(
                self.store_url,
                platform=self.platform,
                client=self.http,
                timeout=opts.timeout,
                max_retries=opts.max_retries,
                backoff=opts.backoff,
                max_in_flight=opts.max_in_flight,
                allow_private_hosts=opts.allow_private_hosts,
                allowed_ports=opts.allowed_ports,
                secrets=self.secret_values(self.credentials),
                gate_url=opts.gate_url,
                gate_lease_seconds=opts.gate_lease_seconds,
                gate_prefix=opts.gate_prefix,
            )
        return self._store_http

    @property
    def bridge(self) -> BridgeApi:
        if self._bridge is None:
            from connectors.opencart.bridge_client import BridgeClient  # built in parallel; lazily

            self._bridge = BridgeClient(self.store_http, self.api_username, self.api_key)
        return self._bridge

    def _bridge_info(self) -> BridgeInfoLike:
        if self._info is None:
            self._info = self.bridge.info()
        return self._info

    def family(self) -> str:
        """The core-API family: the seller's choice, else the bridge's reported version, else probing."""
        if self._family is None:
            chosen = normalise_family(str(self.settings.get("version_family") or AUTO))
            if chosen == AUTO:
                try:
                    chosen = family_for_version(self._bridge_info().opencart_version)
                except (ConnectorError, ValueError):
                    chosen = AUTO  # the core client probes the store (connectors/opencart/versions.py)
            self._family = chosen
        return self._family

    @property
    def core(self) -> OpenCartCoreClient:
        if self._core is None:
            info = self._info
            self._core = OpenCartCoreClient(
                self.store_http,
                self.family(),
                self.api_username,
                self.api_key,
                version=info.opencart_version if info else "",
                language=_api_language(info),
                currency=str(self.settings.get("currency") or (info.currency if info else "") or "USD"),
            )
        return self._core

    def close(self) -> None:
        closer = getattr(self._bridge, "close", None)
        if callable(closer):
            closer()
        if self._store_http is not None:
            self._store_http.close()

    # -- test connection ----------------------------------------------------------------------------

    def test_connection(self) -> StoreFacts:
        """Check both halves — the core API user and the bridge file — and say which one is missing.

        Neither check writes: the bridge only reads, and the core check adds history to order 0,
        which every OpenCart answers with "order not found" once the login, the token and the IP
        allow-list all passed.
        """
        info: BridgeInfoLike | None = None
        statuses: tuple[StoreStatus, ...] = ()
        bridge_error: ConnectorError | None = None
        try:
            info = self._bridge_info()
            statuses = tuple(self.bridge.statuses())
        except ConnectorError as exc:
            bridge_error = exc

        core_check: CoreCheck | None = None
        core_error: ConnectorError | None = None
        try:
            core_check = self.core.check_connection()
        except CoreLoginBroken as exc:
            core_error = exc
            self._core_unusable = True
        except ConnectorError as exc:
            core_error = exc

        if core_error is not None and not isinstance(core_error, CoreLoginBroken):
            mismatch = self._family_mismatch(info)
            if mismatch:
                core_error = _restate(core_error, f"{core_error.message} {mismatch}")
            raise self._diagnose(core_error, bridge_error)
        if bridge_error is not None:
            if core_check:
                works = "OpenCart's API login works, but the store bridge"
            elif isinstance(core_error, CoreLoginBroken):
                works = (
                    "OpenCart 3.0.0.0–3.0.2.0 cannot use its own API, so everything goes through the "
                    "store bridge, and the store bridge"
                )
            else:
                works = "The store bridge"
            raise _restate(bridge_error, f"{works}: {bridge_error.message}")
        assert info is not None
        return self._facts(info, statuses, core_check, core_error)

    def _diagnose(self, core: ConnectorError, bridge: ConnectorError | None) -> ConnectorError:
        """One error naming the real cause when OpenCart's own API failed, read together with what the
        bridge answered (each half sees a different part of the truth).

        The bridge answers only a request whose signature it verified with anything but its uniform
        401, so a bridge 401 means the key (or user) is wrong, or the bridge cannot read the store's
        API users; the core login, on the other hand, names a refused IP itself. A bridge that
        answered at all proves the store is up, and a missing bridge file (404) is the cause whatever
        OpenCart's API said after login.
        """
        user = self.api_username
        if bridge is None:
            if core.code in ("permission_denied", "session_rejected"):
                # The bridge just checked the same API user's status and IP list and let us in.
                return _restate(
                    core,
                    "OpenCart's API: OpenCart logged Storelink in and then refused its order-history "
                    "call. The store bridge works with the same API user, so Storelink's IP address is "
                    "allowed and the user is enabled: those are not the cause. OpenCart 2.2–2.3 keep "
                    "the API session in PHP's own session; ask your host to check that PHP can save "
                    "sessions on the store server.",
                )
            return _restate(core, f"OpenCart's API: {core.message}")
        core_said_specific = core.code in ("ip_not_allowed", "bad_key", "clock_skew")
        if isinstance(core, TransientError) and isinstance(bridge, TransientError):
            return _restate(
                core,
                f"The store does not answer: {core.message} Check that the store is online and that its "
                "address is right; Storelink keeps trying.",
            )
        if bridge.code == "bridge_missing":
            extra = f" OpenCart's API: {core.message}" if core_said_specific else ""
            return _restate(bridge, f"The store bridge: {bridge.message}{extra}")
        if _same_problem(core, bridge):
            return _restate(core, f"OpenCart's API: {core.message}")
        if bridge.code in BRIDGE_REFUSED_UNVERIFIED:
            if core.code == "ip_not_allowed":
                return _restate(core, f"OpenCart's API: {core.message}")
            if core.code == "bad_key":
                return AuthError(
                    f"The API key was refused by both OpenCart's API and the store bridge: copy the key "
                    f"of the API user '{user}' again from System > Users > API and reauthorise. If it is "
                    "right, check that this user's status is Enabled.",
                    code="bad_key",
                    raw=core.raw,
                    status_code=core.status_code,
                )
            if core.code == "signature_rejected":
                # 4.1 answers every refusal with the same 403, and the bridge could not verify either.
                return AuthError(
                    "The store refused Storelink's signed requests (OpenCart's API and the store bridge "
                    f"alike): check the key of the API user '{user}' first (copy it again from System > "
                    "Users > API and reauthorise), then that the user is Enabled and that Storelink's IP "
                    "address is on its IP addresses tab.",
                    code="bad_key",
                    raw=core.raw,
                    status_code=core.status_code,
                )
            if core.code in ("permission_denied", "session_rejected"):
                return _restate(bridge, f"OpenCart's API login works, but the store bridge: {bridge.message}")
            if isinstance(core, (TransientError, ProtocolError)):
                # The bridge answered, so the store is up; OpenCart's own login gave nothing readable
                # (3.0.0–3.0.2 with display_errors off answer an empty 500).
                return _restate(
                    bridge,
                    "OpenCart's own API login did not give a readable answer (OpenCart 3.0.0–3.0.2 "
                    f"cannot use their API), so only the store bridge could be checked: {bridge.message}",
                )
        if bridge.code in BRIDGE_VERIFIED_REFUSALS or not core_said_specific:
            return _restate(bridge, f"The store bridge: {bridge.message}")
        return _restate(core, f"OpenCart's API: {core.message} The store bridge: {bridge.message}")

    def _facts(
        self,
        info: BridgeInfoLike,
        statuses: tuple[StoreStatus, ...],
        core_check: CoreCheck | None,
        core_error: ConnectorError | None,
    ) -> StoreFacts:
        warnings: list[str] = list(core_check.warnings if core_check else ())
        if isinstance(core_error, CoreLoginBroken):
            warnings.append(
                "OpenCart 3.0.0.0–3.0.2.0 cannot log in to its own API (a known OpenCart bug), so "
                "Storelink confirms shipments through the store bridge. Upgrading to 3.0.3 or later "
                "restores OpenCart's own order-update e-mails through the API."
            )
        if info.opencart_version == OPEN_API_VERSION and not any("4.0.0.0" in w for w in warnings):
            warnings.append(
                "This store runs OpenCart 4.0.0.0, whose API accepts calls without logging in: anyone "
                "can change your orders through it. Upgrade to OpenCart 4.0.2.x or later."
            )
        mismatch = self._family_mismatch(info)
        if mismatch:
            warnings.append(mismatch)
        if "orders_match_ever" not in tuple(info.features or ()):
            warnings.append(
                f"The bridge file on your store is version {info.bridge_version or 'unknown'}: it sends only "
                "orders that are in an imported status right now, so an order cancelled, shipped or "
                "refunded on the store after Storelink downloaded it keeps its old status here. Download "
                "storelink-bridge.php from Storelink again and replace the file on your store."
            )
        zone_name = info.timezone or "UTC"
        zones = _zone_warning(info)
        if zones:
            warnings.append(zones)
        summer = _summer_time_warning(info)
        if summer:
            warnings.append(summer)
        if store_zone(zone_name) is None:
            # Dates are still read (as UTC) so orders keep flowing, but the seller must know they may
            # be off by the store's UTC offset until the zone is fixed.
            warnings.append(
                f"The store reports the time zone '{zone_name}', which Storelink does not recognise, so "
                "order dates are read as UTC and may be off by the store's offset from UTC. Set a "
                "valid time zone (e.g. Europe/Berlin) in the store's settings, or PHP's date.timezone on "
                "OpenCart versions before 3.0.3."
            )
        reported = _family_of(info)
        chosen = normalise_family(str(self.settings.get("version_family") or AUTO))
        family = self._core.family if self._core else (reported or chosen)
        details: dict[str, Any] = {
            "opencart_version": info.opencart_version,
            "family": family,
            "bridge_version": info.bridge_version,
            "schema_family": info.schema_family,
            "languages": list(info.languages),
            "stores": list(info.stores),
            "core_api": "ok" if core_check else "unavailable: shipments are confirmed through the bridge",
        }
        if core_check and core_check.evidence:
            details["detected_by"] = core_check.evidence
        if getattr(info, "database_utc_offset", None) is not None:
            details["php_timezone"] = getattr(info, "php_timezone", "")
            details["database_utc_offset"] = info.database_utc_offset  # type: ignore[attr-defined]
        return StoreFacts(
            platform_version=f"OpenCart {info.opencart_version}",
            base_currency=info.currency,
            timezone=info.timezone or "UTC",
            prices_include_tax=bool(info.prices_include_tax),
            order_statuses=statuses,
            currencies=tuple(info.currencies),
            can_read=True,
            can_write=True,
            warnings=tuple(warnings),
            details=details,
        )

    def _family_mismatch(self, info: BridgeInfoLike | None) -> str:
        """A sentence for the seller when the version setting contradicts what the store reports."""
        chosen = normalise_family(str(self.settings.get("version_family") or AUTO))
        reported = _family_of(info)
        if not reported or chosen in (AUTO, reported):
            return ""
        return (
            f"The channel is set to {TRAITS[chosen].label}, but the store reports OpenCart "
            f"{info.opencart_version if info else ''} ({TRAITS[reported].label}). Choose 'Detect "
            "automatically' or the store's version in the channel settings."
        )

    # -- orders ------------------------------------------------------------------------------------

    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        """Pages from the bridge, which reads OpenCart's order tables (the core API cannot list orders)."""
        yield from self.bridge.fetch_orders(
            checkpoint,
            lookback_days=int(self.settings.get("order_lookback_days") or 7),
            import_statuses=[str(code) for code in (self.settings.get("import_statuses") or [])],
            page_size=self.capabilities.order_page_size,
        )

    def orders_changed_since(self, checkpoint: str) -> bool | None:
        """The bridge's ``orders_changed`` from the checkpoint's cursor: one small reply, no rows.

        ``None`` (download as before) when the checkpoint comes from a bridge before 1.4.0, which
        does not know the action; the next download from a newer file enables it.
        """
        probe = getattr(self.bridge, "orders_changed", None)
        if probe is None:
            return None
        changed: bool | None = probe(
            checkpoint, import_statuses=[str(code) for code in (self.settings.get("import_statuses") or [])]
        )
        return changed

    # -- shipments ---------------------------------------------------------------------------------

    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        """Add one history entry (carrier, tracking numbers, Storelink's reference), at most once.

        OpenCart history rows carry a status for the whole order, so only the shipment that completes
        the order sets the processed status; a partial one keeps the order's current status (or the
        seller's "partially shipped" status), because a Shipped order stops reserving its unshipped
        units. The order's history is read first: a row holding this shipment's reference, or (for
        writes without one) the same status and tracking number compared after undoing OpenCart's
        HTML escaping, means an earlier attempt landed although its reply was lost — nothing is
        written again, so the customer is not e-mailed twice.
        """
        order_id = str(shipment.order_external_id).strip()
        if not order_id.isdigit():
            raise PermanentError(f"'{order_id}' is not an OpenCart order id.", code="order_not_found")
        processed = str(shipment.processed_status or self.settings.get("processed_status") or "").strip()
        if not processed:
            raise PermanentError(
                "No processed order status is set for this channel: choose one in its settings.",
                code="no_processed_status",
            )
        numbers = list(dict.fromkeys(n.strip() for n in shipment.tracking_numbers if n and n.strip()))
        current, history = self.bridge.order_history(order_id)
        status = processed
        warnings: list[str] = []
        if shipment.is_partial:
            status = str(shipment.partial_status or "").strip() or current
            if not status:
                raise ProtocolError(
                    f"The store bridge did not say which status order {order_id} is in, so a partial "
                    "shipment cannot keep it.",
                    code="bad_data",
                )
        reference = str(shipment.reference or "").strip()
        if reference and any(_mentions_reference(_comment(row), reference) for row in history):
            return ShipmentResult(
                store_reference=f"order {order_id}",
                tracking_sent=tuple(numbers),
                warnings=("Already confirmed on the store; nothing was sent again.",),
            )
        rows = [row for row in history if _same_status(row, status)]
        if numbers:
            missing = [n for n in numbers if not any(comment_mentions(_comment(row), n) for row in rows)]
        else:
            # Without a reference, a row in the same status is taken as the earlier write; a partial
            # shipment keeps a status the order already had, so only its reference can tell.
            missing = [] if rows and not reference and not shipment.is_partial else ["(no tracking number)"]
        if not missing:
            return ShipmentResult(
                store_reference=f"order {order_id}",
                tracking_sent=tuple(numbers),
                warnings=("Already confirmed on the store; nothing was sent again.",),
            )
        self._refuse_closed(order_id)
        if shipment.is_partial:
            warnings.append(
                "Only part of the order was shipped: the tracking was added to the order's history and "
                "the order was not set to the processed status, so its other items stay open."
            )
        to_send = [n for n in missing if n in numbers]
        comment = shipment_comment(
            to_send, shipment.carrier, shipment.service, partial=shipment.is_partial, reference=reference
        )
        self._add_history(order_id, status, comment, shipment.notify_customer)
        return ShipmentResult(
            store_reference=f"order {order_id}", tracking_sent=tuple(to_send), warnings=tuple(warnings)
        )

    def _refuse_closed(self, order_id: str) -> None:
        """Raise :class:`OrderClosedError` when the store has closed the order since it was downloaded.

        The verdict is the one downloads give (the store's complete and processing statuses, then
        the status's id or name), read from the order as it is now; that order goes with the error
        so Storelink's copy is brought up to date. Called only once the history shows no earlier
        write of this shipment: Storelink's own write may itself have set a closing status.
        """
        fresh = self.bridge.get_order(order_id)
        if fresh is None or not fresh.closed:
            return
        name = fresh.status_name or "a status"
        raise OrderClosedError(
            f"OpenCart shows order {order_id} as {name} (status {fresh.status_code}), which this store "
            "treats as closed, so the shipment was not sent; nothing was changed on the store.",
            code="order_closed",
            order=fresh,
        )

    def _add_history(self, order_id: str, status: str, comment: str, notify: bool) -> None:
        if not self._core_unusable and self.family() != "3.0.0":
            try:
                self.core.add_history(order_id, status, comment, notify=notify)
                return
            except CoreLoginBroken:
                self._core_unusable = True
        self.bridge.add_history(order_id, status, comment, notify)

    # -- listings, stock, prices -------------------------------------------------------------------

    def list_listings(self) -> list[Listing]:
        return list(self.bridge.list_listings(use_options=bool(self.settings.get("use_options", True))))

    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        return _in_batches(updates, self.capabilities.stock_batch_size, self.bridge.push_stock, "stock")

    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        return _in_batches(updates, self.capabilities.price_batch_size, self.bridge.push_prices, "price")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _api_language(info: BridgeInfoLike | None) -> str:
    """``en-gb`` ships with every OpenCart; a store that removed it gets its first installed language
    (4.0 and 4.1 load the request's language, and 4.1 signs it)."""
    languages = [str(code) for code in (info.languages if info else ()) if code]
    if not languages or "en-gb" in languages:
        return "en-gb"
    return languages[0]


def _utc_offset_words(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "−"
    minutes = abs(seconds) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _zone_warning(info: BridgeInfoLike) -> str:
    """A sentence when MySQL's clock zone and the store's zone differ where it changes order dates.

    OpenCart 2.1–2.3 write order dates with MySQL's NOW() and never align MySQL with PHP, so a
    database on another zone puts the store's own admin off by the difference (bridge 1.3.0 reads the
    dates in MySQL's zone, so Storelink's are right); 3.0 and 4.x align MySQL with PHP on every page.
    """
    if info.schema_family != "2.x":
        return ""
    offset = getattr(info, "database_utc_offset", None)
    if offset is None:
        return (
            f"The bridge file on your store is version {info.bridge_version or 'unknown'}: on OpenCart "
            "2.x it reads order dates in PHP's time zone, but OpenCart 2.x writes them in MySQL's, so "
            "dates can be hours off and new orders missed when the two differ. Download "
            "storelink-bridge.php from Storelink again and replace the file on your store."
        )
    zone = store_zone(info.timezone or "UTC")
    if zone is None:
        return ""
    store_offset = int(datetime.now(zone).utcoffset().total_seconds())  # type: ignore[union-attr]
    if store_offset == offset:
        return ""
    hours = abs(store_offset - offset) / 3600
    php = getattr(info, "php_timezone", "") or info.timezone
    return (
        f"The store's database (MySQL) keeps time at {_utc_offset_words(offset)}, but PHP runs in "
        f"{php} ({_utc_offset_words(store_offset)}). OpenCart 2.x writes order dates in MySQL's time, "
        f"so the store's own admin shows them {hours:g} hours off; Storelink reads them in MySQL's time "
        "and shows them correctly. To make the store agree, set MySQL's time zone or PHP's "
        "date.timezone so both are the same (ask your host)."
    )


#: The first bridge that converts 2.x dates at each date's own offset when MySQL keeps the host's zone.
SUMMER_TIME_BRIDGE = "1.3.1"


def _summer_time_warning(info: BridgeInfoLike) -> str:
    """A sentence when an older bridge reads a 2.x store whose MySQL keeps the host's own zone.

    Bridge 1.3.0 converted every date at MySQL's offset of the moment it was asked; a host zone
    with summer time then puts orders from the other half of the year an hour off. A host on UTC
    has no summer time, so a zero offset is left alone.
    """
    if info.schema_family != "2.x" or getattr(info, "database_utc_offset", None) in (None, 0):
        return ""
    if getattr(info, "database_time_zone", "") != "SYSTEM":
        return ""
    if version_tuple(info.bridge_version) >= version_tuple(SUMMER_TIME_BRIDGE):
        return ""
    return (
        f"The bridge file on your store is version {info.bridge_version or 'unknown'}: MySQL keeps the "
        "server's own time zone here, and where that zone has summer time this file reads orders from "
        "the other half of the year an hour off. Download storelink-bridge.php from Storelink again "
        "and replace the file on your store."
    )


def _family_of(info: BridgeInfoLike | None) -> str:
    if info is None:
        return ""
    try:
        return family_for_version(info.opencart_version)
    except ValueError:
        return ""


def _in_batches(updates: Sequence[Any], size: int, push: Any, what: str) -> list[PushResult]:
    results: list[PushResult] = []
    for start in range(0, len(updates), size):
        batch = list(updates[start : start + size])
        answered = list(push(batch))
        if len(answered) != len(batch):
            raise ProtocolError(
                f"The store bridge answered {len(answered)} results for {len(batch)} {what} updates.",
                code="short_batch",
            )
        results.extend(answered)
    return results


def _comment(row: Mapping[str, Any]) -> str:
    return html.unescape(str(row.get("comment") or ""))


def _mentions_reference(comment: str, reference: str) -> bool:
    """Does a stored comment carry this Storelink shipment reference (as a whole word)?"""
    return bool(re.search(rf"(?<![A-Za-z0-9-]){re.escape(reference)}(?![A-Za-z0-9])", comment))


def _same_status(row: Mapping[str, Any], status: str) -> bool:
    value = str(row.get("order_status_id", "")).strip()
    try:
        return int(value) == int(status)
    except ValueError:
        return value == status


def _same_problem(first: ConnectorError, second: ConnectorError) -> bool:
    return type(first) is type(second) and first.code == second.code


def _restate(error: ConnectorError, message: str) -> ConnectorError:
    """The same kind of error (so workers react the same way) with a message naming the failing part."""
    common = {"code": error.code, "raw": error.raw, "status_code": error.status_code}
    if isinstance(error, RateLimited):
        return RateLimited(message, retry_after=error.retry_after, **common)
    return type(error)(message, **common)  # type: ignore[arg-type]
