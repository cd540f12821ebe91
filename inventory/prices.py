"""Price rules: what each store's price field receives for a product of the master.

The master's price is converted between the account's tax basis and the store field's
(:class:`PriceRule`, from the platform's declaration and the seller's answers), then the listing's
multiplier and offset apply, rounded once to the currency's minor unit (:func:`channel_price`).
Also the account's "prices include tax" setting and the sentences the settings pages show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count

from accounts.models import Account, Role
from accounts.tenancy import Actor, require_actor_role
from channels.models import SalesChannel
from connectors.base import currency_places
from connectors.registry import CONNECTORS
from inventory.catalog import audit
from inventory.models import Product
from inventory.stock_queue import request_price_jobs, setting_flag


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
    declared = CONNECTORS[platform].capabilities.tax_inclusive_prices
    use_store_tax = setting_flag(settings, "use_store_tax_settings", True)
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
            audit(account, actor, "account.prices_include_tax", prices_include_tax=gross)
            request_price_jobs(account)  # every price moves where the store's basis differs
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


def on_settings_described(sender: Any, *, account: Any, platform: str, settings: Any, **kwargs: Any) -> str:
    """Receiver of :data:`channels.events.settings_described`: the price rule in one sentence."""
    rule = price_rule_for(platform, settings or {}, account)
    return describe_price_rule(rule, CONNECTORS[platform].label, example_tax_rate(account))
