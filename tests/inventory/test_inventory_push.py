"""Listings and pushes against real sandbox stores over loopback, checked from the store's side.

Every test runs for each platform whose sandbox is in the tree. What the store was sent is read
from the sandbox's ``writes()`` log and its ``stock_of`` / ``price_of``, never from what our code
says it did.
"""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.utils import timezone

from channels import sync
from channels.models import ChannelSchedule, SyncJob, SyncState
from channels.services import connector_for
from channels.sync import run_channel_job
from connectors.base import StockUpdate
from connectors.errors import RateLimited, TransientError
from inventory.availability import available_quantity, reserved_by_sku
from inventory.catalog import upsert_products
from inventory.matching import products_without_listing, refresh_listings, save_listings
from inventory.models import Listing, Product
from inventory.plans import planned_prices, planned_stock
from inventory.push import (
    PushSummary,
    push_prices_for_channel,
    push_stock_for_channel,
    sync_prices,
    sync_stock,
)
from tests.inventory.stores import SANDBOX_CASES, Store

pytestmark = [pytest.mark.django_db, pytest.mark.parametrize(("platform", "options"), SANDBOX_CASES)]


def _master_for(
    store: Store,
    account: Any,
    *,
    on_hand: int = 7,
    price: str = "12.34",
    skip: int = 0,
    match_store: bool = False,
) -> list[str]:
    """Products for every store SKU but the last ``skip`` ones, plus two the store does not have.

    ``match_store`` copies the store's own quantities and prices, so nothing differs at first (and
    nothing is pushed): stores that write variants one request at a time stay under their limits.
    """
    listings = {item.sku: item for item in store.store_listings()}
    skus = sorted(listings)
    kept = skus[: len(skus) - skip] if skip else skus
    if match_store:
        items = [
            {"sku": sku, "on_hand": listings[sku].quantity, "price": str(listings[sku].price)} for sku in kept
        ]
    else:
        items = [{"sku": sku, "on_hand": on_hand + index, "price": price} for index, sku in enumerate(kept)]
    items += [{"sku": "ONLY-IN-MASTER-1", "on_hand": 1}, {"sku": "ONLY-IN-MASTER-2", "on_hand": 2}]
    result = upsert_products(account, items, actor=None)
    assert result.ok, result.errors
    return kept


def _push_stock(store: Store) -> PushSummary:
    connector = connector_for(store.channel)
    try:
        return push_stock_for_channel(store.channel, connector)
    finally:
        connector.close()


def _push_prices(store: Store) -> PushSummary:
    connector = connector_for(store.channel)
    try:
        return push_prices_for_channel(store.channel, connector)
    finally:
        connector.close()


def _expected_stock(store: Store) -> dict[str, int]:
    plan = {}
    reserved = reserved_by_sku(store.channel.account_id)
    for listing in Listing.objects.filter(channel=store.channel, product__isnull=False).select_related(
        "product"
    ):
        plan[listing.sku] = available_quantity(
            listing.product.on_hand, reserved.get(listing.sku, 0), listing.buffer, listing.max_quantity
        )
    return plan


def test_listings_are_matched_by_sku_including_variants_with_unmatched_on_both_sides(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    store = store_factory(alice.account, platform, options, products=9)
    kept = _master_for(store, alice.account, skip=2)
    store_listings = connector_for(store.channel).list_listings()
    variant_skus = {item.sku for item in store_listings if item.remote_variant_id}

    result = refresh_listings(store.channel)

    listings = {listing.sku: listing for listing in Listing.objects.filter(channel=store.channel)}
    assert set(listings) == {item.sku for item in store_listings if item.sku}
    assert result.matched == len(kept)
    for item in store_listings:
        listing = listings[item.sku]
        assert listing.remote_id == item.remote_id
        assert listing.remote_variant_id == item.remote_variant_id
        assert listing.store_quantity == item.quantity
    if variant_skus:  # variants/options are listings of their own, matched by their own SKU
        matched_variants = [sku for sku in variant_skus if sku in kept]
        assert matched_variants, "the seed has variants; some must be in the master"
        for sku in matched_variants:
            assert listings[sku].product.sku == sku
            assert listings[sku].remote_variant_id
    unmatched = set(Listing.objects.unmatched().filter(channel=store.channel).values_list("sku", flat=True))
    assert unmatched == set(listings) - set(kept)
    assert len(unmatched) == 2
    missing = set(products_without_listing(store.channel).values_list("sku", flat=True))
    assert missing == {"ONLY-IN-MASTER-1", "ONLY-IN-MASTER-2"}

    # A product added later for a waiting listing is linked at once, without another read.
    late_sku = sorted(unmatched)[0]
    upsert_products(alice.account, [{"sku": late_sku, "on_hand": 3}], actor=None)
    assert Listing.objects.get(channel=store.channel, sku=late_sku).product.sku == late_sku

    # Overrides survive a re-read; an item gone from the store is marked removed, not deleted.
    Listing.objects.filter(channel=store.channel, sku=kept[0]).update(buffer=4, max_quantity=9)
    save_listings(store.channel, [item for item in store_listings if item.sku != kept[1]])
    first = Listing.objects.get(channel=store.channel, sku=kept[0])
    assert (first.buffer, first.max_quantity, first.removed_at) == (4, 9, None)
    assert Listing.objects.get(channel=store.channel, sku=kept[1]).removed_at is not None


def test_first_push_sets_every_store_quantity_and_price_to_the_computed_value(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    # A gross master (12.34 with tax) to stores whose price field is net: the tax comes out.
    store = store_factory(alice.account, platform, options, products=9)
    type(alice.account).objects.filter(pk=alice.account.pk).update(prices_include_tax=True)
    kept = _master_for(store, alice.account)
    Product.objects.filter(account=alice.account, sku=kept[0]).update(tax_rate=Decimal("19"))
    refresh_listings(store.channel)
    Listing.objects.filter(channel=store.channel, sku=kept[1]).update(buffer=2)
    Listing.objects.filter(channel=store.channel, sku=kept[2]).update(max_quantity=1, price_multiplier="2")

    stock = _push_stock(store)
    prices = _push_prices(store)

    assert stock.failed == prices.failed == 0
    expected = _expected_stock(store)
    for sku in kept:
        assert store.app.stock_of(sku) == expected[sku], sku
    assert store.app.stock_of(kept[1]) == 7 + 1 - 2
    assert store.app.stock_of(kept[2]) == 1
    assert store.app.price_of(kept[0]) == Decimal("10.37")  # 12.34 / 1.19: net, as the store keeps it
    assert store.app.price_of(kept[2]) == Decimal("24.68")  # tax rate 0: only the rule (× 2)
    assert store.app.price_of(kept[3]) == Decimal("12.34")
    for listing in Listing.objects.filter(channel=store.channel, product__isnull=False):
        # Pushed where the store differed; left alone where it already held the right value.
        assert listing.last_pushed_quantity in (expected[listing.sku], None)
        assert listing.store_quantity == expected[listing.sku]
        assert listing.last_error == ""
    assert Listing.objects.filter(channel=store.channel, last_pushed_at__isnull=False).count() == stock.sent

    # Nothing changed: a second run sends nothing at all.
    store.app.clear_writes()
    assert _push_stock(store).sent == 0
    assert _push_prices(store).sent == 0
    assert store.app.writes() == []


def test_only_changed_listings_are_sent(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    store = store_factory(alice.account, platform, options, products=60)
    kept = _master_for(store, alice.account, match_store=True)
    refresh_listings(store.channel)
    assert _push_stock(store).sent == 0  # the master starts equal to the store
    assert _push_prices(store).sent == 0
    store.app.clear_writes()

    changed = random.Random(3).sample(kept, max(1, len(kept) // 100 + 1))  # ~1 % (at least one)
    repriced = [sku for sku in kept if sku not in changed][:1]
    result = upsert_products(
        alice.account,
        [{"sku": sku, "on_hand": 500 + index} for index, sku in enumerate(changed)]
        + [{"sku": sku, "price": "99.99"} for sku in repriced],
        actor=None,
    )
    assert result.updated == len(changed) + len(repriced)

    stock = _push_stock(store)
    prices = _push_prices(store)

    stock_writes = store.written("stock")
    price_writes = store.written("price")
    assert stock.sent == len(changed)
    assert prices.sent == len(repriced)
    assert len(stock_writes) == len(changed)
    assert len(price_writes) == len(repriced)
    for index, sku in enumerate(changed):
        assert store.app.stock_of(sku) == 500 + index
    assert store.app.price_of(repriced[0]) == Decimal("99.99")


def test_a_refused_item_is_recorded_and_retried_while_the_rest_succeed(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    store = store_factory(alice.account, platform, options, products=9)
    kept = _master_for(store, alice.account, on_hand=30)
    refresh_listings(store.channel)
    broken = kept[0]
    Listing.objects.filter(channel=store.channel, sku=broken).update(
        remote_id="987654"
    )  # gone from the store

    run = run_channel_job(store.channel.pk, SyncJob.STOCK, push_stock_for_channel)

    assert run is not None
    assert run.state == SyncState.SUCCEEDED  # one refused item does not fail the channel's job
    assert run.failed == 1
    assert run.updated == len(kept) - 1
    listing = Listing.objects.get(channel=store.channel, sku=broken)
    assert listing.last_error
    assert listing.last_pushed_quantity is None
    for sku in kept[1:]:
        assert Listing.objects.get(channel=store.channel, sku=sku).last_error == ""

    # Next run: only the failed item is looked at and sent again (the rest are settled).
    store.app.clear_writes()
    again = run_channel_job(store.channel.pk, SyncJob.STOCK, push_stock_for_channel)
    assert again is not None
    assert (again.fetched, again.updated, again.failed) == (1, 0, 1)
    assert store.written("stock") == []

    # Once the seller fixes it (the store lists it again), the retry succeeds and clears the error.
    refresh_listings(store.channel)
    fixed = run_channel_job(store.channel.pk, SyncJob.STOCK, push_stock_for_channel)
    assert fixed is not None
    assert fixed.failed == 0
    listing.refresh_from_db()
    assert listing.last_error == ""
    assert store.app.stock_of(broken) == listing.last_pushed_quantity


def test_fault_run_ends_with_the_store_equal_to_the_computed_value(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any], settings: Any
) -> None:
    """20 % of requests fail (5xx, timeouts, garbage, truncated replies), reads and writes alike,
    writes never retried by the HTTP layer: runs fail and are run again, as the Celery task would, until the
    store holds exactly what Storelink computes."""
    settings.STORE_HTTP_TIMEOUT = 0.5
    settings.STORE_HTTP_MAX_RETRIES = 2  # reads are retried by the HTTP layer
    store = store_factory(alice.account, platform, options, products=12)
    injected: list[str] = []
    draw = store.server._draw_failure

    def counting_draw(request: Any) -> str | None:
        failure = draw(request)
        if failure:
            injected.append(failure)
        return failure

    store.server._draw_failure = counting_draw  # type: ignore[method-assign]
    kept = _master_for(store, alice.account, match_store=True)
    refresh_listings(store.channel)
    httpx.post(
        f"{store.server.url}/__sandbox__/faults",
        json={
            "error_rate": 0.2,
            "kinds": ["500", "timeout", "garbage", "truncated"],
            "timeout_seconds": 0.6,
            "seed": 5,
        },
        timeout=5,
    ).raise_for_status()
    rng = random.Random(11)
    failures: list[str] = []
    for _round in range(3):
        upsert_products(
            alice.account,
            [
                {"sku": sku, "on_hand": rng.randint(0, 90), "price": f"{rng.randint(100, 9999) / 100:.2f}"}
                for sku in rng.sample(kept, 6)
            ],
            actor=None,
        )
        Listing.objects.filter(channel=store.channel).update(seen_at=None)  # re-read through the faults too
        for _attempt in range(40):
            runs = []
            for job, work in ((SyncJob.STOCK, sync_stock), (SyncJob.PRICES, sync_prices)):
                try:
                    run = run_channel_job(store.channel.pk, job, work)
                except (TransientError, RateLimited) as exc:  # the Celery task retries these
                    failures.append(type(exc).__name__)
                    continue
                assert run is not None
                runs.append(run)
                if run.state == SyncState.FAILED or run.failed:
                    failures.append(run.error or f"{run.failed} items")
            converged = len(runs) == 2 and all(
                run.state == SyncState.SUCCEEDED and not run.failed for run in runs
            )
            if (
                converged
                and not planned_stock(store.channel, everything=True).pushes
                and not planned_prices(store.channel)[0]
            ):
                break
    httpx.post(
        f"{store.server.url}/__sandbox__/faults", json={"error_rate": 0.0}, timeout=5
    ).raise_for_status()

    assert len(injected) >= 3, f"only {len(injected)} faults were injected; the run proves nothing"
    expected = _expected_stock(store)
    for sku in kept:
        product = Product.objects.get(account=alice.account, sku=sku)
        assert store.app.stock_of(sku) == expected[sku], sku
        assert store.app.price_of(sku) == product.price, sku
    # And our records agree with the store: nothing is left to push.
    assert planned_stock(store.channel, everything=True).pushes == []
    assert planned_stock(store.channel).pushes == []
    assert planned_prices(store.channel)[0] == []


def test_the_hourly_reconcile_rereads_the_store_and_undoes_edits_made_there(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    store = store_factory(alice.account, platform, options, products=6)
    kept = _master_for(store, alice.account, on_hand=20)
    refresh_listings(store.channel)
    _push_stock(store)
    sku = kept[0]
    expected = _expected_stock(store)[sku]
    listing = Listing.objects.get(channel=store.channel, sku=sku)
    # Someone edits the quantity in the store's own admin (here: through the store's API).
    connector = connector_for(store.channel)
    try:
        edit = StockUpdate(
            sku=sku,
            remote_id=listing.remote_id,
            quantity=expected + 13,
            remote_variant_id=listing.remote_variant_id,
        )
        assert connector.push_stock([edit])[0].ok
    finally:
        connector.close()
    assert store.app.stock_of(sku) == expected + 13

    # Between reconciles nothing looks different to us: no request is made.
    store.app.clear_writes()
    run = run_channel_job(store.channel.pk, SyncJob.STOCK, sync_stock)
    assert run is not None
    assert (run.updated, store.written("stock")) == (0, [])

    # An hour later the reconcile (the same job, its listings now stale) re-reads and corrects.
    Listing.objects.filter(channel=store.channel).update(seen_at=timezone.now() - timedelta(hours=1))
    run = run_channel_job(store.channel.pk, SyncJob.STOCK, sync_stock)
    assert run is not None
    assert run.updated == 1
    assert store.app.stock_of(sku) == expected


def test_a_push_whose_reply_was_lost_is_sent_again_even_when_the_value_comes_back(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    """The store applied a stock write whose reply never came; the value then returns to what the
    store held before. Storelink must not believe the store still holds that old value."""
    store = store_factory(alice.account, platform, options, products=6)
    kept = _master_for(store, alice.account, match_store=True)
    refresh_listings(store.channel)
    sku = kept[0]
    product = Product.objects.get(account=alice.account, sku=sku)
    before = store.app.stock_of(sku)
    upsert_products(alice.account, [{"sku": sku, "on_hand": before + 2}], actor=None)
    store.app.faults.update({"drop_reply_after_write": 20, "timeout_seconds": 0.2})
    with contextlib.suppress(TransientError, RateLimited):  # the task would retry: what counts is
        _push_stock(store)  # what Storelink now believes the store holds
    assert store.app.stock_of(sku) == before + 2  # the store did apply it
    store.app.faults.update({"drop_reply_after_write": 0})

    upsert_products(alice.account, [{"sku": sku, "on_hand": product.on_hand}], actor=None)
    _push_stock(store)
    assert store.app.stock_of(sku) == before


def test_a_push_whose_reply_cannot_be_read_is_tried_again_without_a_new_change(
    alice: Any, store_factory: Any, platform: str, options: dict[str, Any]
) -> None:
    """A store write answered with something that is not the API's reply (a proxy's HTML page, a
    cut-off body) fails the run; the job must come due again by itself, or the store keeps the old
    stock until the next change or the hourly reconcile."""
    store = store_factory(alice.account, platform, options, products=6)
    kept = _master_for(store, alice.account, on_hand=25)
    refresh_listings(store.channel)
    store.app.faults.update({"error_rate": 1.0, "kinds": ["garbage"], "fail_writes_only": True})
    before = timezone.now()
    run = run_channel_job(store.channel.pk, SyncJob.STOCK, push_stock_for_channel)
    assert run is not None
    assert run.state == SyncState.FAILED, run.error

    due_at = ChannelSchedule.objects.get(pk=store.channel.pk).stock_due_at
    assert due_at is not None
    assert before < due_at < timezone.now() + timedelta(seconds=sync.RETRY_BASE_SECONDS * 1.2 + 1)

    store.app.faults.update({"error_rate": 0.0})
    again = run_channel_job(store.channel.pk, SyncJob.STOCK, push_stock_for_channel)
    assert again is not None
    assert again.state == SyncState.SUCCEEDED, again.error
    for index, sku in enumerate(kept):
        assert store.app.stock_of(sku) == 25 + index
