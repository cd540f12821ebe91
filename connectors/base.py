"""The connector contract: canonical types, field declarations and the base class.

Canonical types are frozen dataclasses so a page of orders can be handed between threads, cached and
compared without anyone mutating it half-way. Money is always :class:`~decimal.Decimal` with the
currency next to it; datetimes are always aware and in UTC (stores lie about their clocks and time
zones, so the conversion happens once, in the connector that knows the store).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal

import httpx

from connectors.errors import FieldError
from connectors.http import DEFAULT_STORE_PORTS

# --------------------------------------------------------------------------------------------------
# Field declarations: the one place the wizard, the admin and the API learn what a platform needs.
# --------------------------------------------------------------------------------------------------

#: What an HTTP header value may carry: printable ASCII (space to tilde).
PRINTABLE_ASCII_PATTERN = "[ -~]*"
PRINTABLE_ASCII_RE = re.compile(PRINTABLE_ASCII_PATTERN)

FieldKind = Literal["text", "secret", "bool", "int", "choice", "multichoice", "url"]


@dataclass(frozen=True)
class FieldSpec:
    """One credential or setting a platform needs, in the words a seller knows from the platform's own admin.

    ``choices_from`` names a list in :class:`StoreFacts` (``"order_statuses"`` or ``"currencies"``):
    the wizard fills the choices from what the store reported during "test connection", so the seller
    picks among the store's own statuses instead of typing ids. ``choices_group`` narrows
    ``order_statuses`` to one :attr:`StoreStatus.group` (X-Cart's payment and shipping lists reuse
    letters, so a field of one list must never offer the other's). ``printable_ascii`` is for values
    sent in an HTTP header (a token, an API key): a header carries only printable ASCII, so anything
    else is refused here rather than failing on every request to the store.
    """

    name: str
    label: str
    kind: FieldKind = "text"
    help_text: str = ""
    required: bool = True
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()
    choices_from: Literal["order_statuses", "currencies", ""] = ""
    choices_group: str = ""
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = 255
    pattern: str = ""
    printable_ascii: bool = False

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def clean(self, value: Any) -> Any:
        """Validate and normalise one value; raise :class:`FieldError` with a seller-facing message."""
        if value is None or value == "" or value == []:
            if self.required and self.default is None and self.kind not in ("bool", "multichoice"):
                raise FieldError(self.name, f"{self.label} is required.")
            value = self.default
            if value is None:
                return (
                    [] if self.kind == "multichoice" else ("" if self.kind in ("text", "secret") else value)
                )
        if self.kind == "bool":
            return _parse_bool(self.name, value)
        if self.kind == "int":
            try:
                number = int(str(value).strip())
            except ValueError:
                raise FieldError(self.name, f"{self.label} must be a whole number.") from None
            if self.min_value is not None and number < self.min_value:
                raise FieldError(self.name, f"{self.label} must be at least {self.min_value}.")
            if self.max_value is not None and number > self.max_value:
                raise FieldError(self.name, f"{self.label} must be at most {self.max_value}.")
            return number
        if self.kind == "multichoice":
            # JSON from the API can carry anything: only a string or a list of scalars is a choice list.
            if isinstance(value, str):
                items = [value]
            elif isinstance(value, list | tuple) and all(isinstance(item, str | int) for item in value):
                items = list(value)
            else:
                raise FieldError(self.name, f"{self.label} must be a list of choices.")
            # a choice ticked twice (two widgets with one value) is one choice
            cleaned = list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
            if self.choices:
                allowed = {key for key, _ in self.choices}
                unknown = [item for item in cleaned if item not in allowed]
                if unknown:
                    raise FieldError(self.name, f"Unknown choice(s) for {self.label}: {', '.join(unknown)}.")
            return cleaned
        if isinstance(value, dict | list | tuple):
            raise FieldError(self.name, f"{self.label} must be a single value.")
        text = str(value).strip()
        if len(text) > self.max_length:
            raise FieldError(self.name, f"{self.label} must be at most {self.max_length} characters.")
        if self.kind == "choice" and self.choices and text not in {key for key, _ in self.choices}:
            raise FieldError(self.name, f"'{text}' is not a valid choice for {self.label}.")
        if self.pattern and not re.fullmatch(self.pattern, text):
            raise FieldError(self.name, f"{self.label} has an invalid format.")
        if any(ch in text for ch in "\r\n\x00"):
            raise FieldError(self.name, f"{self.label} must be a single line.")
        if self.printable_ascii and not PRINTABLE_ASCII_RE.fullmatch(text):
            raise FieldError(self.name, f"{self.label} must contain only printable ASCII characters.")
        return text


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise FieldError(name, "must be yes or no.")


def clean_fields(specs: Sequence[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole dict against its specs; collect every field's error before raising."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            cleaned[spec.name] = spec.clean(values.get(spec.name))
        except FieldError as exc:
            errors[spec.name] = exc.message
    if errors:
        raise FieldErrors(errors)
    return cleaned


class FieldErrors(ValueError):
    """Several fields failed at once; ``errors`` maps field name to message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


# --------------------------------------------------------------------------------------------------
# Canonical types
# --------------------------------------------------------------------------------------------------


#: ISO 4217 minor units of the currencies that do not have two decimals (everything else has 2).
#: HUF is 2 in ISO 4217 even though cash rounds to forints.
ISO_MINOR_UNITS: Mapping[str, int] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV"), 0
    ),
    **dict.fromkeys(("XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
DEFAULT_MINOR_UNITS = 2


def currency_places(currency: str) -> int:
    """How many decimals an amount in ``currency`` has (ISO 4217; unknown codes: 2)."""
    return ISO_MINOR_UNITS.get((currency or "").strip().upper(), DEFAULT_MINOR_UNITS)


def to_decimal(value: Any, places: int = 2) -> Decimal:
    """Money from whatever the store sent (``"105.0000"``, ``34.989999999999995``, ``12``).

    ``str()`` first so float noise is read as the store printed it, then rounded half-up to the
    currency's precision — the same rule the stores use when they print totals.
    """
    from decimal import ROUND_HALF_UP

    if value is None or value == "":
        return Decimal("0").quantize(Decimal(1).scaleb(-places))
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Address:
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country_code: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class OrderLine:
    external_line_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    tax: Decimal = Decimal("0.00")
    options: tuple[tuple[str, str], ...] = ()
    remote_product_id: str = ""
    remote_variant_id: str = ""


@dataclass(frozen=True)
class Order:
    """An order as every platform's mapping produces it.

    ``external_id`` is the store's own id (the one writes use); ``number`` is what the seller and the
    customer see. ``updated_at`` drives checkpoints; ``raw`` keeps the store's payload for replay.
    """

    external_id: str
    number: str
    placed_at: datetime
    updated_at: datetime
    status_code: str
    status_name: str
    currency: str
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    discount: Decimal
    total: Decimal
    lines: tuple[OrderLine, ...]
    prices_include_tax: bool = False
    customer_email: str = ""
    customer_name: str = ""
    billing_address: Address = field(default_factory=Address)
    shipping_address: Address = field(default_factory=Address)
    shipping_method: str = ""
    #: The store says this order is finished (cancelled, refunded, voided, declined, failed, shipped or
    #: complete), judged from the store's own status list where the platform has one (X-Cart: payment
    #: *and* shipping status). A closed order reserves no stock and is never shipped.
    closed: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("placed_at", "updated_at"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise ValueError(f"Order.{name} must be an aware UTC datetime, got {value!r}")

    @property
    def computed_total(self) -> Decimal:
        """Lines + shipping + tax − discount, to compare with what the store says the total is."""
        lines = sum((line.line_total for line in self.lines), Decimal("0"))
        tax = Decimal("0") if self.prices_include_tax else self.tax
        return lines + self.shipping + tax - self.discount


@dataclass(frozen=True)
class OrderPage:
    """One page of orders and the checkpoint to store once the page is safely saved.

    The checkpoint is opaque to everyone but the connector that made it (a JSON string): workers
    persist it after the page's orders are committed, so a crash mid-sync repeats at most one page.
    """

    orders: tuple[Order, ...]
    checkpoint: str


@dataclass(frozen=True)
class StoreStatus:
    """One entry of the store's own status list.

    ``group`` names the list on platforms with more than one (X-Cart: ``"payment"`` and
    ``"shipping"``, whose letter codes overlap); ``closes_order`` says an order in this status is
    finished and holds no stock (read from the store where it says so, else the connector's
    declaration).
    """

    code: str
    name: str
    closes_order: bool = False
    group: str = ""


@dataclass(frozen=True)
class StoreFacts:
    """What "test connection" learnt about a store, shown in the settings step of the wizard."""

    platform_version: str
    base_currency: str
    timezone: str = "UTC"
    prices_include_tax: bool | None = None
    order_statuses: tuple[StoreStatus, ...] = ()
    currencies: tuple[str, ...] = ()
    can_read: bool = True
    can_write: bool = True
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Listing:
    """A sellable thing on a store: a product, or one variant/option value of it."""

    sku: str
    remote_id: str
    quantity: int
    price: Decimal
    name: str = ""
    remote_variant_id: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class StockUpdate:
    sku: str
    remote_id: str
    quantity: int
    remote_variant_id: str = ""


@dataclass(frozen=True)
class PriceUpdate:
    sku: str
    remote_id: str
    price: Decimal
    remote_variant_id: str = ""


@dataclass(frozen=True)
class PushResult:
    sku: str
    remote_id: str
    ok: bool
    error: str = ""
    remote_variant_id: str = ""


@dataclass(frozen=True)
class ShipmentLine:
    external_line_id: str
    quantity: int


@dataclass(frozen=True)
class ShipmentRequest:
    """What the seller (or a warehouse) shipped, to be confirmed on the store.

    ``lines`` empty means "the whole order". ``processed_status`` is a store status code the seller
    mapped to "shipped" in the channel settings; connectors never invent one.
    """

    order_external_id: str
    tracking_numbers: tuple[str, ...]
    carrier: str = ""
    service: str = ""
    lines: tuple[ShipmentLine, ...] = ()
    shipped_at: datetime | None = None
    processed_status: str = ""
    notify_customer: bool = True
    #: Some lines stay unshipped: the connector adds tracking/history but must not move the order to
    #: ``processed_status`` (the store would then call the whole order shipped). ``partial_status``
    #: is the seller's optional "partially shipped" status for that case ("" = leave the status).
    is_partial: bool = False
    partial_status: str = ""
    #: Storelink's own name for this shipment ("SL-" and a short id), written into the store next to
    #: the tracking (history comment, tracking note, shipment field). A retry after a lost reply looks
    #: for it to recognise its own earlier write instead of writing again. "" = none (older callers).
    reference: str = ""


@dataclass(frozen=True)
class ShipmentResult:
    store_reference: str = ""
    tracking_sent: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    partial_shipment: bool = False
    multiple_tracking_numbers: bool = False
    variants: bool = False
    stock_batch_size: int = 50
    price_batch_size: int = 50
    #: What the store's own price field holds: True = the price with tax (gross), False = net (the
    #: store adds its tax on top). A price push converts the product master's prices to this basis;
    #: never derive it from a storefront display setting.
    tax_inclusive_prices: bool = False
    order_page_size: int = 50
    #: The store can answer "anything new since this checkpoint?" without sending order rows
    #: (:meth:`Connector.orders_changed_since`), so order polls can be frequent and still cheap.
    order_probe: bool = False


@dataclass(frozen=True)
class ConnectorOptions:
    """Deployment-level knobs, the same for every channel of a platform.

    ``app_keys`` carries operator secrets that belong to Storelink's app rather than to a seller
    (the 3DCart app's public/private key). ``api_base`` overrides a platform's fixed API host
    (3DCart's ``apirest.3dcart.com``) so the sandbox can stand in for it. ``allowed_ports`` are the
    ports a public store may be reached on (any port when private hosts are allowed). ``gate_*`` say
    where the per-store caps live (see :mod:`connectors.gates`).
    """

    allow_private_hosts: bool = False
    allowed_ports: tuple[int, ...] = DEFAULT_STORE_PORTS
    timeout: float = 20.0
    max_retries: int = 3
    backoff: float = 0.5
    max_in_flight: int = 4
    #: Redis holding every store's gate, so the cap and ``Retry-After`` hold across worker processes;
    #: empty: each process has its own gate.
    gate_url: str = ""
    gate_lease_seconds: float = 15.0
    gate_prefix: str = "storelink:store-gate:"
    app_keys: Mapping[str, str] = field(default_factory=dict)
    api_base: str = ""


# --------------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------------


class Connector(abc.ABC):
    """One connected store. Built per job from stored credentials and settings; cheap to create."""

    platform: ClassVar[str]
    label: ClassVar[str]
    company: ClassVar[str]
    store_url_label: ClassVar[str] = "Store URL"
    store_url_help: ClassVar[str] = ""
    credential_fields: ClassVar[tuple[FieldSpec, ...]]
    settings_fields: ClassVar[tuple[FieldSpec, ...]]
    capabilities: ClassVar[Capabilities]
    #: Store status codes that close an order on this platform when the store's own list does not say
    #: (see :attr:`StoreStatus.closes_order` and :attr:`Order.closed`).
    closed_status_codes: ClassVar[frozenset[str]] = frozenset()

    # What the rest of the product shows and does for this platform. The UI, admin, API, sync
    # engine and demo read these, so a new platform is one package and one registry entry.

    #: One sentence in the platform chooser: which versions, and what the seller needs ready.
    description: ClassVar[str] = ""
    #: A static file path (``img/logos/<platform>.svg``); empty: the chooser shows the label alone.
    logo: ClassVar[str] = ""
    #: A template with the connection steps (it may use the store's facts, our IPs, app keys);
    #: empty: :attr:`instructions` are shown as a numbered list.
    instructions_template: ClassVar[str] = ""
    instructions: ClassVar[tuple[str, ...]] = ()
    #: The credential the store hands over later by a callback (3DCart's access token), so a channel
    #: may be saved before it is known; empty when the seller types every credential.
    callback_credential: ClassVar[str] = ""
    #: Operator secrets of Storelink's own app on this platform: ``{app key name: Django setting}``.
    app_key_settings: ClassVar[Mapping[str, str]] = {}
    #: The app key that may be shown to sellers (a public key they paste into the store), or "".
    public_app_key: ClassVar[str] = ""
    #: The Django setting that replaces the platform's fixed API host (a sandbox), or "".
    api_base_setting: ClassVar[str] = ""

    @classmethod
    def awaits_callback(cls, credentials: Mapping[str, Any]) -> bool:
        """True when the channel is waiting for the store to hand over :attr:`callback_credential`."""
        return bool(cls.callback_credential) and not credentials.get(cls.callback_credential)

    def __init__(
        self,
        store_url: str,
        credentials: Mapping[str, Any],
        settings: Mapping[str, Any],
        *,
        http: httpx.Client | None = None,
        options: ConnectorOptions | None = None,
    ) -> None:
        self.store_url = store_url.rstrip("/")
        self.credentials = dict(credentials)
        self.settings = {spec.name: spec.default for spec in self.settings_fields} | dict(settings)
        self.http = http
        self.options = options or ConnectorOptions()

    @classmethod
    def secret_values(cls, credentials: Mapping[str, Any]) -> list[str]:
        """Every secret string in these credentials, for masking in logs and stored raw replies."""
        secret_names = {spec.name for spec in cls.credential_fields if spec.secret}
        return [str(v) for k, v in credentials.items() if k in secret_names and v]

    @abc.abstractmethod
    def test_connection(self) -> StoreFacts:
        """Check credentials and read store facts, with no side effect on the store."""

    @abc.abstractmethod
    def fetch_orders(self, checkpoint: str | None) -> Iterator[OrderPage]:
        """Yield every order changed since ``checkpoint`` (``None``: the configured look-back)."""

    def orders_changed_since(self, checkpoint: str) -> bool | None:
        """Whether the store has orders placed or changed since ``checkpoint``, asked cheaply (a
        count, or the bridge's cursor check: no order rows); ``None`` when this store cannot tell.

        ``False``: nothing the store's count or cursor can see is new (the order job still runs a
        full download once per order interval, for what a count cannot see); ``True`` may be a
        false alarm (the download then finds nothing). Connectors that can answer declare
        :attr:`Capabilities.order_probe`; the default cannot tell, so every poll downloads.
        """
        return None

    @abc.abstractmethod
    def confirm_shipment(self, shipment: ShipmentRequest) -> ShipmentResult:
        """Send tracking number(s) and the processed status; must be safe to repeat."""

    @abc.abstractmethod
    def list_listings(self) -> list[Listing]:
        """Every product and variant on the store with its SKU, quantity and price."""

    @abc.abstractmethod
    def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Write quantities in the store's batch sizes; one result per update, in order."""

    @abc.abstractmethod
    def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Write prices in the store's batch sizes; one result per update, in order."""

    def close(self) -> None:
        """Release connections; connectors that own an httpx client override this."""


def utc(value: datetime) -> datetime:
    """Refuse naive datetimes loudly instead of guessing their zone."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the store's timezone must be applied first")
    from datetime import UTC

    return value.astimezone(UTC)
