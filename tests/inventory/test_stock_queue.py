"""The stock job's work queue: every change to availability queues the listings it moves, the job
looks only at those, and a change made while a push is on the wire is never lost.

A fake connector stands in for the store (the sandbox tests in ``test_inventory_push`` cover the
wire); what is under test is which listings the job looks at and what it leaves queued.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone

from channels import services as channel_services
from connectors import base
from connectors.base import Listing as StoreListing
from connectors.base import PushResult, StockUpdate
from inventory.availability import reserved_by_sku
from inventory.catalog import upsert_products
from inventory.matching import save_listings, update_listing_overrides
from inventory.models import Listing, Product, StockChange
from inventory.push import push_stock_for_channel
from inventory.stock_queue import reservations_changed
from orders.download import upsert_orders
from tests.factories import SalesChannelFactory
from tests.inventory.test_inventory_availability import _order

pytestmark = pytest.mark.django_db


class FakeStore:
    """Accepts every update; ``during_push`` runs while the first batch is "on the wire"."""

    def __init__(self, during_push: Any = None) -> None:
        self.capabilities = SimpleNamespace(stock_batch_size=50)
        self.sent: list[tuple[str, int]] = []
        self.during_push = during_push

    def push_stock(self, updates: list[StockUpdate]) -> list[PushResult]:
        if self.during_push is not None:
            self.during_push()
            self.during_push = None
        self.sent += [(update.sku, update.quantity) for update in updates]
        return [PushResult(sku=update.sku, remote_id=update.remote_id, ok=True) for update in updates]


def _read(channel: Any, stock: dict[str, int]) -> None:
    """The store lists these SKUs with these quantities (what a listing refresh saves)."""
    save_listings(
        channel,
        [
            StoreListing(sku=sku, remote_id=str(index + 1), quantity=quantity, price=1, name=sku)
            for index, (sku, quantity) in enumerate(sorted(stock.items()))
        ],
    )


def _queued(channel: Any) -> set[str]:
    return set(StockChange.objects.filter(channel=channel).values_list("listing__sku", flat=True))


def _settled_channel(alice: Any, skus: dict[str, int], **settings: Any) -> Any:
    """A channel whose store already holds what the master says: nothing to send, queue empty."""
    channel = SalesChannelFactory(account=alice.account, settings={"stock_sync": True, **settings})
    upsert_products(
        alice.account, [{"sku": sku, "on_hand": on_hand} for sku, on_hand in skus.items()], actor=None
    )
    _read(channel, skus)
    assert _queued(channel) == set(skus)  # new matched listings are looked at once
    first = FakeStore()
    push_stock_for_channel(channel, first)
    assert first.sent == []
    assert _queued(channel) == set()
    return channel


def test_a_product_change_queues_its_listings_on_every_channel_and_only_those_are_looked_at(
    alice: Any,
) -> None:
    stock = {f"SKU-{n}": 10 for n in range(20)}
    first = _settled_channel(alice, stock)
    second = _settled_channel(alice, stock)

    upsert_products(
        alice.account,
        [{"sku": "SKU-3", "on_hand": 4}, {"sku": "SKU-7", "on_hand": 10}, {"sku": "SKU-9", "name": "x"}],
        actor=None,
    )
    # Unchanged quantity (SKU-7) and a name change (SKU-9) move nothing.
    assert _queued(first) == _queued(second) == {"SKU-3"}

    store = FakeStore()
    summary = push_stock_for_channel(first, store)
    assert store.sent == [("SKU-3", 4)]
    assert (summary.considered, summary.sent) == (1, 1)
    assert _queued(first) == set()
    assert _queued(second) == {"SKU-3"}  # each channel settles its own


def test_a_change_made_while_the_push_is_on_the_wire_stays_queued_and_goes_next_run(alice: Any) -> None:
    channel = _settled_channel(alice, {"MUG": 10, "CAP": 10})
    upsert_products(alice.account, [{"sku": "MUG", "on_hand": 8}], actor=None)

    def sale_meanwhile() -> None:
        upsert_products(alice.account, [{"sku": "MUG", "on_hand": 7}], actor=None)

    racing = FakeStore(during_push=sale_meanwhile)
    push_stock_for_channel(channel, racing)
    assert racing.sent == [("MUG", 8)]  # the value read before the sale
    assert _queued(channel) == {"MUG"}  # ... so the sale is not settled by it

    after = FakeStore()
    push_stock_for_channel(channel, after)
    assert after.sent == [("MUG", 7)]
    assert _queued(channel) == set()


def test_a_refused_item_stays_queued_and_an_item_already_in_place_is_settled_without_sending(
    alice: Any,
) -> None:
    channel = _settled_channel(alice, {"MUG": 10, "CAP": 10})
    upsert_products(alice.account, [{"sku": "MUG", "on_hand": 3}], actor=None)
    upsert_products(alice.account, [{"sku": "CAP", "on_hand": 9}], actor=None)
    upsert_products(alice.account, [{"sku": "CAP", "on_hand": 10}], actor=None)  # back again

    class RefusesMug(FakeStore):
        def push_stock(self, updates: list[StockUpdate]) -> list[PushResult]:
            self.sent += [(update.sku, update.quantity) for update in updates]
            return [
                PushResult(sku=u.sku, remote_id=u.remote_id, ok=u.sku != "MUG", error="no such product")
                for u in updates
            ]

    refusing = RefusesMug()
    summary = push_stock_for_channel(channel, refusing)
    assert refusing.sent == [("MUG", 3)]
    assert (summary.considered, summary.unchanged, summary.failed) == (2, 1, 1)
    assert _queued(channel) == {"MUG"}


def test_every_writer_that_moves_availability_queues_the_listings_it_moves(alice: Any) -> None:
    skus = {"MUG": 10, "CAP": 10, "LAMP": 10, "DESK": 10}
    channel = _settled_channel(alice, skus, processed_status="3")
    other = _settled_channel(alice, skus, processed_status="3")
    mug = Listing.objects.get(channel=channel, sku="MUG")

    # The seller's buffer on one listing: that listing only.
    update_listing_overrides(mug, actor=None, buffer=2)
    assert _queued(channel) == {"MUG"}
    assert _queued(other) == set()
    push_stock_for_channel(channel, FakeStore())
    held = {**skus, "MUG": 8}  # what the store now holds
    update_listing_overrides(mug, actor=None, price_multiplier="1.5")  # a price rule: not stock
    assert _queued(channel) == set()

    # Orders: the SKUs whose reservations moved, on every channel of the account.
    reservations_changed(alice.account, ["CAP", "UNKNOWN"])
    assert _queued(channel) == _queued(other) == {"CAP"}
    for each in (channel, other):
        push_stock_for_channel(each, FakeStore())

    # The store says it now holds another quantity (an edit on the store, a sale there).
    _read(channel, {**held, "LAMP": 4})
    assert _queued(channel) == {"LAMP"}
    assert _queued(other) == set()
    push_stock_for_channel(channel, FakeStore())

    # A listing that waited for its product is linked when the product is created.
    _read(channel, {**held, "NEW": 5})
    assert _queued(channel) == set()  # NEW is unmatched: nothing to compute yet
    upsert_products(alice.account, [{"sku": "NEW", "on_hand": 1}], actor=None)
    assert _queued(channel) == {"NEW"}
    push_stock_for_channel(channel, FakeStore())

    # A new "shipped" status changes which orders reserve: every listing of the account.
    channel_services.update_channel_settings(channel, actor=None, settings={"processed_status": "5"})
    assert _queued(channel) == {*skus, "NEW"}
    assert _queued(other) == set(skus)
    for each in (channel, other):
        push_stock_for_channel(each, FakeStore())

    # A removed channel's open orders stop reserving: every listing of the others.
    leaving = SalesChannelFactory(account=alice.account)
    channel_services.remove_channel(leaving, actor=None)
    assert _queued(other) == set(skus)


def test_an_order_download_queues_the_skus_of_new_and_changed_orders_old_lines_included(alice: Any) -> None:
    channel = _settled_channel(alice, {"MUG": 10, "CAP": 10, "LAMP": 10})
    order = _order(channel, "A1", "1", [("1", "MUG", 2), ("2", "CAP", 1)])
    StockChange.objects.all().delete()

    def canonical(lines: list[tuple[str, str, int]], status: str = "1") -> base.Order:
        return base.Order(
            external_id="A1",
            number="A1",
            placed_at=order.placed_at,
            updated_at=timezone.now(),
            status_code=status,
            status_name=status,
            currency="EUR",
            subtotal=Decimal(sum(q for *_x, q in lines)),
            shipping=Decimal(0),
            tax=Decimal(0),
            discount=Decimal(0),
            total=Decimal(sum(q for *_x, q in lines)),
            lines=tuple(
                base.OrderLine(
                    external_line_id=line_id,
                    sku=sku,
                    name=sku,
                    quantity=q,
                    unit_price=Decimal(1),
                    line_total=Decimal(q),
                )
                for line_id, sku, q in lines
            ),
        )

    # The store re-SKUs one line: the old SKU stops reserving, the new one starts.
    result = upsert_orders(channel, [canonical([("1", "MUG", 2), ("2", "LAMP", 1)])], check_skus=True)
    assert result.updated == 1
    assert result.changed_skus == {"MUG", "CAP", "LAMP"}
    again = upsert_orders(channel, [canonical([("1", "MUG", 2), ("2", "LAMP", 1)])], check_skus=True)
    assert (again.unchanged, again.changed_skus) == (1, set())


def test_the_reconcile_compares_everything_and_catches_a_change_nobody_queued(alice: Any) -> None:
    channel = _settled_channel(alice, {"MUG": 10, "CAP": 10})
    Product.objects.filter(account=alice.account, sku="CAP").update(on_hand=6)  # behind the services' back
    quiet = FakeStore()
    push_stock_for_channel(channel, quiet)
    assert quiet.sent == []  # not queued, so not looked at ...

    thorough = FakeStore()
    summary = push_stock_for_channel(channel, thorough, everything=True)
    assert thorough.sent == [("CAP", 6)]  # ... until the reconcile compares every listing
    assert summary.considered == 2
    assert _queued(channel) == set()


def test_reservations_for_a_list_of_skus_match_the_whole_account_computation(alice: Any) -> None:
    first = SalesChannelFactory(account=alice.account, settings={"processed_status": "3"})
    second = SalesChannelFactory(account=alice.account, platform="xcart", settings={"processed_status": "S"})
    _order(first, "A1", "1", [("1", "MUG", 2), ("2", "CAP", 1)])
    _order(first, "A2", "3", [("1", "MUG", 50)])  # shipped
    _order(second, "X1", "P", [("1", "MUG", 3), ("2", "it's, {odd}", 4)])
    _order(second, "X2", "D", [("1", "CAP", 9)])  # delivered
    _order(second, "X3", "S", [("1", "CAP", 9)], held_unmapped_status=True)
    apps.get_model("orders", "Shipment").objects.create(
        account_id=alice.account.pk,
        order=_order(first, "A3", "1", [("1", "CAP", 5)]),
        channel_id=first.pk,
        lines=[{"external_line_id": "1", "quantity": 2}],
        state="confirmed",
    )
    whole = reserved_by_sku(alice.account)
    assert whole == {"MUG": 5, "CAP": 1 + 9 + 3, "it's, {odd}": 4}
    for skus in (["MUG"], ["CAP", "NONE"], ["it's, {odd}"], list(whole)):
        assert reserved_by_sku(alice.account, skus) == {s: whole[s] for s in skus if s in whole}


def test_queued_skus_with_open_orders_are_pushed_net_of_what_those_orders_reserve(alice: Any) -> None:
    channel = _settled_channel(alice, {"MUG": 10, "CAP": 10}, processed_status="3")
    _order(channel, "A1", "1", [("1", "MUG", 3)])  # open: reserves 3
    _order(channel, "A2", "3", [("1", "CAP", 4)])  # already shipped: reserves nothing
    reservations_changed(alice.account, ["MUG", "CAP"])
    store = FakeStore()
    push_stock_for_channel(channel, store)
    assert store.sent == [("MUG", 7)]
    assert _queued(channel) == set()


def test_a_job_records_its_results_with_its_success(alice: Any) -> None:
    from channels.models import SyncJob, SyncState
    from channels.sync import run_channel_job

    channel = _settled_channel(alice, {"MUG": 10})
    upsert_products(alice.account, [{"sku": "MUG", "on_hand": 6}], actor=None)
    store = FakeStore()

    def work(channel: Any, _connector: Any, run: Any) -> None:
        push_stock_for_channel(channel, store, run)

    run = run_channel_job(channel.pk, SyncJob.STOCK, work)
    assert run is not None
    assert run.state == SyncState.SUCCEEDED
    assert (run.fetched, run.updated) == (1, 1)
    assert Listing.objects.get(channel=channel, sku="MUG").last_pushed_quantity == 6
    assert _queued(channel) == set()
