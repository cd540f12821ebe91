"""Shipments: recording (quantities, idempotency), confirmation on a sandbox store exactly once,
retries after transient failures, permanent failures, and a 20% fault run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import Membership, Role, User
from channels import sync
from channels.models import ChannelSchedule, SyncState
from orders import shipments
from orders.download import download_orders
from orders.models import Order, Shipment, ShipmentState
from orders.shipments import (
    ShipmentError,
    _claim,
    confirm_pending_shipments,
    record_shipment,
    retry_shipment,
    unshipped_quantities,
)
from tests.orders.factories import channel_for_store, make_owner, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_owner("alice@example.com", "Alice's Shop")


def download(channel):
    run = sync.run_channel_job(channel.pk, "orders", download_orders)
    assert run.state == SyncState.SUCCEEDED, run.error
    return run


def confirm(channel):
    return sync.run_channel_job(channel.pk, "shipments", confirm_pending_shipments)


def tracking_writes(app, external_id):
    return [w for w in app.writes() if w["kind"] == "tracking" and w["key"] == str(external_id)]


def multi_line_order(channel) -> Order:
    for order in Order.objects.filter(channel=channel).prefetch_related("lines"):
        if sum(line.quantity for line in order.lines.all()) >= 2:
            return order
    raise AssertionError("the sandbox seeded no order with two units")


def test_shipment_confirmed_exactly_once_on_the_store(alice, django_capture_on_commit_callbacks):
    user, account = alice
    with sandbox_store("xcart", orders=12) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            shipment, created = record_shipment(
                order, actor=user, carrier="UPS", tracking_numbers=["1Z999", "1Z998"]
            )
        assert created
        assert len(callbacks) == 1  # the confirmation job is enqueued only once the row is committed
        assert shipment.state == ShipmentState.PENDING
        assert not shipment.is_partial
        assert shipment.created_by == user
        app.clear_writes()
        run = confirm(channel)
        assert run.state == SyncState.SUCCEEDED
        assert run.updated == 1
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.CONFIRMED
        assert shipment.confirmed_at is not None
        assert shipment.attempts == 1
        assert sorted(app.tracking_numbers(order.external_id)) == ["1Z998", "1Z999"]
        assert app.order_status(order.external_id) == channel.settings["processed_status"]
        first_writes = app.writes()
        assert first_writes
        # a second run (a duplicate message, a second dispatcher) confirms nothing again
        again = confirm(channel)
        assert again.fetched == 0
        assert app.writes() == first_writes


def test_claimed_shipment_is_not_confirmed_by_another_worker(alice):
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["T-1"])
        Shipment.objects.filter(pk=shipment.pk).update(claimed_until=timezone.now() + timedelta(minutes=5))
        app.clear_writes()
        run = confirm(channel)
        assert run.fetched == 0
        assert app.writes() == []
        assert Shipment.objects.get(pk=shipment.pk).state == ShipmentState.PENDING


def test_retrying_a_pending_shipment_keeps_the_running_workers_claim(alice):
    """ "Retry" on a shipment a worker is confirming right now only skips its back-off; clearing
    the claim would let a second worker send the same tracking number again."""
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["T-2"])
        claimed_until = timezone.now() + timedelta(minutes=5)
        Shipment.objects.filter(pk=shipment.pk).update(
            claimed_until=claimed_until, attempts=3, next_attempt_at=timezone.now() + timedelta(hours=1)
        )
        retried = retry_shipment(shipment, actor=user)
        assert retried.claimed_until == claimed_until
        assert retried.attempts == 3
        assert retried.next_attempt_at is None
        app.clear_writes()
        assert confirm(channel).fetched == 0
        assert app.writes() == []


def test_retry_reads_the_state_under_the_lock(alice):
    """A stale copy that still says "failed" cannot put a confirmed shipment back to pending."""
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["T-3"])
        stale = Shipment.objects.get(pk=shipment.pk)
        stale.state = ShipmentState.FAILED
        Shipment.objects.filter(pk=shipment.pk).update(state=ShipmentState.CONFIRMED)
        with pytest.raises(ShipmentError, match="already confirmed"):
            retry_shipment(stale, actor=user)
        assert Shipment.objects.get(pk=shipment.pk).state == ShipmentState.CONFIRMED


def test_partial_shipments_and_quantity_checks(alice):
    user, account = alice
    with sandbox_store("xcart", orders=30) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = multi_line_order(channel)
        lines = list(order.lines.all())
        first = lines[0]
        part, _ = record_shipment(
            order,
            actor=user,
            tracking_numbers="P-1",
            lines=[{"external_line_id": first.external_line_id, "quantity": 1}],
        )
        assert part.is_partial
        assert part.lines == [{"external_line_id": first.external_line_id, "quantity": 1}]
        with pytest.raises(ShipmentError, match="left to ship"):
            record_shipment(
                order,
                actor=user,
                tracking_numbers="P-2",
                lines=[{"external_line_id": first.external_line_id, "quantity": first.quantity}],
            )
        with pytest.raises(ShipmentError, match="no line"):
            record_shipment(
                order, actor=user, tracking_numbers="P-3", lines=[{"external_line_id": "nope", "quantity": 1}]
            )
        with pytest.raises(ShipmentError, match="tracking number"):
            record_shipment(order, actor=user, tracking_numbers=[" "])
        rest, _ = record_shipment(order, actor=user, tracking_numbers=["P-4"])
        assert not rest.is_partial
        assert unshipped_quantities(order) == {line.external_line_id: 0 for line in lines}
        with pytest.raises(ShipmentError, match="already been shipped"):
            record_shipment(order, actor=user, tracking_numbers=["P-5"])


def test_idempotency_key_returns_the_same_shipment(alice):
    user, account = alice
    with sandbox_store("xcart", orders=5) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order, other = list(Order.objects.filter(channel=channel)[:2])
        first, created = record_shipment(order, actor=user, tracking_numbers=["K-1"], idempotency_key="wh-1")
        again, created_again = record_shipment(
            order, actor=user, tracking_numbers=["K-1"], idempotency_key="wh-1"
        )
        assert created
        assert not created_again
        assert again.pk == first.pk
        assert Shipment.objects.count() == 1
        with pytest.raises(ShipmentError, match="another order"):
            record_shipment(other, actor=user, tracking_numbers=["K-2"], idempotency_key="wh-1")
        # the same key in another account is another shipment
        bob_user, bob_account = make_owner("bob@example.com", "Bob's Shop")
        bob_channel = channel_for_store(bob_account, app, name="Bob's copy")
        download(bob_channel)
        bob_order = Order.objects.filter(channel=bob_channel).first()
        bob_shipment, bob_created = record_shipment(
            bob_order, actor=bob_user, tracking_numbers=["K-1"], idempotency_key="wh-1"
        )
        assert bob_created
        assert bob_shipment.pk != first.pk


def test_outsider_cannot_record_shipment(alice):
    _user, account = alice
    with sandbox_store("xcart", orders=3) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        bob, _ = make_owner("bob@example.com", "Bob's Shop")
        with pytest.raises(PermissionDenied):
            record_shipment(order, actor=bob, tracking_numbers=["X"])
        member = User.objects.create_user(email="member@example.com", password="correct-horse-battery-9")
        Membership.objects.create(account=account, user=member, role=Role.MEMBER)
        shipment, _ = record_shipment(order, actor=member, tracking_numbers=["X"])
        assert shipment.created_by == member


def test_transient_failure_retries_with_backoff_then_confirms(alice, monkeypatch):
    user, account = alice
    with sandbox_store("xcart", orders=4) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["R-1"])
        app.faults.update({"error_rate": 1.0, "kinds": ["500"], "fail_writes_only": True})
        run = confirm(channel)
        assert run.failed == 1
        assert "retried" in run.error
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.PENDING
        assert shipment.next_attempt_at > timezone.now()
        assert shipment.last_error
        assert ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at == shipment.next_attempt_at
        # not due yet: nothing happens
        app.faults.update({"error_rate": 0.0})
        assert confirm(channel).fetched == 0
        Shipment.objects.filter(pk=shipment.pk).update(next_attempt_at=timezone.now())
        confirm(channel)
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.CONFIRMED
        assert shipment.attempts == 2
        assert app.tracking_numbers(order.external_id) == ["R-1"]


def test_permanent_failure_marks_failed_and_retry_resends(alice):
    user, account = alice
    with sandbox_store("xcart", orders=4) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["F-1"])
        channel.settings = {**channel.settings, "processed_status": "NOPE"}
        channel.save()
        confirm(channel)
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.FAILED
        assert "NOPE" in shipment.last_error
        assert app.tracking_numbers(order.external_id) == []
        channel.settings = {**channel.settings, "processed_status": "S"}
        channel.save()
        retried = retry_shipment(shipment, actor=user)
        assert retried.state == ShipmentState.PENDING
        confirm(channel)
        shipment.refresh_from_db()
        assert shipment.state == ShipmentState.CONFIRMED
        assert app.tracking_numbers(order.external_id) == ["F-1"]
        with pytest.raises(ShipmentError, match="already confirmed"):
            retry_shipment(shipment, actor=user)


def test_fault_run_ends_with_store_and_database_in_agreement(alice, monkeypatch, settings):
    """20% of store requests fail (500, timeouts, garbage, truncated); jobs are re-run the way the
    scheduler would until done: every order is stored once, every shipment confirmed, and the store
    has exactly the tracking numbers we recorded."""
    settings.SHIPMENT_RETRY_BASE_SECONDS = 0.0
    monkeypatch.setattr(shipments, "MAX_SHIPMENT_ATTEMPTS", 50)
    user, account = alice
    with sandbox_store("xcart", orders=60) as (app, _server):
        channel = channel_for_store(account, app)
        app.faults.update({"error_rate": 0.2, "timeout_seconds": 0.2, "seed": 11})
        for _ in range(40):
            run = sync.run_channel_job(channel.pk, "orders", download_orders)
            if run.state == SyncState.SUCCEEDED:
                break
        assert run.state == SyncState.SUCCEEDED
        assert Order.objects.filter(channel=channel).count() == app.order_count()
        orders = list(Order.objects.filter(channel=channel).order_by("placed_at")[:10])
        for index, order in enumerate(orders):
            record_shipment(order, actor=user, tracking_numbers=[f"FR-{index}"])
        for _ in range(60):
            if not Shipment.objects.filter(state=ShipmentState.PENDING).exists():
                break
            Shipment.objects.update(next_attempt_at=None)
            confirm(channel)
        app.faults.update({"error_rate": 0.0})
        assert not Shipment.objects.exclude(state=ShipmentState.CONFIRMED).exists()
        for index, order in enumerate(orders):
            assert app.tracking_numbers(order.external_id) == [f"FR-{index}"]
            assert app.order_status(order.external_id) == "S"
        # a clean re-sync afterwards changes nothing but the processed statuses we set ourselves
        ChannelSchedule.objects.filter(pk=channel.pk).update(orders_checkpoint=None)
        run = sync.run_channel_job(channel.pk, "orders", download_orders)
        assert run.created == 0
        assert Order.objects.filter(channel=channel).count() == app.order_count()


def test_a_confirmation_claim_lasts_as_long_as_a_job_lease(alice, settings):
    """A SIGKILLed worker's claim must not keep its shipment from the next job for minutes: the
    job's lease (which stops overlapping jobs) and the claim run out together."""
    settings.SYNC_LEASE_SECONDS = 6
    user, account = alice
    with sandbox_store("xcart", orders=3) as (app, _server):
        channel = channel_for_store(account, app)
        sync.run_channel_job(channel.pk, "orders", download_orders)
        order = Order.objects.filter(channel=channel).first()
        shipment, _ = record_shipment(order, actor=user, tracking_numbers=["1ZCLAIM"])
        now = timezone.now()
        assert _claim(shipment, now)
        assert not _claim(shipment, now + timedelta(seconds=5))  # still the first worker's
        shipment.refresh_from_db()
        assert shipment.claimed_until == now + timedelta(seconds=6)
        assert _claim(shipment, now + timedelta(seconds=7))  # free once the lease would be


def test_a_shipment_waiting_out_its_back_off_keeps_the_job_due_after_another_confirms(alice):
    """A shipment retrying later must not be forgotten when a newer shipment's job runs first.

    The job takes the channel's due time when it starts; a run that only confirms the newer
    shipment (the older one's back-off has not passed) must leave the job due again when the older
    one may be tried, or it waits for the ten-minute sweep although the store is back.
    """
    user, account = alice
    with sandbox_store("xcart", orders=6) as (app, _server):
        channel = channel_for_store(account, app)
        download(channel)
        first, second = Order.objects.filter(channel=channel).order_by("placed_at")[:2]
        waiting, _ = record_shipment(first, actor=user, tracking_numbers=["1ZWAIT"])
        app.faults.update({"error_rate": 1.0, "kinds": ["garbage"]})
        confirm(channel)
        waiting.refresh_from_db()
        assert waiting.state == ShipmentState.PENDING
        assert waiting.next_attempt_at > timezone.now()
        app.faults.update({"error_rate": 0.0})

        newer, _ = record_shipment(second, actor=user, tracking_numbers=["1ZNEW"])
        run = confirm(channel)
        assert run.state == SyncState.SUCCEEDED, run.error
        newer.refresh_from_db()
        assert newer.state == ShipmentState.CONFIRMED
        due_at = ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at
        assert due_at == Shipment.objects.get(pk=waiting.pk).next_attempt_at

        Shipment.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
        ChannelSchedule.objects.filter(pk=channel.pk).update(shipments_due_at=timezone.now())
        confirm(channel)
        assert Shipment.objects.get(pk=waiting.pk).state == ShipmentState.CONFIRMED
        assert app.tracking_numbers(first.external_id) == ["1ZWAIT"]
        assert ChannelSchedule.objects.get(pk=channel.pk).shipments_due_at is None
