"""The product master: products by SKU, validated and written in bulk.

:func:`upsert_products` is the one writer of the product master, for one product from a form or
10,000 from a warehouse in one API call: every item is validated first, nothing is saved when any
item is invalid, and the write is a constant number of queries whatever the size. Single edits,
renames and deletions go through here too, and every change leaves an audit row
(:class:`~inventory.models.InventoryEvent`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import Account, ApiKey, Role
from accounts.tenancy import Actor, actor_user, require_actor_role
from channels.events import announce_product_master_changed
from connectors.text import unsafe_character_message
from inventory.models import PRICE_PLACES, SKU_MAX_LENGTH, InventoryEvent, Listing, Product
from inventory.stock_queue import mark_stock_changed, request_price_jobs, request_stock_jobs

log = logging.getLogger("storelink.inventory")


#: One bulk upsert call accepts at most this many items (the API's documented limit).
MAX_BULK_ITEMS = 10_000
MAX_QUANTITY = 1_000_000_000
MAX_PRICE = Decimal("9999999999.9999")
MAX_TAX_RATE = Decimal("100")


PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_PLACES)


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


def clean_quantity(value: Any) -> int:
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


def clean_decimal(value: Any, *, maximum: Decimal, label: str) -> Decimal:
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
    if number != number.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP):
        raise ValueError(f"Use at most {PRICE_PLACES} decimal places.")
    return number.quantize(PRICE_QUANTUM)


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
            values["on_hand"] = clean_quantity(raw.get("on_hand"))
        except ValueError as exc:
            errors["on_hand"] = [str(exc)]
    if "price" in raw:
        if raw.get("price") is None or raw.get("price") == "":
            values["price"] = None
        else:
            try:
                values["price"] = clean_decimal(raw.get("price"), maximum=MAX_PRICE, label="Price")
            except ValueError as exc:
                errors["price"] = [str(exc)]
    if "tax_rate" in raw:
        try:
            values["tax_rate"] = clean_decimal(raw.get("tax_rate"), maximum=MAX_TAX_RATE, label="Tax rate")
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


def audit(account: Account, actor: Actor, action: str, **detail: Any) -> None:
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
    priced: list[str] = []  # SKUs whose channel prices moved
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
        stock_channels: set[Any] = set()  # channels whose listings' availability moved
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
                if product.price is not None:
                    priced.append(item.sku)
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
                moved_skus.append(item.sku)
            if {"price", "tax_rate"} & changes.keys():
                priced.append(item.sku)
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
            stock_channels |= _link_listings(account, new_skus)
            _product_master_changed(account, new_skus)
        if moved_skus:
            stock_channels |= mark_stock_changed(
                Listing.objects.filter(account=account, sku__in=moved_skus, product__isnull=False)
            )
        if to_write:
            audit(
                account,
                actor,
                "products.upserted",
                created=result.created,
                updated=result.updated,
                unchanged=result.unchanged,
                skus=[p.sku for p in to_write[:20]],
            )
            # Jobs only where something moved: the channels whose listings were just marked, and
            # for prices those listing a product whose price changed; one request per channel.
            if new_skus or moved_skus:
                request_stock_jobs(account, stock_channels)
            if priced:
                request_price_jobs(account, priced)
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
        stock_channels = _link_listings(account, [fresh.sku])
        _product_master_changed(account, [old_sku, fresh.sku])
        audit(account, actor, "product.renamed", sku_from=old_sku, sku_to=fresh.sku)
        # The old SKU's listings are unmatched now and no longer pushed; the new SKU's are.
        request_stock_jobs(account, stock_channels)
        if fresh.price is not None:
            request_price_jobs(account, [fresh.sku])
    return fresh


def delete_product(product: Product, *, actor: Actor) -> None:
    """Remove a SKU from the master; its listings stay (unmatched) and are no longer pushed."""
    require_actor_role(actor, product.account, Role.MEMBER, doing="delete products")
    with transaction.atomic():
        audit(product.account, actor, "product.deleted", sku=product.sku)
        sku = product.sku
        product.delete()
        _product_master_changed(product.account, [sku])


def _product_master_changed(account: Account, skus: Sequence[str]) -> None:
    """Orders naming these SKUs are re-judged for ``unknown_sku`` (one UPDATE, in this transaction).

    When these are the account's only products the master was empty before, and no order had been
    judged against it yet: all of them are.
    """
    first = not Product.objects.filter(account=account).exclude(sku__in=list(skus)).exists()
    announce_product_master_changed(account.pk, skus, everything=first)


def _link_listings(account: Account, skus: Sequence[str]) -> set[Any]:
    """Attach waiting (unmatched) listings of these SKUs to their new products, in one UPDATE;
    returns the channels whose listings were linked (their stock moved)."""
    product_id = Product.objects.filter(account_id=OuterRef("account_id"), sku=OuterRef("sku")).values("id")[
        :1
    ]
    linked = Listing.objects.filter(account=account, product__isnull=True, sku__in=list(skus)).update(
        product_id=Subquery(product_id)
    )
    if not linked:
        return set()
    return mark_stock_changed(
        Listing.objects.filter(account=account, sku__in=list(skus), product__isnull=False)
    )
