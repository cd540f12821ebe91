"""Stock and prices: the product master, listings matched by SKU, and pushes of what changed.

Business rules live here and nowhere else (views, API views, admin and tasks call these):

- :func:`upsert_products` is the one writer of the product master, for one product from a form or
  10,000 from a warehouse in one API call: every item is validated first, nothing is saved when
  any item is invalid, and the write is a constant number of queries whatever the size.
- :func:`refresh_listings` reads a channel's listings and matches them to products by SKU.
- :func:`reserved_by_sku` and :func:`available_quantity` are the only place availability is
  computed: on hand − units in unshipped orders on all the account's channels − the listing's
  buffer, clamped to [0, max quantity].
- :func:`push_stock_for_channel` / :func:`push_prices_for_channel` send only listings whose
  computed value differs from the last successful push, in the store's batch sizes, and record a
  result per item; a refused item keeps differing and goes again next run.

Product changes ask the sync engine for stock / price jobs *after* the transaction commits, so a
worker never reads the master before the change is visible (or after it was rolled back).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.postgres.fields import ArrayField
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Lookup,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Greatest, Least, Round
from django.utils import timezone

from accounts.models import Account, ApiKey, Role
from accounts.tenancy import Actor, actor_user, require_actor_role
from channels.models import SalesChannel, SyncJob, SyncRun
from channels.sync import LeaseLost, commit_with_success, heartbeat, request_job, request_jobs
from config.db import PreparedQuery, execute_ctes
from connectors.base import Connector, PriceUpdate, PushResult, StockUpdate, currency_places
from connectors.base import Listing as StoreListing
from connectors.errors import PermanentError, ProtocolError
from connectors.text import unsafe_character_message
from inventory.models import PRICE_PLACES, SKU_MAX_LENGTH, InventoryEvent, Listing, Product, StockChange

log = logging.getLogger("storelink.inventory")

#: One bulk upsert call accepts at most this many items (the API's documented limit).
MAX_BULK_ITEMS = 10_000
MAX_QUANTITY = 1_000_000_000
MAX_PRICE = Decimal("9999999999.9999")
MAX_TAX_RATE = Decimal("100")
DEFAULT_RECONCILE_MINUTES = 45
_PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_PLACES)

# --------------------------------------------------------------------------------------------------
# Availability and channel prices: pure arithmetic, the one place it is written
# --------------------------------------------------------------------------------------------------


def available_quantity(on_hand: int, reserved: int, buffer: int, max_quantity: int | None) -> int:
    """What one channel may offer: on hand − reserved − buffer, never below 0 nor above max.

    Overselling is worse than underselling: when the seller is already short (reserved > on hand)
    every channel shows 0 rather than a negative number a store would reject or misread.
    """
    value = max(0, on_hand - max(0, reserved) - max(0, buffer))
    if max_quantity is not None:
        value = min(value, max(0, max_quantity))
    return value


def channel_price(
    master_price: Decimal,
    *,
    tax_rate: Decimal,
    master_includes_tax: bool = False,
    store_includes_tax: bool = False,
    currency: str,
    multiplier: Decimal = Decimal("1"),
    offset: Decimal = Decimal("0"),
) -> Decimal:
    """The value written into one store's price field for one product.

    The master's price is first brought to the basis of the store's field with the product's tax
    rate (net → gross adds the tax, gross → net takes it out, equal bases leave it alone), then the
    listing's price rule applies (a markup or an exchange rate multiplies, a fixed surcharge in the
    channel's currency adds), rounded half-up once, at the end, to the currency's minor unit; never
    below zero.
    """
    price = Decimal(master_price)
    if tax_rate and master_includes_tax != store_includes_tax:
        factor = Decimal(1) + Decimal(tax_rate) / Decimal(100)
        price = price * factor if store_includes_tax else price / factor
    price = price * Decimal(multiplier) + Decimal(offset)
    quantum = Decimal(1).scaleb(-currency_places(currency))
    return max(Decimal(0), price).quantize(quantum, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PriceRule:
    """What one channel's price push does: the two bases it converts between and the currency.

    ``master_includes_tax`` is the account's setting; ``store_includes_tax`` is what the store's
    price field holds: the connector's declaration, or gross when the seller chose not to use the
    store's tax settings for listing prices (the price written is then the one customers pay).
    """

    master_includes_tax: bool
    store_includes_tax: bool
    currency: str

    def price(
        self,
        master_price: Decimal,
        tax_rate: Decimal,
        multiplier: Decimal = Decimal(1),
        offset: Decimal = Decimal(0),
    ) -> Decimal:
        """What this channel's store field receives for one product (see :func:`channel_price`)."""
        return channel_price(
            master_price,
            tax_rate=tax_rate,
            master_includes_tax=self.master_includes_tax,
            store_includes_tax=self.store_includes_tax,
            currency=self.currency,
            multiplier=multiplier,
            offset=offset,
        )


def price_rule(channel: SalesChannel, account: Account | None = None) -> PriceRule:
    """The channel's price rule, from the platform's declaration and the seller's answers, never from
    what the store's storefront displays."""
    if account is None:
        account = Account.objects.only("prices_include_tax").get(pk=channel.account_id)
    return price_rule_for(channel.platform, channel.settings or {}, account)


def price_rule_for(platform: str, settings: Mapping[str, Any], account: Account) -> PriceRule:
    """:func:`price_rule` for settings not saved yet (the wizard's settings step)."""
    from connectors.registry import CONNECTORS

    declared = CONNECTORS[platform].capabilities.tax_inclusive_prices
    use_store_tax = _setting_flag(settings, "use_store_tax_settings", True)
    currency = str(settings.get("currency") or "")
    return PriceRule(bool(account.prices_include_tax), declared or not use_store_tax, currency)


def set_prices_include_tax(account: Account, value: Any, *, actor: Actor) -> bool:
    """Say whether the product master's prices include tax; every price-syncing channel is then
    re-priced (the value written to each store changes wherever its basis differs)."""
    require_actor_role(actor, account, Role.ADMIN, doing="change how product prices are kept")
    if isinstance(value, bool):
        gross = value
    elif str(value).strip().lower() in ("1", "true", "yes", "on", "gross"):
        gross = True
    elif str(value).strip().lower() in ("0", "false", "no", "off", "net"):
        gross = False
    else:
        raise ValueError("Say yes (prices include tax) or no (prices are net).")
    with transaction.atomic():
        changed = (
            Account.objects.filter(pk=account.pk)
            .exclude(prices_include_tax=gross)
            .update(prices_include_tax=gross)
        )
        account.prices_include_tax = gross
        if changed:
            _audit(account, actor, "account.prices_include_tax", prices_include_tax=gross)
            request_inventory_jobs(account, stock=False, prices=True)
    return gross


#: The tax rate the wizard's example uses when the account's products have none yet.
EXAMPLE_TAX_RATE = Decimal("20")


def example_tax_rate(account: Account) -> Decimal:
    """The tax rate most of the account's taxed products carry (for the wizard's example)."""
    row = (
        Product.objects.filter(account=account, tax_rate__gt=0)
        .values("tax_rate")
        .annotate(n=Count("pk"))
        .order_by("-n", "tax_rate")
        .values_list("tax_rate", flat=True)
        .first()
    )
    return Decimal(row) if row is not None else EXAMPLE_TAX_RATE


def describe_price_rule(rule: PriceRule, store: str, tax_rate: Decimal) -> str:
    """One sentence saying what the rule does to a price of 100.00, for the settings pages."""
    master = "with tax" if rule.master_includes_tax else "net"
    written = rule.price(Decimal(100), tax_rate)
    rate = f"{tax_rate.normalize():f} %"
    start = f"A price of 100.00 in your product master ({master}) is written to {store} as {written}"
    if rule.master_includes_tax == rule.store_includes_tax:
        tail = ": the price customers pay." if rule.store_includes_tax else f"; {store} adds its own tax."
        return start + tail
    what = "the price customers pay" if rule.store_includes_tax else f"the net price {store} keeps"
    return f"{start} at a {rate} tax rate: {what}."


def _channel_flag(channel: SalesChannel, name: str, default: bool) -> bool:
    return _setting_flag(channel.settings or {}, name, default)


def _setting_flag(settings: Mapping[str, Any], name: str, default: bool) -> bool:
    value = settings.get(name, default)
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def stock_sync_enabled(channel: SalesChannel) -> bool:
    return _channel_flag(channel, "stock_sync", True)


def price_sync_enabled(channel: SalesChannel) -> bool:
    return _channel_flag(channel, "price_sync", False)


def reserved_by_sku(account: Account | Any, skus: Iterable[str] | None = None) -> dict[str, int]:
    """Units sold but not yet shipped, per SKU, over every live channel of the account.

    The one place reservations are computed. Orders are read through the app registry (never an
    import) so inventory does not depend on the orders app's import order; without that app's
    models nothing is reserved. An order is open until its store status is the channel's processed
    ("shipped") status or the store has closed it (``Order.store_closed``: shipped, cancelled,
    refunded ..., set by every download, which keeps each order current). An open order's
    line reserves its quantity minus what pending or confirmed shipments already cover (a
    shipment without lines covers the whole order). Orders held for an unmapped status reserve:
    selling what may already be sold is the worse mistake.
    """
    if not apps.is_installed("orders"):
        return {}
    account_id = getattr(account, "pk", account)
    wanted: list[str] | None = None
    if skus is not None:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return {}
    if wanted is not None and connection.vendor == "postgresql":
        rows = _OPEN_LINES_OF_SKUS.rows(account_id=account_id, skus=wanted)
    else:
        lines = _open_lines(account_id)
        if wanted is not None:
            lines = lines.filter(sku__in=wanted)
        rows = list(lines)
    if not rows:
        return {}
    shipped = _shipped_units(account_id, {order_id for order_id, *_ in rows})
    reserved: dict[str, int] = {}
    for order_id, line_id, sku, quantity in rows:
        covered = shipped.get(order_id)
        if covered is _WHOLE_ORDER:
            continue
        units = quantity - (covered or {}).get(str(line_id), 0)
        if units > 0 and sku:
            reserved[sku] = reserved.get(sku, 0) + units
    return reserved


_WHOLE_ORDER: dict[str, int] = {}


def _open_lines(account_id: Any) -> Any:
    """The account's order lines that reserve stock: (order id, external line id, sku, quantity)."""
    order_model = apps.get_model("orders", "Order")
    line_model = apps.get_model("orders", "OrderLine")
    orders = order_model.objects.filter(account_id=account_id).filter(_open_orders())
    # No ordering: the lines are summed per SKU, and the model's default order costs a join and a sort.
    lines = line_model.objects.filter(account_id=account_id, order__in=orders.values("pk")).order_by()
    return lines.values_list("order_id", "external_line_id", "sku", "quantity")


class _AnyOf(Lookup):
    """``field = ANY(%s)``: a list of any length as one parameter, so the statement's text never
    changes with the number of SKUs."""

    lookup_name = "any_of"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        field_sql, field_params = self.process_lhs(compiler, connection)
        list_sql, list_params = self.process_rhs(compiler, connection)
        return f"{field_sql} = ANY({list_sql})", [*field_params, *list_params]


def _open_lines_of_skus_query(account_id: Any, skus: list[str]) -> Any:
    wanted = _AnyOf(F("sku"), Value(skus, output_field=ArrayField(CharField())))
    return _open_lines(account_id).filter(wanted)


_OPEN_LINES_OF_SKUS = PreparedQuery(
    _open_lines_of_skus_query, account_id=uuid.UUID(int=1), skus=["storelink-standin-sku"]
)


def _open_orders() -> Q:
    """Orders that still hold stock, in one condition (no per-channel query): on a live channel,
    and held for an unmapped status, or neither closed on the store (``store_closed``, set by the
    download from the store's verdict or the platform's closed statuses) nor at their channel's
    processed status."""
    processed = Q(status_code=Coalesce(KeyTextTransform("processed_status", "channel__settings"), Value("")))
    closed = Q(store_closed=True) | processed
    return Q(channel__removed_at__isnull=True) & (Q(held_unmapped_status=True) | ~closed)


def _shipped_units(account_id: Any, order_ids: set[Any]) -> dict[Any, dict[str, int]]:
    """Per order, units per external line id that shipments (pending or confirmed) cover."""
    try:
        shipment_model = apps.get_model("orders", "Shipment")
    except LookupError:
        return {}
    covered: dict[Any, dict[str, int]] = {}
    for order_id, lines in shipment_model.objects.filter(
        account_id=account_id, order_id__in=list(order_ids), state__in=["pending", "confirmed"]
    ).values_list("order_id", "lines"):
        if not lines:
            covered[order_id] = _WHOLE_ORDER
            continue
        per_line = covered.setdefault(order_id, {})
        if per_line is _WHOLE_ORDER:
            continue
        for line in lines:
            key = str(line.get("external_line_id", ""))
            per_line[key] = per_line.get(key, 0) + int(line.get("quantity") or 0)
    return covered


# --------------------------------------------------------------------------------------------------
# Product master
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemError:
    """Why one item of a bulk upsert was refused; ``index`` is its position in the request."""

    index: int
    sku: str
    errors: dict[str, list[str]]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "sku": self.sku, "errors": self.errors}


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[ItemError] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    #: Every item was well formed and the errors come from what is stored (a SKU that does not exist
    #: yet sent without ``on_hand``): the API answers 409 rather than 400.
    conflict: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


class ProductError(Exception):
    """A whole request the caller must fix (too many items, not a list ...)."""


@dataclass(frozen=True)
class _CleanItem:
    sku: str
    values: dict[str, Any]  # only the fields the caller sent


_FIELDS = ("name", "on_hand", "price", "tax_rate")


def _clean_sku(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("Enter the SKU as text.")
    sku = str(value).strip()
    if not sku:
        raise ValueError("A SKU is required.")
    if len(sku) > SKU_MAX_LENGTH:
        raise ValueError(f"Use at most {SKU_MAX_LENGTH} characters.")
    if message := unsafe_character_message(sku, "The SKU"):
        raise ValueError(message)
    return sku


def _clean_quantity(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("Enter a whole number.")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Enter a whole number.")
        value = int(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("Enter a whole number.") from None
    if number < 0:
        raise ValueError("On hand cannot be negative.")
    if number > MAX_QUANTITY:
        raise ValueError(f"On hand must be at most {MAX_QUANTITY}.")
    return number


def _clean_decimal(value: Any, *, maximum: Decimal, label: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("Enter a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("Enter a number.") from None
    if not number.is_finite():
        raise ValueError("Enter a number.")
    if number < 0:
        raise ValueError(f"{label} cannot be negative.")
    if number > maximum:
        raise ValueError(f"{label} must be at most {maximum}.")
    if number != number.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP):
        raise ValueError(f"Use at most {PRICE_PLACES} decimal places.")
    return number.quantize(_PRICE_QUANTUM)


def _clean_item(raw: Any) -> tuple[_CleanItem | None, str, dict[str, list[str]]]:
    """Validate one item; every field's message at once, like a form."""
    if not isinstance(raw, Mapping):
        return None, "", {"non_field_errors": ["Each item must be an object with at least a sku."]}
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    sku = ""
    try:
        sku = _clean_sku(raw.get("sku"))
    except ValueError as exc:
        errors["sku"] = [str(exc)]
    if "name" in raw:
        name = raw.get("name")
        text = "" if name is None else str(name).strip()
        if isinstance(name, Mapping | list | tuple | bool):
            errors["name"] = ["Enter the name as text."]
        elif len(text) > 255:
            errors["name"] = ["Use at most 255 characters."]
        elif message := unsafe_character_message(text, "The name"):
            errors["name"] = [message]
        else:
            values["name"] = text
    if "on_hand" in raw:
        try:
            values["on_hand"] = _clean_quantity(raw.get("on_hand"))
        except ValueError as exc:
            errors["on_hand"] = [str(exc)]
    if "price" in raw:
        if raw.get("price") is None or raw.get("price") == "":
            values["price"] = None
        else:
            try:
                values["price"] = _clean_decimal(raw.get("price"), maximum=MAX_PRICE, label="Price")
            except ValueError as exc:
                errors["price"] = [str(exc)]
    if "tax_rate" in raw:
        try:
            values["tax_rate"] = _clean_decimal(raw.get("tax_rate"), maximum=MAX_TAX_RATE, label="Tax rate")
        except ValueError as exc:
            errors["tax_rate"] = [str(exc)]
    unknown = sorted(str(key) for key in raw if key not in ("sku", *_FIELDS))
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    if not errors and not values:
        errors["non_field_errors"] = ["Send at least one of name, on_hand, price, tax_rate."]
    if errors:
        return None, sku, errors
    return _CleanItem(sku=sku, values=values), sku, {}


def _audit(account: Account, actor: Actor, action: str, **detail: Any) -> None:
    InventoryEvent.objects.create(
        account=account,
        actor=actor_user(actor),
        actor_api_key=actor if isinstance(actor, ApiKey) else None,
        action=action,
        detail=detail,
    )


def upsert_products(account: Account, items: Sequence[Any], *, actor: Actor) -> UpsertResult:
    """Create or update products by SKU; all or nothing.

    Items carry ``sku`` plus any of ``name``, ``on_hand``, ``price``, ``tax_rate``: fields left out
    keep their stored value, so a warehouse can send quantities only. A new product needs
    ``on_hand`` (creating one at 0 by accident would zero the stores). When any item is invalid the
    result lists every item's errors and nothing is written. Otherwise the write is one locking
    read, one ``INSERT … ON CONFLICT DO UPDATE`` for every new or changed row, one ``UPDATE`` that
    links waiting listings, and one audit row: a constant number of queries for 1 or 10,000 items.
    """
    require_actor_role(actor, account, Role.MEMBER, doing="change products")
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ProductError("Send a list of products.")
    if len(items) > MAX_BULK_ITEMS:
        raise ProductError(f"Send at most {MAX_BULK_ITEMS} products per request; this one has {len(items)}.")
    result = UpsertResult()
    cleaned: list[_CleanItem] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(items):
        item, sku, errors = _clean_item(raw)
        if item is not None and item.sku in first_index:
            errors = {"sku": [f"This SKU is already item {first_index[item.sku]} of this request."]}
            item = None
        if item is None:
            result.errors.append(ItemError(index=index, sku=sku, errors=errors))
            continue
        first_index[item.sku] = index
        cleaned.append(item)
    if result.errors or not cleaned:
        return result

    now = timezone.now()
    stock_changed = price_changed = False
    with transaction.atomic():
        existing = {
            product.sku: product
            for product in Product.objects.select_for_update()
            .filter(account=account, sku__in=list(first_index))
            .order_by("sku")  # a fixed lock order: two bulk calls never deadlock
        }
        to_write: list[Product] = []
        new_skus: list[str] = []
        moved_skus: list[str] = []  # existing products whose quantity on hand changed
        for item in cleaned:
            product = existing.get(item.sku)
            if product is None:
                if "on_hand" not in item.values:
                    result.errors.append(
                        ItemError(
                            index=first_index[item.sku],
                            sku=item.sku,
                            errors={"on_hand": ["A new product needs its quantity on hand."]},
                        )
                    )
                    continue
                product = Product(
                    account=account, sku=item.sku, created_at=now, updated_at=now, **item.values
                )
                to_write.append(product)
                new_skus.append(item.sku)
                result.created += 1
                stock_changed = True
                price_changed = price_changed or product.price is not None
                result.products.append(product)
                continue
            changes = {
                name: value
                for name, value in item.values.items()
                if (getattr(product, name) != value or (value is None) != (getattr(product, name) is None))
            }
            result.products.append(product)
            if not changes:
                result.unchanged += 1
                continue
            for name, value in changes.items():
                setattr(product, name, value)
            product.updated_at = now
            to_write.append(product)
            result.updated += 1
            if "on_hand" in changes:
                stock_changed = True
                moved_skus.append(item.sku)
            price_changed = price_changed or bool({"price", "tax_rate"} & changes.keys())
        if result.errors:
            result.created = result.updated = result.unchanged = 0
            result.products = []
            result.conflict = True
            return result
        if to_write:
            Product.objects.bulk_create(
                to_write,
                update_conflicts=True,
                unique_fields=["account", "sku"],
                update_fields=["name", "on_hand", "price", "tax_rate", "updated_at"],
            )
        if new_skus:
            _link_listings(account, new_skus)
            _product_master_changed(account, new_skus)
        if moved_skus:
            mark_stock_changed(
                Listing.objects.filter(account=account, sku__in=moved_skus, product__isnull=False)
            )
        if to_write:
            _audit(
                account,
                actor,
                "products.upserted",
                created=result.created,
                updated=result.updated,
                unchanged=result.unchanged,
                skus=[p.sku for p in to_write[:20]],
            )
            request_inventory_jobs(account, stock=stock_changed, prices=price_changed)
    log.info(
        "inventory.products.upserted account=%s created=%d updated=%d unchanged=%d",
        account.pk,
        result.created,
        result.updated,
        result.unchanged,
    )
    return result


def save_product(
    account: Account, *, actor: Actor, sku: str, product: Product | None = None, **values: Any
) -> Product:
    """One product from a form, the admin or an inline edit (same rules as the bulk call).

    Renaming a SKU is not an upsert: the old product is changed in place, its listings re-matched.
    Raises :class:`ProductValidationError` with field errors.
    """
    if product is not None and sku != product.sku:
        return _rename_product(product, actor=actor, sku=sku, values=values)
    result = upsert_products(account, [{"sku": sku, **values}], actor=actor)
    if not result.ok:
        raise ProductValidationError(result.errors[0].errors)
    return Product.objects.get(account=account, sku=result.products[0].sku)


class ProductValidationError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _rename_product(product: Product, *, actor: Actor, sku: str, values: dict[str, Any]) -> Product:
    account = product.account
    require_actor_role(actor, account, Role.MEMBER, doing="change products")
    item, _sku, errors = _clean_item({"sku": sku, **values} if values else {"sku": sku, "name": product.name})
    if item is None:
        raise ProductValidationError(errors)
    with transaction.atomic():
        if Product.objects.filter(account=account, sku=item.sku).exclude(pk=product.pk).exists():
            raise ProductValidationError({"sku": ["Another product already has this SKU."]})
        fresh = Product.objects.select_for_update().get(pk=product.pk)
        old_sku = fresh.sku
        fresh.sku = item.sku
        for name, value in item.values.items():
            setattr(fresh, name, value)
        fresh.updated_at = timezone.now()
        fresh.save()
        Listing.objects.filter(account=account, product=fresh).update(product=None)
        _link_listings(account, [fresh.sku])
        _product_master_changed(account, [old_sku, fresh.sku])
        _audit(account, actor, "product.renamed", sku_from=old_sku, sku_to=fresh.sku)
        request_inventory_jobs(account, stock=True, prices=fresh.price is not None)
    return fresh


def delete_product(product: Product, *, actor: Actor) -> None:
    """Remove a SKU from the master; its listings stay (unmatched) and are no longer pushed."""
    require_actor_role(actor, product.account, Role.MEMBER, doing="delete products")
    with transaction.atomic():
        _audit(product.account, actor, "product.deleted", sku=product.sku)
        sku = product.sku
        product.delete()
        _product_master_changed(product.account, [sku])


def _product_master_changed(account: Account, skus: Sequence[str]) -> None:
    """Orders naming these SKUs are re-judged for ``unknown_sku`` (one UPDATE, in this transaction).

    When these are the account's only products the master was empty before, and no order had been
    judged against it yet: all of them are.
    """
    from orders.services import product_master_changed

    first = not Product.objects.filter(account=account).exclude(sku__in=list(skus)).exists()
    product_master_changed(account.pk, skus, everything=first)


def _link_listings(account: Account, skus: Sequence[str]) -> int:
    """Attach waiting (unmatched) listings of these SKUs to their new products, in one UPDATE."""
    product_id = Product.objects.filter(account_id=OuterRef("account_id"), sku=OuterRef("sku")).values("id")[
        :1
    ]
    linked = Listing.objects.filter(account=account, product__isnull=True, sku__in=list(skus)).update(
        product_id=Subquery(product_id)
    )
    if linked:
        mark_stock_changed(Listing.objects.filter(account=account, sku__in=list(skus), product__isnull=False))
    return linked


def request_inventory_jobs(account: Account, *, stock: bool, prices: bool) -> None:
    """Ask for stock and/or price jobs on every channel of the account that syncs them.

    The requests are due times written in the caller's transaction (committed with the change,
    kept through a broker outage); the jobs are sent after commit so the worker reads the
    committed master. The job itself is cheap when nothing differs (it sends only changed
    listings), so asking too often costs little.
    """
    if not (stock or prices):
        return
    channels = list(
        SalesChannel.objects.syncable()
        .filter(account_id=getattr(account, "pk", account))
        .only("id", "account_id", "settings")
    )
    if stock:
        request_jobs([channel for channel in channels if stock_sync_enabled(channel)], SyncJob.STOCK)
    if prices:
        request_jobs([channel for channel in channels if price_sync_enabled(channel)], SyncJob.PRICES)


def reservations_changed(account: Account | Any, skus: Iterable[str] | None = None) -> None:
    """Orders arrived, changed status or were shipped: availability moved on every channel.

    For the orders and channels apps to call inside the transaction that changed the orders (a
    download page that created or changed orders, a recorded, failed or retried shipment, a
    removed channel, a new "shipped" status): the listings of ``skus`` (``None``: every SKU of the
    account) count a change with that transaction, and stock jobs go out after it commits. Only
    stock is affected; the jobs send just the listings whose quantity now differs.
    """
    account_id = getattr(account, "pk", account)
    listings = Listing.objects.filter(account_id=account_id, product__isnull=False)
    if skus is not None:
        wanted = sorted({sku for sku in skus if sku})
        if not wanted:
            return
        listings = listings.filter(sku__in=wanted)
    mark_stock_changed(listings)
    request_inventory_jobs(Account(pk=account_id), stock=True, prices=False)


def mark_stock_changed(listings: Any) -> None:
    """Count a change on these listings' availability, in the caller's transaction.

    Every writer that moves what a listing may offer (on hand, reservations, buffer and cap,
    linking to a product, what the store said it holds) calls this, so the stock job looks at the
    listings that changed instead of all of them (:class:`StockChange`). One statement, an
    ``INSERT … SELECT … ON CONFLICT DO UPDATE`` in primary-key order: two order downloads of the
    same account that touch the same SKUs queue behind each other instead of deadlocking.
    """
    select, params = listings.order_by("pk").values("pk", "account_id", "channel_id").query.sql_with_params()
    table = connection.ops.quote_name(StockChange._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, listing_id, channel_id, changes) "  # noqa: S608 (names are ours)
            f"SELECT account_id, pk, channel_id, 1 FROM ({select}) AS changed WHERE true "
            f"ON CONFLICT (account_id, listing_id) DO UPDATE SET changes = {table}.changes + 1",
            params,
        )


# --------------------------------------------------------------------------------------------------
# Listings
# --------------------------------------------------------------------------------------------------


@dataclass
class RefreshResult:
    read: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    matched: int = 0
    unmatched: int = 0
    without_sku: int = 0
    duplicate_skus: list[str] = field(default_factory=list)


def refresh_listings(channel: SalesChannel, connector: Connector | None = None) -> RefreshResult:
    """Read every product and variant of the store and match them to products by SKU.

    Store rows keep the seller's overrides (buffer, max quantity, price rule) across refreshes:
    only what the store owns is overwritten. A row the store no longer lists is marked removed
    rather than deleted, so its overrides come back if the SKU does. Items without a SKU cannot be
    matched and are counted; a SKU the store lists twice keeps its first occurrence and is reported.
    """
    own_connector = connector is None
    if connector is None:
        from channels.services import connector_for

        connector = connector_for(channel)
    try:
        store_listings = connector.list_listings()
    finally:
        if own_connector:
            connector.close()
    return save_listings(channel, store_listings)


def save_listings(channel: SalesChannel, store_listings: Sequence[StoreListing]) -> RefreshResult:
    """Persist what ``list_listings`` returned (split out so reconcile and tests share it)."""
    result = RefreshResult(read=len(store_listings))
    unique: dict[str, StoreListing] = {}
    duplicates: set[str] = set()
    for item in store_listings:
        sku = (item.sku or "").strip()
        if not sku or len(sku) > SKU_MAX_LENGTH:
            result.without_sku += 1
            continue
        if sku in unique:
            duplicates.add(sku)
            continue
        unique[sku] = item
    result.duplicate_skus = sorted(duplicates)
    now = timezone.now()
    with transaction.atomic():
        products = dict(
            Product.objects.filter(account_id=channel.account_id, sku__in=list(unique)).values_list(
                "sku", "id"
            )
        )
        known = {
            sku: (product_id, store_quantity, removed_at)
            for sku, product_id, store_quantity, removed_at in Listing.objects.filter(
                channel=channel, sku__in=list(unique)
            ).values_list("sku", "product_id", "store_quantity", "removed_at")
        }
        # What the store holds is the stock job's baseline: a matched listing that is new, or
        # whose quantity, product or presence changed, counts a change.
        moved = [
            sku
            for sku in unique
            if products.get(sku) is not None
            and (
                sku not in known
                or known[sku][0] != products[sku]
                or known[sku][1] != unique[sku].quantity
                or known[sku][2] is not None
            )
        ]
        rows = [
            Listing(
                account_id=channel.account_id,
                channel=channel,
                product_id=products.get(sku),
                sku=sku,
                remote_id=str(item.remote_id),
                remote_variant_id=str(item.remote_variant_id or ""),
                name=(item.name or "")[:255],
                store_enabled=item.enabled,
                store_quantity=item.quantity,
                store_price=Decimal(item.price).quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP),
                seen_at=now,
                removed_at=None,
                created_at=now,
            )
            for sku, item in unique.items()
        ]
        if rows:
            Listing.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["account", "channel", "sku"],
                update_fields=[
                    "product",
                    "remote_id",
                    "remote_variant_id",
                    "name",
                    "store_enabled",
                    "store_quantity",
                    "store_price",
                    "seen_at",
                    "removed_at",
                    "updated_at",
                ],
            )
        if moved:
            mark_stock_changed(Listing.objects.filter(channel=channel, sku__in=moved))
        result.removed = (
            Listing.objects.filter(channel=channel, removed_at__isnull=True)
            .filter(Q(seen_at__lt=now) | Q(seen_at__isnull=True))
            .update(removed_at=now)
        )
    result.created = len(unique) - len(known)
    result.updated = len(known)
    result.matched = sum(1 for sku in unique if sku in products)
    result.unmatched = len(unique) - result.matched
    log.info(
        "inventory.listings.refreshed channel=%s read=%d created=%d removed=%d unmatched=%d",
        channel.pk,
        result.read,
        result.created,
        result.removed,
        result.unmatched,
    )
    return result


def update_listing_overrides(listing: Listing, *, actor: Actor, **values: Any) -> Listing:
    """Change a listing's buffer, max quantity or price rule; pushes follow on commit.

    Accepts ``buffer``, ``max_quantity`` (``None`` = no cap), ``price_multiplier``, ``price_offset``.
    """
    account = listing.account
    require_actor_role(actor, account, Role.MEMBER, doing="change listings")
    allowed = {"buffer", "max_quantity", "price_multiplier", "price_offset"}
    unknown = set(values) - allowed
    if unknown:
        raise ProductValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in ("buffer", "max_quantity"):
        if name in values:
            if name == "max_quantity" and values[name] in (None, ""):
                cleaned[name] = None
                continue
            try:
                cleaned[name] = _clean_quantity(values[name])
            except ValueError as exc:
                errors[name] = [str(exc).replace("On hand", "The value")]
    if "price_multiplier" in values:
        try:
            cleaned["price_multiplier"] = _clean_decimal(
                values["price_multiplier"], maximum=Decimal("1000"), label="The multiplier"
            )
        except ValueError as exc:
            errors["price_multiplier"] = [str(exc)]
    if "price_offset" in values:
        try:
            offset = Decimal(str(values["price_offset"]).strip())
            if not offset.is_finite() or abs(offset) > MAX_PRICE:
                raise InvalidOperation
            cleaned["price_offset"] = offset.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        except (InvalidOperation, ValueError):
            errors["price_offset"] = ["Enter an amount."]
    if errors:
        raise ProductValidationError(errors)
    with transaction.atomic():
        fresh = Listing.objects.select_for_update().select_related("channel").get(pk=listing.pk)
        changes = {name: value for name, value in cleaned.items() if getattr(fresh, name) != value}
        if not changes:
            return fresh
        for name, value in changes.items():
            setattr(fresh, name, value)
        fresh.save(update_fields=[*changes, "updated_at"])
        stock = bool({"buffer", "max_quantity"} & changes.keys())
        if stock:
            mark_stock_changed(Listing.objects.filter(pk=fresh.pk))
        _audit(
            account,
            actor,
            "listing.overrides_changed",
            listing=str(fresh.pk),
            sku=fresh.sku,
            fields=sorted(changes),
        )
        channel = fresh.channel
        prices = bool({"price_multiplier", "price_offset"} & changes.keys())
        _request_for_channel(channel, stock=stock, prices=prices)
    return fresh


def _request_for_channel(channel: SalesChannel, *, stock: bool, prices: bool) -> list[str]:
    jobs: list[str] = []
    if not SalesChannel.objects.syncable().filter(pk=channel.pk).exists():
        return jobs
    if stock and stock_sync_enabled(channel):
        request_job(channel, SyncJob.STOCK)
        jobs.append(str(SyncJob.STOCK))
    if prices and price_sync_enabled(channel):
        request_job(channel, SyncJob.PRICES)
        jobs.append(str(SyncJob.PRICES))
    return jobs


def push_now(channel: SalesChannel, *, actor: Actor) -> list[str]:
    """The seller's "push now": re-read the channel's listings and push every difference.

    Marking the listings unseen makes the next stock / price job re-read the store first (the same
    path as the hourly reconcile), so items added on the store and failed items are included.
    Returns the jobs requested (none when the channel is paused or syncs neither).
    """
    require_actor_role(actor, channel.account, Role.MEMBER, doing="push stock and prices")
    with transaction.atomic():
        Listing.objects.filter(channel=channel).update(seen_at=None)
        _audit(channel.account, actor, "channel.push_requested", channel=str(channel.pk))
        jobs = _request_for_channel(channel, stock=True, prices=True)
    return jobs


def create_products_from_listings(channel: SalesChannel, *, actor: Actor) -> UpsertResult:
    """Start the product master from a store: one product per unmatched listing of ``channel``,
    with the store's quantity and price (net, tax rate 0: the channel then receives exactly the
    price it has now). Onboarding in one click; SKUs already in the master are left alone.
    """
    rows = list(
        Listing.objects.unmatched()
        .filter(account_id=channel.account_id, channel=channel)
        .order_by("sku")
        .values_list("sku", "name", "store_quantity", "store_price")[:MAX_BULK_ITEMS]
    )
    items = [
        {
            "sku": sku,
            "name": name,
            "on_hand": max(0, quantity or 0),
            "price": store_price,
        }
        for sku, name, quantity, store_price in rows
    ]
    if not items:
        return UpsertResult()
    return upsert_products(channel.account, items, actor=actor)


def products_without_listing(channel: SalesChannel) -> Any:
    """Products of the account that this channel does not list (the other side of "unmatched")."""
    listed = Listing.objects.present().filter(channel=channel, product_id=OuterRef("pk"))
    return Product.objects.filter(account_id=channel.account_id).exclude(Exists(listed))


# --------------------------------------------------------------------------------------------------
# Pushes
# --------------------------------------------------------------------------------------------------


@dataclass
class PushSummary:
    considered: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedPush:
    """One listing to send and the value to send it (a quantity or a channel price)."""

    listing_id: Any
    sku: str
    remote_id: str
    remote_variant_id: str
    value: Any
    #: How many queued stock changes the plan read for the listing (0: none, and for prices);
    #: a success settles them if no change was counted since.
    changes: int = 0


def _pushable(channel: SalesChannel) -> Any:
    # account_id first: the (account, channel, sku) index then serves the channel's listings.
    return Listing.objects.present().filter(
        account_id=channel.account_id, channel=channel, product__isnull=False
    )


_PLAN_FIELDS = ("pk", "sku", "remote_id", "remote_variant_id")


def _total_of(listings: Any) -> Subquery:
    """How many listings a run considered, counted in the planning query itself (an uncorrelated
    subquery the database evaluates once) instead of a separate round trip."""
    counted = listings.order_by().annotate(_one=Value(1)).values("_one").annotate(n=Count("pk")).values("n")
    return Subquery(counted, output_field=IntegerField())


@dataclass
class StockPlan:
    """What one stock job sends, and the queued changes it looked at and found already in place.

    ``settled`` pairs a listing with the count of queued changes the plan read; they are deleted
    only where the count is still that one (see :func:`_settle`).
    """

    pushes: list[PlannedPush]
    considered: int
    settled: list[tuple[Any, int]] = field(default_factory=list)


def _quantity_to_send(
    on_hand: int,
    reserved: int,
    buffer: int,
    max_quantity: int | None,
    store_quantity: int | None,
    last_pushed: int | None,
) -> int | None:
    """The available quantity when it differs from what the store is known to hold (what it said
    at the last read, else our last successful push); ``None`` when the store already has it."""
    value = available_quantity(on_hand, reserved, buffer, max_quantity)
    return value if value != (store_quantity if store_quantity is not None else last_pushed) else None


def _queued_stock_changes(channel_id: Any, account_id: Any) -> Any:
    """A channel's queued stock changes with what planning needs of each listing, and whether any
    open order line of its SKU reserves stock (so the few that do are the only SKUs whose
    reservations are then computed)."""
    reserves: Any = Value(False)
    if apps.is_installed("orders"):
        reserves = Exists(_open_lines(account_id).filter(sku=OuterRef("listing__sku")))
    return (
        StockChange.objects.filter(channel_id=channel_id)
        .annotate(reserves=reserves)
        .values_list(
            "listing_id",
            "listing__sku",
            "listing__remote_id",
            "listing__remote_variant_id",
            "listing__product_id",
            "listing__removed_at",
            "listing__product__on_hand",
            "listing__buffer",
            "listing__max_quantity",
            "listing__store_quantity",
            "listing__last_pushed_quantity",
            "changes",
            "reserves",
        )
    )


_QUEUED_STOCK_CHANGES = PreparedQuery(
    _queued_stock_changes, channel_id=uuid.UUID(int=2), account_id=uuid.UUID(int=1)
)


def planned_stock(channel: SalesChannel, *, everything: bool = False) -> StockPlan:
    """Listings whose available quantity differs from what the store is known to hold.

    The baseline is the last value the store is known to hold: our last successful push, unless
    listings were re-read since (the reconcile), in which case what the store said wins, so an
    edit made on the store behind our back, or the store's own decrement on a sale, is corrected.
    A push that failed changes neither, so the item keeps differing and goes again next run.

    By default only listings with queued changes are looked at (every writer that moves
    availability counts a change on the listings concerned: :func:`mark_stock_changed`), so a job
    after 100 product changes on a 10,000-listing channel reads 100 rows, not 10,000.
    ``everything`` compares every listing (after the reconcile re-read the store, and as a safety
    net for any change that was not counted).

    Order of reads matters: the queued changes are read before the reservations, so an order that
    arrives in between counts a change the job has not seen and the listing stays queued.
    """
    if everything:
        return _planned_stock_everything(channel)
    rows = _QUEUED_STOCK_CHANGES.rows(channel_id=channel.pk, account_id=channel.account_id)
    pushable = [row for row in rows if row[4] is not None and row[5] is None]
    # Read after the queue: an order arriving in between counts a change this run has not seen.
    reserving = {row[1] for row in pushable if row[-1]}
    reserved = reserved_by_sku(channel.account_id, reserving) if reserving else {}
    plan = StockPlan(pushes=[], considered=len(pushable))
    for (
        *ids,
        product_id,
        removed_at,
        on_hand,
        buffer,
        max_quantity,
        store_quantity,
        last_pushed,
        changes,
        _reserves,
    ) in rows:
        if product_id is None or removed_at is not None:
            plan.settled.append((ids[0], changes))  # not pushed; linking it again counts a change
            continue
        value = _quantity_to_send(
            on_hand, reserved.get(ids[1], 0), buffer, max_quantity, store_quantity, last_pushed
        )
        if value is not None:
            plan.pushes.append(PlannedPush(*ids, value, changes))
        else:
            plan.settled.append((ids[0], changes))
    plan.pushes.sort(key=_batch_order)
    return plan


def _planned_stock_everything(channel: SalesChannel) -> StockPlan:
    """Every listing of the channel compared in the database (the arithmetic of
    :func:`available_quantity` as SQL) for SKUs without open orders, so 10,000 listings load only
    the ones that differ; SKUs with reservations are few and are computed here. The queued changes
    are read first (see :func:`planned_stock`) and all settled by this comparison."""
    pending = dict(StockChange.objects.filter(channel=channel).values_list("listing_id", "changes"))
    reserved = reserved_by_sku(channel.account_id)
    listings = _pushable(channel)
    whole = IntegerField()
    room = Greatest(
        ExpressionWrapper(F("product__on_hand") - F("buffer"), output_field=whole),
        Value(0),
        output_field=whole,
    )
    target = Case(
        When(max_quantity__isnull=True, then=room),
        default=Least(room, F("max_quantity"), output_field=whole),
        output_field=whole,
    )
    plain = listings.exclude(sku__in=list(reserved)) if reserved else listings
    rows = list(
        plain.annotate(
            target=target,
            baseline=Coalesce("store_quantity", "last_pushed_quantity"),
            total=_total_of(listings),
        )
        .filter(Q(baseline__isnull=True) | ~Q(baseline=F("target")))
        .values_list(*_PLAN_FIELDS, "target", "total")
    )
    considered = rows[0][-1] if rows else listings.count()
    pushes = [PlannedPush(*row[:-1], pending.get(row[0], 0)) for row in rows]
    if reserved:
        for *ids, on_hand, buffer, max_quantity, store_quantity, last_pushed in listings.filter(
            sku__in=list(reserved)
        ).values_list(
            *_PLAN_FIELDS,
            "product__on_hand",
            "buffer",
            "max_quantity",
            "store_quantity",
            "last_pushed_quantity",
        ):
            value = _quantity_to_send(
                on_hand, reserved[ids[1]], buffer, max_quantity, store_quantity, last_pushed
            )
            if value is not None:
                pushes.append(PlannedPush(*ids, value, pending.get(ids[0], 0)))
    pushed = {item.listing_id for item in pushes}
    pushes.sort(key=_batch_order)
    settled = [(pk, count) for pk, count in pending.items() if pk not in pushed]
    return StockPlan(pushes=pushes, considered=considered, settled=settled)


def planned_prices(channel: SalesChannel) -> tuple[list[PlannedPush], int]:
    """Listings whose channel price differs from the store's known one; unpriced products skip.

    The database narrows the candidates with the same formula as :func:`channel_price` (numeric
    arithmetic, half-up rounding of non-negative amounts); the value sent is computed here.
    """
    rule = price_rule(channel)
    listings = _pushable(channel).filter(product__price__isnull=False)
    price: Any = F("product__price")
    if rule.master_includes_tax != rule.store_includes_tax:
        factor = Value(Decimal(1)) + F("product__tax_rate") / Value(Decimal(100))
        price = price * factor if rule.store_includes_tax else price / factor
    amount = ExpressionWrapper(
        price * F("price_multiplier") + F("price_offset"),
        output_field=DecimalField(max_digits=30, decimal_places=10),
    )
    target = Greatest(Round(amount, currency_places(rule.currency)), Value(Decimal(0)))
    rows = (
        listings.annotate(
            target=target, baseline=Coalesce("store_price", "last_pushed_price"), total=_total_of(listings)
        )
        .filter(Q(baseline__isnull=True) | ~Q(baseline=F("target")))
        .values_list(
            *_PLAN_FIELDS,
            "product__price",
            "product__tax_rate",
            "price_multiplier",
            "price_offset",
            "store_price",
            "last_pushed_price",
            "total",
        )
    )
    rows = list(rows)
    considered = rows[0][-1] if rows else listings.count()

    plan: list[PlannedPush] = []
    for *ids, master, tax_rate, multiplier, offset, store_price, last_pushed, _total in rows:
        value = rule.price(master, tax_rate, multiplier, offset)
        baseline = store_price if store_price is not None else last_pushed
        if baseline is None or value != baseline:
            plan.append(PlannedPush(*ids, value))
    # A product's new price moves the price of variants that inherit it (OpenCart option prices are
    # differences from the product's; X-Cart variants may use the product's price): those are sent
    # again after their product, so the store ends with the price Storelink computed for each SKU.
    parents = {item.remote_id for item in plan if not item.remote_variant_id}
    if parents:
        planned = {item.listing_id for item in plan}
        for *ids, master, tax_rate, multiplier, offset in (
            listings.filter(remote_id__in=parents)
            .exclude(remote_variant_id="")
            .exclude(pk__in=planned)
            .values_list(
                *_PLAN_FIELDS, "product__price", "product__tax_rate", "price_multiplier", "price_offset"
            )
        ):
            plan.append(PlannedPush(*ids, rule.price(master, tax_rate, multiplier, offset)))
    plan.sort(key=_batch_order)
    return plan, considered


def _batch_order(item: PlannedPush) -> tuple[bool, str]:
    """Products before variants: stores write them through different endpoints, so a batch that
    mixes both costs two requests where one would do."""
    return (bool(item.remote_variant_id), item.sku)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    size = max(1, int(size or 1))
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Columns:
    """Which listing columns a push kind records (stock and prices keep their own)."""

    pushed_value: str
    store_value: str
    pushed_at: str
    error: str
    sql_type: str
    #: whether a success settles the listing's queued stock changes (prices are planned in full)
    settles: bool = False


_STOCK_COLUMNS = _Columns(
    "last_pushed_quantity", "store_quantity", "last_pushed_at", "last_error", "integer", settles=True
)
_PRICE_COLUMNS = _Columns(
    "last_pushed_price", "store_price", "last_price_pushed_at", "last_price_error", "numeric"
)


def _send(
    plan: Sequence[PlannedPush],
    batch_size: int,
    push: Callable[[list[Any]], list[PushResult]],
    make_update: Callable[[PlannedPush], Any],
    columns: _Columns,
    summary: PushSummary,
    run: SyncRun | None,
) -> None:
    """Send ``plan`` batch by batch; record the results in bulk, at each heartbeat and at the end.

    Results are written together with the heartbeat (every couple of seconds: counts saved, lease
    renewed) and once when the push ends, so a push of a few batches costs one UPDATE instead of
    one per batch. A connector error that stops the whole push (auth, rate limit, timeout)
    propagates after the results gathered so far are recorded, so the retry sends only what is
    still different. A run that lost its lease writes nothing more (the new holder decides), and
    a worker killed outright loses at most a heartbeat's worth of records: those items were marked
    unknown before they went out (:func:`_forget_store_values`) and are sent again.
    ``PermanentError`` for a batch fails that batch's items and the push carries on.
    """
    succeeded: list[tuple[Any, Any, int]] = []
    failed: list[tuple[Any, Any]] = []
    if plan:
        _forget_store_values(columns, [item.listing_id for item in plan])
    try:
        for batch in _chunks(plan, batch_size):
            updates = [make_update(item) for item in batch]
            try:
                results = push(updates)
            except PermanentError as exc:
                results = [
                    PushResult(sku=u.sku, remote_id=u.remote_id, ok=False, error=exc.message) for u in updates
                ]
            if len(results) != len(updates):
                raise ProtocolError(
                    f"The store answered {len(results)} results for {len(updates)} updates.",
                    code="result_count",
                )
            for item, outcome in zip(batch, results, strict=True):
                if outcome.ok:
                    succeeded.append((item.listing_id, item.value, item.changes))
                    summary.ok += 1
                else:
                    error = (outcome.error or "The store refused this update.")[:2000]
                    failed.append((item.listing_id, error))
                    summary.failed += 1
                    if len(summary.errors) < 20:
                        summary.errors.append(f"{item.sku}: {error}")
            summary.sent += len(updates)
            if _heartbeat_due(run):
                with transaction.atomic():  # the results so far and the run's progress: one commit
                    _record_results(columns, succeeded, failed)
                    _record_progress(run, summary)
                succeeded.clear()
                failed.clear()
            else:
                _record_progress(run, summary)
    except LeaseLost:
        raise
    except BaseException:
        try:
            _flush_results(columns, succeeded, failed)
        except Exception:
            log.exception("inventory.push.record_failed")
        raise
    _flush_results(columns, succeeded, failed, run)


def _forget_store_values(columns: _Columns, listing_ids: list[Any]) -> None:
    """Before a push goes out, stop believing we know what the store holds for its listings.

    A write whose reply is lost (a timeout, a killed worker) may or may not have been applied. If
    the listings kept the value the store held before, a later plan whose value came back to it
    (a reservation released, then taken again) would find "no difference" and never correct the
    store. Committed before the request, so it holds even if this process dies; a recorded success
    sets the value again.
    """
    Listing.objects.filter(pk__in=listing_ids).update(
        **{columns.store_value: None, columns.pushed_value: None}
    )


def _flush_results(
    columns: _Columns,
    succeeded: list[tuple[Any, Any, int]],
    failed: list[tuple[Any, Any]],
    run: SyncRun | None = None,
) -> None:
    """Record results not yet saved. The last ones of a job that has a run are handed to the
    engine to commit with the run's success (one statement: a run shown succeeded has its results
    recorded); otherwise they are written now."""
    if not (succeeded or failed):
        return
    if connection.vendor == "postgresql":
        writes = _result_writes(columns, succeeded, failed)
        if not commit_with_success(run, writes):
            execute_ctes(writes)
        return
    with transaction.atomic():
        _record_results(columns, succeeded, failed)


def _result_writes(
    columns: _Columns, succeeded: list[tuple[Any, Any, int]], failed: list[tuple[Any, Any]]
) -> list[tuple[str, list[Any]]]:
    """PostgreSQL: the statements recording a push's results, as named data-modifying CTEs.

    A success also settles the listing's queued stock change, but only if its count is still the
    one the plan read: a change counted while the push was on the wire keeps it queued. A failure
    settles nothing, so the item goes again next run. Each part is one ``UPDATE … FROM unnest(…)``
    (a push of 100 items must not cost 100 statements, nor Django's 50-branch CASE per column);
    the values travel as array literals, which psycopg sends as one string rather than adapting
    hundreds of parameters, and the rows are found through the primary key.
    """
    now = timezone.now()
    table = Listing._meta.db_table
    writes: list[tuple[str, list[Any]]] = []
    if succeeded:
        ids = _array_literal(listing_id for listing_id, _value, _changes in succeeded)
        writes.append(
            (
                f"pushed AS (SELECT * FROM unnest(%s::uuid[], %s::{columns.sql_type}[], %s::int[]) "  # noqa: S608
                "AS v(id, value, changes))",
                [
                    ids,
                    _array_literal(value for _id, value, _changes in succeeded),
                    _array_literal(changes for _id, _value, changes in succeeded),
                ],
            )
        )
        if columns.settles:
            writes.append(
                (
                    f"settled AS (DELETE FROM {StockChange._meta.db_table} AS queued USING pushed "  # noqa: S608
                    "WHERE queued.listing_id = pushed.id AND queued.changes = pushed.changes)",
                    [],
                )
            )
        writes.append(
            (
                f'recorded AS (UPDATE "{table}" AS l SET "{columns.pushed_value}" = pushed.value, '  # noqa: S608
                f'"{columns.store_value}" = pushed.value, "{columns.pushed_at}" = %s, '
                f'"{columns.error}" = \'\', "updated_at" = %s '
                "FROM pushed WHERE l.id = pushed.id AND l.id = ANY(%s::uuid[]))",
                [now, now, ids],
            )
        )
    if failed:
        ids = _array_literal(listing_id for listing_id, _error in failed)
        writes.append(
            (
                f'refused AS (UPDATE "{table}" AS l SET "{columns.error}" = v.error '  # noqa: S608
                "FROM unnest(%s::uuid[], %s::text[]) AS v(id, error) "
                "WHERE l.id = v.id AND l.id = ANY(%s::uuid[]))",
                [ids, [error for _id, error in failed], ids],
            )
        )
    return writes


def _record_results(
    columns: _Columns, succeeded: list[tuple[Any, Any, int]], failed: list[tuple[Any, Any]]
) -> None:
    """Write a push's results now: one statement on PostgreSQL (:func:`_result_writes`),
    ``bulk_update`` elsewhere."""
    if connection.vendor == "postgresql":
        if succeeded or failed:
            execute_ctes(_result_writes(columns, succeeded, failed))
        return
    now = timezone.now()
    rows = []
    for listing_id, value, _changes in succeeded:
        rows.append(
            Listing(
                pk=listing_id,
                **{
                    columns.pushed_value: value,
                    columns.store_value: value,
                    columns.pushed_at: now,
                    columns.error: "",
                },
            )
        )
    if rows:
        Listing.objects.bulk_update(
            rows, [columns.pushed_value, columns.store_value, columns.pushed_at, columns.error]
        )
        if columns.settles:
            _settle([(listing_id, changes) for listing_id, _value, changes in succeeded])
    if failed:
        Listing.objects.bulk_update(
            [Listing(pk=pk, **{columns.error: error}) for pk, error in failed], [columns.error]
        )


def _array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ids or numbers (no quoting needed for either)."""
    return "{" + ",".join(str(value) for value in values) + "}"


def _settle(settled: Sequence[tuple[Any, int]]) -> None:
    """Delete the queued stock changes a plan found in agreement (or pushed), each only if its
    count is still the one the plan read."""
    settled = [(pk, changes) for pk, changes in settled if changes]
    if not settled:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {StockChange._meta.db_table} AS queued "  # noqa: S608
                "USING unnest(%s::uuid[], %s::int[]) AS v(id, changes) "
                "WHERE queued.listing_id = v.id AND queued.changes = v.changes",
                [_array_literal(pk for pk, _ in settled), _array_literal(n for _, n in settled)],
            )
        return
    by_count: dict[int, list[Any]] = {}
    for pk, changes in settled:
        by_count.setdefault(changes, []).append(pk)
    for changes, pks in by_count.items():
        for chunk in _chunks(pks, 5000):
            StockChange.objects.filter(listing_id__in=list(chunk), changes=changes).delete()


#: Seconds between lease renewals during a push (the lease lasts minutes; a batch takes milliseconds).
HEARTBEAT_SECONDS = 2.0


def _heartbeat_due(run: SyncRun | None) -> bool:
    """Whether :func:`_record_progress` will write (save the counts and renew the lease) now."""
    last = getattr(run, "_inventory_heartbeat", None) if run is not None else None
    return last is not None and time.monotonic() - last >= HEARTBEAT_SECONDS


def _record_progress(run: SyncRun | None, summary: PushSummary) -> None:
    """Keep the run's counts current and, every couple of seconds, save them and renew the lease
    (a long push advances visibly, and one that lost its lease to another worker stops instead of
    racing it). The engine saves the final counts when the run finishes; renewing after every
    50-item batch would double the statements of a small push for nothing."""
    if run is None:
        return
    run.fetched = summary.considered
    run.updated = summary.ok
    run.failed = summary.failed
    run.unchanged = summary.unchanged
    now = time.monotonic()
    last = getattr(run, "_inventory_heartbeat", None)
    if last is None:
        run._inventory_heartbeat = now  # type: ignore[attr-defined]  # the lease was just claimed
    elif now - last >= HEARTBEAT_SECONDS:
        heartbeat(run)
        run._inventory_heartbeat = now  # type: ignore[attr-defined]


def push_stock_for_channel(
    channel: SalesChannel, connector: Connector, run: SyncRun | None = None, *, everything: bool = False
) -> PushSummary:
    """Send the available quantity of every listing whose value changed, in the store's batches.

    ``everything`` compares every listing instead of those with unsettled changes (the reconcile).
    """
    summary = PushSummary()
    if not stock_sync_enabled(channel):
        _record_progress(run, summary)
        return summary
    plan = planned_stock(channel, everything=everything)
    summary.considered = plan.considered
    summary.unchanged = plan.considered - len(plan.pushes)
    _settle(plan.settled)
    _send(
        plan.pushes,
        connector.capabilities.stock_batch_size,
        connector.push_stock,
        lambda item: StockUpdate(
            sku=item.sku,
            remote_id=item.remote_id,
            quantity=item.value,
            remote_variant_id=item.remote_variant_id,
        ),
        _STOCK_COLUMNS,
        summary,
        run,
    )
    if not plan.pushes:
        _record_progress(run, summary)
    log.info(
        "inventory.stock.pushed channel=%s considered=%d sent=%d ok=%d failed=%d",
        channel.pk,
        summary.considered,
        summary.sent,
        summary.ok,
        summary.failed,
    )
    return summary


def push_prices_for_channel(
    channel: SalesChannel, connector: Connector, run: SyncRun | None = None
) -> PushSummary:
    """Send the channel price of every listing whose price changed, in the store's batches."""
    summary = PushSummary()
    if not price_sync_enabled(channel):
        _record_progress(run, summary)
        return summary
    plan, considered = planned_prices(channel)
    summary.considered = considered
    summary.unchanged = considered - len(plan)
    _send(
        plan,
        connector.capabilities.price_batch_size,
        connector.push_prices,
        lambda item: PriceUpdate(
            sku=item.sku, remote_id=item.remote_id, price=item.value, remote_variant_id=item.remote_variant_id
        ),
        _PRICE_COLUMNS,
        summary,
        run,
    )
    if not plan:
        _record_progress(run, summary)
    log.info(
        "inventory.prices.pushed channel=%s considered=%d sent=%d ok=%d failed=%d",
        channel.pk,
        summary.considered,
        summary.sent,
        summary.ok,
        summary.failed,
    )
    return summary


def listings_stale(channel: SalesChannel, *, now: datetime | None = None) -> bool:
    """Whether the channel's listings are due to be re-read: never read, or not since the
    reconcile interval (``INVENTORY_RECONCILE_MINUTES``, default 45, so the hourly reconcile
    always finds them stale and re-reads)."""
    minutes = int(getattr(django_settings, "INVENTORY_RECONCILE_MINUTES", DEFAULT_RECONCILE_MINUTES))
    last = Listing.objects.filter(channel=channel).aggregate(last=Max("seen_at"))["last"]
    return last is None or last < (now or timezone.now()) - timedelta(minutes=minutes)


def sync_stock(channel: SalesChannel, connector: Connector, run: SyncRun | None = None) -> PushSummary:
    """The stock job: re-read listings when stale (first run, hourly reconcile) and then compare
    every listing; otherwise look only at listings with unsettled changes. Push what differs."""
    reconcile = listings_stale(channel)
    if reconcile:
        refresh_listings(channel, connector)
    return push_stock_for_channel(channel, connector, run, everything=reconcile)


def sync_prices(channel: SalesChannel, connector: Connector, run: SyncRun | None = None) -> PushSummary:
    """The price job: the same, for prices."""
    if listings_stale(channel):
        refresh_listings(channel, connector)
    return push_prices_for_channel(channel, connector, run)
