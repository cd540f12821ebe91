"""Shipments: record them, retry them, and confirm each to its store exactly once.

:func:`record_shipment` and :func:`retry_shipment` are the seller- and warehouse-facing actions
(actor as keyword, one transaction, the shipments job requested on commit); they check tracking
numbers, lines and idempotency keys. :func:`confirm_pending_shipments` is the shipments job (the
``work(channel, connector, run)`` of :func:`channels.sync.run_channel_job`): it claims each due
shipment, sends it with a reference the store write carries so a retry recognises it, backs off on
transient errors, and :func:`keep_shipments_due` keeps the job due while any shipment waits.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Min, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import ApiKey, Role
from accounts.tenancy import Actor, actor_user, require_actor_role
from channels import sync
from channels.models import SalesChannel, SyncJob, SyncRun
from connectors import base
from connectors.errors import (
    AuthError,
    OrderClosedError,
    PermanentError,
    ProtocolError,
    RateLimited,
    TransientError,
)
from connectors.text import unsafe_character_message
from orders.download import upsert_orders
from orders.models import Order, Shipment, ShipmentState
from orders.product_master import announce_reservations_changed, order_skus, uses_product_master

log = logging.getLogger("storelink.orders")

MAX_TRACKING_NUMBERS = 20
#: Shipment confirmations: attempts before a transient failure becomes "failed" for the seller.
MAX_SHIPMENT_ATTEMPTS = 8
SHIPMENT_RETRY_MAX_SECONDS = 3600.0
SHIPMENTS_PER_RUN = 500


class ShipmentError(ValidationError):
    """Something the caller can fix; ``message_dict`` maps field names to messages."""


def _shipment_error(field_name: str, message: str) -> ShipmentError:
    return ShipmentError({field_name: [message]})


class IdempotencyKeyReused(ShipmentError):
    """The key already names a shipment recorded with different contents: answering that shipment
    would hide the difference, recording a second one would defeat the key."""


def shipped_quantities(order: Order, *, exclude: Shipment | None = None) -> dict[str, int]:
    """Units per external line id already in pending or confirmed shipments of ``order``."""
    shipments = Shipment.objects.filter(
        order=order, state__in=[ShipmentState.PENDING, ShipmentState.CONFIRMED]
    ).values_list("id", "lines")
    shipped: dict[str, int] = defaultdict(int)
    for shipment_id, lines in shipments:
        if exclude is not None and shipment_id == exclude.pk:
            continue
        for line in lines or []:
            shipped[str(line["external_line_id"])] += int(line["quantity"])
    return dict(shipped)


def unshipped_quantities(order: Order, *, exclude: Shipment | None = None) -> dict[str, int]:
    """Units per external line id not yet in any pending or confirmed shipment."""
    shipped = shipped_quantities(order, exclude=exclude)
    remaining: dict[str, int] = defaultdict(int)
    for line in order.lines.all():
        remaining[line.external_line_id] += line.quantity
    return {key: qty - shipped.get(key, 0) for key, qty in remaining.items()}


def _clean_tracking(tracking_numbers: Iterable[str] | str | None) -> list[str]:
    if isinstance(tracking_numbers, str):
        tracking_numbers = tracking_numbers.replace(",", "\n").splitlines()
    cleaned: list[str] = []
    for value in tracking_numbers or []:
        text = str(value).strip()
        if not text:
            continue
        if len(text) > 100:
            raise _shipment_error(
                "tracking_numbers", "A tracking number must be one line of at most 100 characters."
            )
        if message := unsafe_character_message(text, "A tracking number"):
            raise _shipment_error("tracking_numbers", message)
        if text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        raise _shipment_error("tracking_numbers", "Enter at least one tracking number.")
    if len(cleaned) > MAX_TRACKING_NUMBERS:
        raise _shipment_error("tracking_numbers", f"Enter at most {MAX_TRACKING_NUMBERS} tracking numbers.")
    return cleaned


def _clean_lines(
    order: Order, lines: Iterable[Mapping[str, Any]] | None, remaining: Mapping[str, int]
) -> list[dict]:
    """Requested lines checked against what is still unshipped; empty means everything left."""
    requested: dict[str, int] = defaultdict(int)
    for item in lines or []:
        line_id = str(item.get("external_line_id", "")).strip()
        try:
            quantity = int(item.get("quantity", 0))
        except (TypeError, ValueError):
            raise _shipment_error("lines", f"Quantity for line {line_id} must be a whole number.") from None
        if quantity == 0:
            continue
        if quantity < 0:
            raise _shipment_error("lines", f"Quantity for line {line_id} cannot be negative.")
        if line_id not in remaining:
            raise _shipment_error("lines", f"Order {order.number} has no line {line_id!r}.")
        requested[line_id] += quantity
    if not requested and lines:
        raise _shipment_error("lines", "Choose at least one line to ship.")
    if not requested:
        requested = {key: qty for key, qty in remaining.items() if qty > 0}
        if not requested:
            raise _shipment_error("lines", f"Everything in order {order.number} has already been shipped.")
    for line_id, quantity in requested.items():
        if quantity > remaining[line_id]:
            raise _shipment_error(
                "lines",
                f"Line {line_id} has only {max(0, remaining[line_id])} unit(s) left to ship; "
                f"you entered {quantity}.",
            )
    return [{"external_line_id": key, "quantity": qty} for key, qty in requested.items()]


def record_shipment(
    order: Order,
    *,
    actor: Actor,
    tracking_numbers: Iterable[str] | str,
    carrier: str = "",
    service: str = "",
    lines: Iterable[Mapping[str, Any]] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Shipment, bool]:
    """Record a shipment and have it confirmed to the store; returns (shipment, created).

    The same ``idempotency_key`` answers the shipment it first created (no duplicate), so a
    warehouse system can safely repeat a POST that timed out. The order row is locked while the
    quantities are checked, so two concurrent shipments cannot both ship the last unit.
    """
    require_actor_role(actor, order.account, Role.MEMBER, doing="record shipments")
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 255:
        raise _shipment_error("idempotency_key", "The idempotency key must be at most 255 characters.")
    if key is not None:
        existing = _by_idempotency_key(order.account_id, key, order)
        if existing is not None:
            return _replayed(existing, tracking_numbers, carrier, service, lines), False
    if order.channel.is_removed:
        raise _shipment_error(
            "__all__", "This order's channel has been removed; the store cannot be updated."
        )
    if order.store_closed:
        raise _shipment_error("__all__", closed_order_message(order))
    numbers = _clean_tracking(tracking_numbers)
    carrier = (carrier or "").strip()[:100]
    service = (service or "").strip()[:100]
    lines = list(lines or [])
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            # The key is checked again under the order lock: a request with the same key that got
            # the lock first has committed its shipment by now, and this one must answer it rather
            # than find "everything already shipped" and fail.
            existing = _by_idempotency_key(order.account_id, key, order) if key else None
            if existing is not None:
                return _replayed(existing, numbers, carrier, service, lines), False
            remaining = unshipped_quantities(locked)
            cleaned_lines = _clean_lines(locked, lines, remaining)
            left_after = sum(remaining.values()) - sum(line["quantity"] for line in cleaned_lines)
            shipment = Shipment.objects.create(
                account_id=order.account_id,
                order=locked,
                channel_id=order.channel_id,
                carrier=carrier,
                service=service,
                tracking_numbers=numbers,
                lines=cleaned_lines,
                is_partial=left_after > 0,
                idempotency_key=key,
                created_by=actor_user(actor),
                created_by_api_key=actor if isinstance(actor, ApiKey) else None,
            )
            sync.request_job(order.channel, SyncJob.SHIPMENTS)
            if uses_product_master(order.account_id):
                announce_reservations_changed(order.account_id, order_skus([locked.pk]))
    except IntegrityError:
        # Two requests with the same key raced; the other one won and created the shipment.
        existing = _by_idempotency_key(order.account_id, key, order) if key else None
        if existing is None:
            raise
        return _replayed(existing, numbers, carrier, service, lines), False
    log.info("orders.shipment.recorded shipment=%s order=%s", shipment.pk, order.pk)
    return shipment, True


def _replayed(
    existing: Shipment,
    tracking_numbers: Iterable[str] | str,
    carrier: str,
    service: str,
    lines: Iterable[Mapping[str, Any]] | None,
) -> Shipment:
    """``existing`` if the repeated request asks for the same shipment, else IdempotencyKeyReused."""
    requested: dict[str, int] = defaultdict(int)
    for item in lines or []:
        with contextlib.suppress(TypeError, ValueError):
            quantity = int(item.get("quantity", 0))
            if quantity:
                requested[str(item.get("external_line_id", "")).strip()] += quantity
    recorded = {str(line["external_line_id"]): int(line["quantity"]) for line in existing.lines or []}
    differences = [
        name
        for name, same in (
            ("tracking numbers", _clean_tracking(tracking_numbers) == list(existing.tracking_numbers)),
            ("carrier", (carrier or "").strip()[:100] == existing.carrier),
            ("service", (service or "").strip()[:100] == existing.service),
            # No lines asked for "everything left", which is what the first request recorded.
            ("lines", not requested or dict(requested) == recorded),
        )
        if not same
    ]
    if differences:
        raise IdempotencyKeyReused(
            {
                "idempotency_key": [
                    "This idempotency key was already used for a shipment with different "
                    f"{', '.join(differences)}; use a new key for a new shipment."
                ]
            }
        )
    return existing


def closed_order_message(order: Order) -> str:
    """Why a shipment for an order the store has closed is not sent, in the seller's words."""
    status = order.status_name or order.status_code
    return (
        f"The store shows order {order.number} as closed ({status}): it was cancelled, refunded or "
        "already completed there, so the shipment was not sent. Check the order in your store."
    )


def _by_idempotency_key(account_id: Any, key: str, order: Order) -> Shipment | None:
    existing = Shipment.objects.filter(account_id=account_id, idempotency_key=key).first()
    if existing is not None and existing.order_id != order.pk:
        raise _shipment_error("idempotency_key", "This idempotency key was already used for another order.")
    return existing


def retry_shipment(shipment: Shipment, *, actor: Actor) -> Shipment:
    """Send a failed shipment to the store again (the seller fixed the cause, or wants another go)."""
    require_actor_role(actor, shipment.account, Role.MEMBER, doing="retry shipments")
    with transaction.atomic():
        # The state is read under the row lock, not from the caller's copy: a double-clicked
        # retry whose first click got the shipment confirmed meanwhile must not send it again.
        fresh = Shipment.objects.select_for_update().get(pk=shipment.pk)
        if fresh.state == ShipmentState.CONFIRMED:
            raise _shipment_error("__all__", "This shipment is already confirmed on the store.")
        if fresh.order.store_closed:
            raise _shipment_error("__all__", closed_order_message(fresh.order))
        if fresh.state == ShipmentState.FAILED:
            remaining = unshipped_quantities(fresh.order, exclude=fresh)
            for line in fresh.lines:
                if int(line["quantity"]) > remaining.get(str(line["external_line_id"]), 0):
                    raise _shipment_error(
                        "lines",
                        "Other shipments have since covered these lines; record a new shipment instead.",
                    )
            Shipment.objects.filter(pk=fresh.pk).update(
                state=ShipmentState.PENDING, attempts=0, next_attempt_at=None, claimed_until=None
            )
            if uses_product_master(fresh.account_id):
                announce_reservations_changed(fresh.account_id, order_skus([fresh.order_id]))  # shipped again
        else:
            # Still pending: only skip its back-off. A worker may be confirming it right now
            # (``claimed_until``); clearing that claim would let a second worker send it again.
            Shipment.objects.filter(pk=fresh.pk).update(next_attempt_at=None)
        sync.request_job(fresh.channel, SyncJob.SHIPMENTS)
    fresh.refresh_from_db()
    log.info("orders.shipment.retry shipment=%s", fresh.pk)
    return fresh


def _backoff(attempts: int, exc: Exception) -> timedelta:
    if isinstance(exc, RateLimited):
        return timedelta(seconds=max(1.0, exc.retry_after))
    base = float(django_settings.SHIPMENT_RETRY_BASE_SECONDS)
    seconds = min(SHIPMENT_RETRY_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def shipment_request(shipment: Shipment, channel: SalesChannel) -> base.ShipmentRequest:
    partial_status = str((channel.settings or {}).get("partial_status") or "")
    return base.ShipmentRequest(
        order_external_id=shipment.order.external_id,
        tracking_numbers=tuple(shipment.tracking_numbers),
        carrier=shipment.carrier,
        service=shipment.service,
        lines=tuple(
            base.ShipmentLine(external_line_id=str(line["external_line_id"]), quantity=int(line["quantity"]))
            for line in shipment.lines
        ),
        shipped_at=shipment.created_at,
        processed_status=str((channel.settings or {}).get("processed_status") or ""),
        is_partial=shipment.is_partial,
        # Only a partial shipment moves the order to the seller's "partially shipped" status.
        partial_status=partial_status if shipment.is_partial else "",
        reference=shipment_reference(shipment),
    )


def shipment_reference(shipment: Shipment) -> str:
    """The tag a store write carries so a retry recognises it; stable for the shipment's life."""
    return f"SL-{shipment.id.hex[:12]}"


def _claim(shipment: Shipment, now: datetime) -> bool:
    """Own the shipment for one confirmation attempt; ``False`` when someone else has it.

    Confirmations only run inside the channel's shipments job, which holds the channel's lease
    (renewed before every store request) for as long as it works; no second attempt can start while
    that job lives. The claim therefore lasts as long as a lease: a SIGKILLed worker's shipment is
    free again when its job's lease runs out, not minutes later.
    """
    until = now + timedelta(seconds=sync.default_lease_seconds())
    return bool(
        Shipment.objects.filter(pk=shipment.pk, state=ShipmentState.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until, attempts=F("attempts") + 1)
    )


def closed_on_store(channel: SalesChannel, order: Order, fresh: object | None) -> None:
    """The store refused a shipment because it has closed the order: bring Storelink's copy up to
    date now (status, lines, closed), so its reservation is released without waiting for the next
    download. ``fresh`` is the order as the store shows it, when the connector read it."""
    with transaction.atomic():
        if isinstance(fresh, base.Order) and str(fresh.external_id) == order.external_id:
            result = upsert_orders(channel, [replace(fresh, closed=True)])
            skus = result.changed_skus
        else:
            Order.objects.filter(pk=order.pk).update(store_closed=True, updated_at=timezone.now())
            skus = order_skus([order.pk])
        if skus and uses_product_master(channel.account_id):
            announce_reservations_changed(channel.account_id, skus)
    order.store_closed = True
    log.info("orders.closed_on_store order=%s", order.pk)


def keep_shipments_due(channel: SalesChannel) -> datetime | None:
    """Make the shipments job due when the channel's next pending shipment may be tried; returns when.

    A shipments job takes the channel's due time when it starts, so the job that ends must set it
    again for every shipment still pending, not only for those it just failed: one waiting out its
    back-off from an earlier run (the run was requested for a newer shipment), one beyond this
    run's batch, one still claimed by a worker that was killed. Otherwise that shipment would wait
    for the ten-minute sweep although the store answers again.
    """
    now = timezone.now()
    next_at = Shipment.objects.filter(channel=channel, state=ShipmentState.PENDING).aggregate(
        at=Min(
            Greatest(
                Coalesce("next_attempt_at", models.Value(now)), Coalesce("claimed_until", models.Value(now))
            )
        )
    )["at"]
    if next_at is not None:
        sync.mark_due(channel, SyncJob.SHIPMENTS, max(next_at, now))
    return next_at


def confirm_pending_shipments(
    channel: SalesChannel, connector: base.Connector, run: SyncRun | None = None
) -> dict[str, int]:
    """Confirm each due pending shipment of ``channel`` on the store, exactly once each.

    Transient store errors (timeouts, 5xx, rate limits, replies we could not read — the write may
    or may not have landed, and connectors make confirmation safe to repeat) put the shipment back
    with a back-off and make the job due again then; permanent ones fail the shipment with the
    store's message for the seller to fix and retry. ``AuthError`` stops the job (the channel
    needs reauthorising); the shipment stays pending and is confirmed after reauthorisation.
    """
    now = timezone.now()
    due = list(
        Shipment.objects.filter(channel=channel, state=ShipmentState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .select_related("order")
        .order_by("created_at")[:SHIPMENTS_PER_RUN]
    )
    counts = {"confirmed": 0, "retrying": 0, "failed": 0}
    failed_orders: list[Any] = []
    for shipment in due:
        now = timezone.now()
        if not _claim(shipment, now):
            continue
        attempts = shipment.attempts + 1
        if run is not None:
            run.fetched += 1
        if shipment.order.store_closed and shipment.attempts == 0:
            # Closed since the shipment was recorded (a download saw the cancellation): never sent.
            # Once an attempt was made, the store may hold our own write (whose reply was lost) and
            # that write may be what closed the order (Shipped): the connector, which recognises
            # its own write by the shipment reference and reads the store's current status, decides.
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.FAILED,
                claimed_until=None,
                last_error=closed_order_message(shipment.order),
            )
            counts["failed"] += 1
            failed_orders.append(shipment.order_id)
            if run is not None:
                run.failed += 1
            log.warning("orders.shipment.failed shipment=%s code=order_closed", shipment.pk)
            continue
        try:
            result = connector.confirm_shipment(shipment_request(shipment, channel))
        except AuthError:
            Shipment.objects.filter(pk=shipment.pk).update(
                claimed_until=None,
                attempts=F("attempts") - 1,
                last_error="Paused: the channel needs reauthorising.",
            )
            raise
        except (RateLimited, TransientError, ProtocolError) as exc:
            if attempts >= MAX_SHIPMENT_ATTEMPTS:
                Shipment.objects.filter(pk=shipment.pk).update(
                    state=ShipmentState.FAILED,
                    claimed_until=None,
                    last_error=f"Gave up after {attempts} attempts: {exc.message}",
                )
                counts["failed"] += 1
                failed_orders.append(shipment.order_id)
            else:
                retry_at = timezone.now() + _backoff(attempts, exc)
                Shipment.objects.filter(pk=shipment.pk).update(
                    claimed_until=None, next_attempt_at=retry_at, last_error=exc.message
                )
                counts["retrying"] += 1
            if run is not None:
                run.failed += 1
            log.info("orders.shipment.retry_later shipment=%s code=%s", shipment.pk, exc.code)
        except PermanentError as exc:
            if isinstance(exc, OrderClosedError):
                closed_on_store(channel, shipment.order, exc.order)
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.FAILED, claimed_until=None, last_error=exc.message
            )
            counts["failed"] += 1
            failed_orders.append(shipment.order_id)
            if run is not None:
                run.failed += 1
            log.warning("orders.shipment.failed shipment=%s code=%s", shipment.pk, exc.code)
        else:
            Shipment.objects.filter(pk=shipment.pk).update(
                state=ShipmentState.CONFIRMED,
                claimed_until=None,
                confirmed_at=timezone.now(),
                next_attempt_at=None,
                store_reference=(result.store_reference or "")[:255],
                last_error="; ".join(result.warnings),
            )
            counts["confirmed"] += 1
            if run is not None:
                run.updated += 1
            log.info("orders.shipment.confirmed shipment=%s", shipment.pk)
        if run is not None:
            sync.heartbeat(run)
    keep_shipments_due(channel)
    if failed_orders and uses_product_master(channel.account_id):
        # A failed shipment no longer covers its lines: those units are reserved again.
        announce_reservations_changed(channel.account_id, order_skus(failed_orders))
    if run is not None and (counts["retrying"] or counts["failed"]):
        parts = []
        if counts["retrying"]:
            parts.append(
                f"{counts['retrying']} shipment(s) will be retried (the store did not answer properly)"
            )
        if counts["failed"]:
            parts.append(f"{counts['failed']} shipment(s) failed; see the order page")
        run.error = "; ".join(parts) + "."
    return counts
