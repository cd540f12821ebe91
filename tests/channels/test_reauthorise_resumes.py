"""Reauthorising a paused channel: its paused work is requested at once, and a key that cannot
write is said so in the result (against a real sandbox store, through the seller's page)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from channels import sync
from channels.models import ConnectionState, SalesChannel, SyncJob
from orders.download import download_orders
from orders.models import Order, ShipmentState
from orders.shipments import confirm_pending_shipments, record_shipment
from tests.orders.factories import channel_for_store, sandbox_store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def sent(monkeypatch):
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job))))
    return jobs


@pytest.fixture
def store():
    with sandbox_store("xcart", orders=4, products=4) as (app, _server):
        yield app


@pytest.fixture
def channel(alice, store):
    return channel_for_store(alice.account, store)


def paused_with_a_shipment(alice, channel, store):
    """A shipment recorded, then the store refuses the key: the shipment waits, the channel pauses."""
    sync.run_channel_job(channel.pk, SyncJob.ORDERS, download_orders)
    order = Order.objects.filter(channel=channel).order_by("external_id").first()
    shipment, _ = record_shipment(order, actor=alice.user, tracking_numbers=["1ZPAUSED"])
    store.faults.update({"expired_token": True})
    sync.run_channel_job(channel.pk, SyncJob.SHIPMENTS, confirm_pending_shipments)
    assert SalesChannel.objects.get(pk=channel.pk).connection_state == ConnectionState.NEEDS_REAUTH
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.PENDING
    store.faults.update({"expired_token": False})
    return order, shipment


def reauthorise(client, alice, channel, key):
    client.force_login(alice.user)
    return client.post(
        reverse("channels:reauthorise", args=[channel.pk]),
        {"store_url": channel.store_url, "api_key": key, "api_flavour": "auto"},
    )


def test_reauthorising_requests_the_paused_shipment_at_once(
    client, alice, channel, store, sent, django_capture_on_commit_callbacks
):
    order, shipment = paused_with_a_shipment(alice, channel, store)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = reauthorise(client, alice, channel, store.rw_key)

    assert response.status_code == 302
    assert (str(channel.pk), SyncJob.SHIPMENTS) in sent  # not left for the 10-minute sweep
    # what the worker then does with it
    sync.run_channel_job(channel.pk, SyncJob.SHIPMENTS, confirm_pending_shipments)
    shipment.refresh_from_db()
    assert shipment.state == ShipmentState.CONFIRMED
    assert "1ZPAUSED" in store.tracking_numbers(order.external_id)


def test_reauthorising_requests_jobs_that_fell_due_while_paused(
    client, alice, channel, store, sent, django_capture_on_commit_callbacks
):
    SalesChannel.objects.filter(pk=channel.pk).update(connection_state=ConnectionState.NEEDS_REAUTH)
    sync.mark_due(channel, SyncJob.STOCK)
    sync.mark_due(channel, SyncJob.ORDERS)

    with django_capture_on_commit_callbacks(execute=True):
        assert reauthorise(client, alice, channel, store.rw_key).status_code == 302

    assert {(str(channel.pk), SyncJob.STOCK), (str(channel.pk), SyncJob.ORDERS)} <= set(sent)
    assert (str(channel.pk), SyncJob.SHIPMENTS) not in sent  # nothing waits to be confirmed


def test_reauthorising_with_a_key_that_cannot_write_says_so(client, alice, channel, store):
    SalesChannel.objects.filter(pk=channel.pk).update(connection_state=ConnectionState.NEEDS_REAUTH)

    response = reauthorise(client, alice, channel, store.read_key)

    assert response.status_code == 302
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("read-only" in message for message in shown), shown
    page = client.get(response.url).content.decode()
    assert "read-only" in page
    assert store.read_key not in page
    fresh = SalesChannel.objects.get(pk=channel.pk)
    assert fresh.connection_state == ConnectionState.OK
    assert fresh.store_facts["can_write"] is False


def test_reauthorising_with_a_key_that_can_write_shows_no_warning(client, alice, channel, store):
    SalesChannel.objects.filter(pk=channel.pk).update(connection_state=ConnectionState.NEEDS_REAUTH)
    response = reauthorise(client, alice, channel, store.rw_key)
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert not any("read-only" in message for message in shown), shown
