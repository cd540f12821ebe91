"""Order download against a sandbox store over loopback, on the real database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels import sync
from channels.models import ChannelSchedule, SalesChannel, SyncRun, SyncState
from channels.services import connector_for
from orders import download
from orders.download import download_orders, insert_rows, totals_mismatch, upsert_orders
from orders.models import Order, OrderLine
from tests.factories import channel_listing_elsewhere
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_owner("alice@example.com", "Alice's Shop")[1]


def run_download(channel):
    return sync.run_channel_job(channel.pk, "orders", download_orders)


def test_orders_arrive_with_lines_and_checkpoint(alice):
    with sandbox_store("xcart", orders=30) as (app, _server):
        channel = channel_for_store(alice, app)
        run = run_download(channel)
        assert run is not None
        assert run.state == SyncState.SUCCEEDED, run.error
        stored = Order.objects.filter(channel=channel)
        assert stored.count() == app.order_count()
        assert run.created == stored.count()
        assert run.fetched >= run.created
        assert OrderLine.objects.filter(order__channel=channel).count() >= stored.count()
        order = stored.first()
        assert order.account_id == alice.pk
        assert order.placed_at.tzinfo is not None
        assert order.content_hash
        assert order.raw
        assert ChannelSchedule.objects.get(pk=channel.pk).orders_checkpoint
        # this seller keeps no product master in Storelink: no SKU is "unknown" to it
        assert not stored.filter(unknown_sku=True).exists()


def test_resync_of_unchanged_store_writes_nothing(alice):
    with sandbox_store("xcart", orders=25) as (app, _server):
        channel = channel_for_store(alice, app)
        run_download(channel)
        before = {o.pk: (o.updated_at, o.content_hash) for o in Order.objects.all()}
        line_ids = set(OrderLine.objects.values_list("pk", flat=True))
        connector = connector_for(channel)
        with CaptureQueriesContext(connection) as queries:
            result = download_orders(channel, connector)
        connector.close()
        writes = [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE", "COPY"))
        ]
        # at most the checkpoint moves (the store's clock advanced); no order or line is written
        assert all('"channels_channelschedule"' in sql and "orders_checkpoint" in sql for sql in writes), (
            writes
        )
        assert result.created == 0
        assert result.updated == 0
        assert result.unchanged == result.fetched > 0
        assert {o.pk: (o.updated_at, o.content_hash) for o in Order.objects.all()} == before
        assert set(OrderLine.objects.values_list("pk", flat=True)) == line_ids


def test_queries_per_page_are_constant(alice):
    """Pages of 50 orders and pages of 1 order cost the same number of queries."""
    with sandbox_store("xcart", orders=120) as (app, _server):
        channel = channel_for_store(alice, app)
        connector = connector_for(channel)
        pages = list(connector.fetch_orders(None))
        connector.close()
        assert len(pages) >= 2
        big = max(pages, key=lambda page: len(page.orders))
        assert len(big.orders) > 10
        with CaptureQueriesContext(connection) as first:
            upsert_orders(channel, big.orders)
        small = big.orders[:1]
        Order.objects.all().delete()
        with CaptureQueriesContext(connection) as second:
            upsert_orders(channel, small)
        if connection.vendor == "postgresql":
            assert len(first) == len(second) <= 6
        else:  # SQLite caps the parameters of one statement, so big inserts go in a few batches
            assert len(second) <= len(first) <= 10
        # changed orders: still the same number of statements however many changed
        Order.objects.update(content_hash="stale")
        with CaptureQueriesContext(connection) as third:
            result = upsert_orders(channel, big.orders)
        assert result.updated == 1
        assert result.created == len(big.orders) - 1
        assert len(third) <= 7


def test_status_change_on_store_updates_order(alice):
    with sandbox_store("xcart", orders=10) as (app, _server):
        channel = channel_for_store(alice, app)
        run_download(channel)
        order = Order.objects.filter(channel=channel).order_by("placed_at").last()
        assert order.status_code != "WND"
        with app.lock:
            cancelled = app.db.execute("SELECT id FROM status_shipping WHERE code = 'WND'").fetchone()[0]
            app.db.execute(
                "UPDATE orders SET shipping_status_id = ? WHERE order_id = ?",
                (cancelled, int(order.external_id)),
            )
        ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=None)
        run = run_download(channel)
        assert run.updated == 1
        order.refresh_from_db()
        assert order.status_code == "WND"
        assert "Will not deliver" in order.status_name
        assert not order.held_unmapped_status
        assert order.raw  # the new payload is kept
        assert run.state == SyncState.SUCCEEDED


def test_totals_mismatch_and_unknown_status_are_flagged(alice):
    from dataclasses import replace

    with sandbox_store("xcart", orders=6) as (app, _server):
        channel = channel_for_store(alice, app)
        connector = connector_for(channel)
        orders = [order for page in connector.fetch_orders(None) for order in page.orders]
        connector.close()
        good = orders[0]
        assert not totals_mismatch(good)
        off_by_a_cent = replace(orders[1], total=orders[1].total + Decimal("0.05"))  # beyond rounding
        unknown_status = replace(orders[2], status_code="ZZ", status_name="Mystery")
        result = upsert_orders(channel, [good, off_by_a_cent, unknown_status])
        assert result.created == 3
        assert result.held_statuses == {"Mystery (ZZ)": 1}
        flags = {o.external_id: o for o in Order.objects.all()}
        assert flags[good.external_id].total_mismatch is False
        assert flags[off_by_a_cent.external_id].total_mismatch is True
        assert flags[unknown_status.external_id].held_unmapped_status is True


def test_held_orders_are_reported_on_the_run(alice):
    with sandbox_store("xcart", orders=8) as (app, _server):
        channel = channel_for_store(alice, app)
        # as if the store had reported no shipping statuses when it was connected
        channel.store_facts = {**channel.store_facts, "order_statuses": [{"code": "P", "name": "Paid"}]}
        channel.settings = {**channel.settings, "processed_status": "S"}
        channel.save()
        run = run_download(channel)
        held = Order.objects.filter(channel=channel, held_unmapped_status=True)
        assert held.exists()
        assert not Order.objects.filter(
            channel=channel, status_code__in=["P", "S"], held_unmapped_status=True
        )
        assert run.state == SyncState.SUCCEEDED
        assert "held" in run.error
        assert SyncRun.objects.get(pk=run.pk).error == run.error


def test_unknown_skus_are_flagged_against_the_product_master(alice):
    from inventory.models import Product

    with sandbox_store("xcart", orders=20) as (app, _server):
        channel = channel_for_store(alice, app)
        connector = connector_for(channel)
        orders = [order for page in connector.fetch_orders(None) for order in page.orders]
        connector.close()
        skus = sorted({line.sku for order in orders for line in order.lines})
        known = skus[: len(skus) // 2]
        Product.objects.bulk_create([Product(account=alice, sku=sku, on_hand=5) for sku in known])
        # the same SKUs in another account's master do not count
        _bob_user, bob = make_owner("bob@example.com", "Bob's Shop")
        Product.objects.bulk_create([Product(account=bob, sku=sku, on_hand=5) for sku in skus])
        run_download(channel)
        for order in Order.objects.filter(channel=channel).prefetch_related("lines"):
            expected = any(line.sku not in known for line in order.lines.all())
            assert order.unknown_sku is expected, order.number
        # once the seller adds the missing products, the next download clears the flags
        Product.objects.bulk_create(
            [Product(account=alice, sku=sku, on_hand=5) for sku in skus[len(skus) // 2 :]]
        )
        ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=None)
        run = run_download(channel)
        assert run.updated > 0
        assert not Order.objects.filter(channel=channel, unknown_sku=True).exists()


def test_new_orders_move_availability_so_stock_jobs_are_requested(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    """Units in new orders are no longer available on other channels: their stock must be re-pushed."""
    from inventory import stock_queue
    from inventory.matching import create_products_from_listings, refresh_listings

    requested: list[tuple[str, str]] = []
    monkeypatch.setattr(
        stock_queue,
        "request_jobs",
        lambda channels, job, **_: requested.extend((str(channel.pk), job) for channel in channels),
    )
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(alice, app)
        unlisted = channel_listing_elsewhere(alice)
        refresh_listings(channel)
        create_products_from_listings(channel, actor=None)  # the store's SKUs, listed on it
        requested.clear()
        with django_capture_on_commit_callbacks(execute=True):
            run_download(channel)
        assert (str(channel.pk), "stock") in requested
        assert (str(unlisted.pk), "stock") not in requested

        requested.clear()
        with django_capture_on_commit_callbacks(execute=True):
            run_download(channel)  # nothing changed on the store: availability did not move
        assert (str(channel.pk), "stock") not in requested


def test_insert_rows_stores_what_django_would_store_whatever_the_python_types(alice):
    """``insert_rows`` sends plain values as they are and the rest through Django's preparation:
    a row built with strings, ints and floats where the model has UUIDs and decimals, and one built
    with the model's own types, read back alike."""
    import uuid
    from datetime import UTC, datetime

    channel = SalesChannel.objects.create(
        account=alice, platform="xcart", name="rows", store_url="http://a.test"
    )
    placed = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    common = {
        "placed_at": placed,
        "status_code": "P",
        "currency": "USD",
        "billing_address": {"name": "Ann", "city": "Zürich"},
        "shipping_address": {},
        "raw": {"id": 1, "items": [1, 2], "note": "a \\ b\tc"},
        "content_hash": "h",
    }
    typed = Order(
        id=uuid.uuid4(),
        account_id=alice.pk,
        channel_id=channel.pk,
        external_id="typed",
        subtotal=Decimal("10.50"),
        shipping=Decimal("0"),
        tax=Decimal("1.05"),
        discount=Decimal("0.00"),
        total=Decimal("11.55"),
        prices_include_tax=True,
        **common,
    )
    loose = Order(
        id=str(uuid.uuid4()),
        account_id=str(alice.pk),
        channel_id=str(channel.pk),
        external_id="loose",
        subtotal=10.5,
        shipping=0,
        tax="1.05",
        discount=Decimal("0"),
        total=11.55,
        prices_include_tax=1,
        **common,
    )
    insert_rows(Order, [typed, loose])
    insert_rows(
        OrderLine,
        [
            OrderLine(
                account_id=alice.pk,
                order_id=typed.id,
                position=0,
                sku="A-1",
                quantity=2,
                unit_price=Decimal("5.25"),
                tax=Decimal("0"),
                line_total=Decimal("10.50"),
                options=[["Size", "M"]],
            ),
            OrderLine(
                account_id=str(alice.pk),
                order_id=str(loose.id),
                position=0,
                sku="A-1",
                quantity="2",
                unit_price=5.25,
                tax=0,
                line_total="10.50",
                options=[["Size", "M"]],
            ),
        ],
    )

    fields = [
        "subtotal",
        "shipping",
        "tax",
        "discount",
        "total",
        "prices_include_tax",
        "placed_at",
        "billing_address",
        "raw",
        "account_id",
        "channel_id",
    ]
    stored = {row["external_id"]: row for row in Order.objects.values("external_id", *fields)}
    assert {name: stored["loose"][name] for name in fields} == {
        name: stored["typed"][name] for name in fields
    }
    assert stored["typed"]["total"] == Decimal("11.55")
    assert stored["typed"]["raw"] == common["raw"]
    lines = list(
        OrderLine.objects.order_by("order__external_id").values(
            "quantity", "unit_price", "tax", "line_total", "options", "sku"
        )
    )
    assert (
        lines[0]
        == lines[1]
        == {
            "quantity": 2,
            "unit_price": Decimal("5.25"),
            "tax": Decimal("0.00"),
            "line_total": Decimal("10.50"),
            "options": [["Size", "M"]],
            "sku": "A-1",
        }
    )


def test_pages_of_a_fast_store_are_written_in_batches(alice, monkeypatch):
    """Three pages, 120 orders: one write (one transaction, one checkpoint), not three."""
    monkeypatch.setattr(download, "WRITE_BATCH_SECONDS", 600.0)
    writes = []
    real_upsert = upsert_orders

    def upsert(channel, orders, **options):
        writes.append(len(orders))
        return real_upsert(channel, orders, **options)

    monkeypatch.setattr(download, "upsert_orders", upsert)
    with sandbox_store("xcart", orders=120) as (app, _server):
        channel = channel_for_store(alice, app)
        run = run_download(channel)
        assert run.state == SyncState.SUCCEEDED, run.error
        assert Order.objects.filter(channel=channel).count() == app.order_count() == 120
    assert len(writes) == 1
    assert writes[0] >= 120
    assert ChannelSchedule.objects.get(pk=channel.pk).orders_checkpoint


def test_a_store_failing_mid_download_keeps_the_pages_it_sent(alice, monkeypatch):
    from connectors.errors import TransientError

    monkeypatch.setattr(download, "WRITE_BATCH_SECONDS", 600.0)
    with sandbox_store("xcart", orders=120) as (app, _server):
        channel = channel_for_store(alice, app)
        connector = connector_for(channel)
        real_fetch = connector.fetch_orders

        def two_pages_then_fail(checkpoint):
            pages = real_fetch(checkpoint)
            yield next(pages)
            yield next(pages)
            raise TransientError("The store stopped answering.")

        connector.fetch_orders = two_pages_then_fail
        with pytest.raises(TransientError):
            download_orders(channel, connector)
        connector.close()
        kept = Order.objects.filter(channel=channel).count()
        assert 50 < kept < app.order_count()
        first_checkpoint = ChannelSchedule.objects.get(pk=channel.pk).orders_checkpoint
        assert first_checkpoint

        run = run_download(channel)  # the next run goes on from there
        assert run.state == SyncState.SUCCEEDED, run.error
        assert Order.objects.filter(channel=channel).count() == app.order_count()
