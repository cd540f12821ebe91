"""Facts one app announces and another acts on, so that the apps need not import each other.

``channels`` (lifecycle, credentials, the sync engine) sits below ``orders`` and ``inventory``;
orders and inventory sit side by side. When orders move reservations, or the product master
changes, the app that knows says so here and the app that cares has subscribed (in its
``AppConfig.ready``). The import contracts in ``pyproject.toml`` keep it that way.

Receivers run at once, inside the sender's transaction: what they write (a stock change counted on
a listing, a job's due time, an order's flag) commits or rolls back with the change that caused
it, so no fact is lost to a crash between the two and none is acted on for a change that did not
happen. A receiver that raises rolls the sender back too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.dispatch import Signal

#: Orders arrived, changed status or were shipped, a shipment failed or was retried, a channel was
#: removed or its "shipped" status changed: the availability of ``skus`` (``None``: every SKU of
#: the account) moved. Keyword arguments: ``account_id``, ``skus``.
reservations_moved = Signal()

#: Products were created, renamed or removed in the account's product master: what depends on
#: which SKUs exist (an order's ``unknown_sku`` flag) is judged again. Keyword arguments:
#: ``account_id``, ``skus``, ``everything`` (the master was empty before: judge every order).
product_master_changed = Signal()


#: Asked while a channel's settings are shown (the settings step, the channel page): each receiver
#: answers one sentence saying what the settings will do (inventory: what becomes of a price of
#: 100.00). Keyword arguments: ``account``, ``platform``, ``settings``.
settings_described = Signal()


def describe_settings(account: Any, platform: str, settings: Any) -> str:
    """What the subscribed apps say these channel settings will do, in a sentence each."""
    replies = settings_described.send(
        sender=None, account=account, platform=platform, settings=settings or {}
    )
    return " ".join(str(reply) for _receiver, reply in replies if reply)


def announce_reservations_moved(account_id: Any, skus: Iterable[str] | None = None) -> None:
    """Say that the availability of ``skus`` moved (call inside the transaction that moved it)."""
    reservations_moved.send(sender=None, account_id=account_id, skus=None if skus is None else set(skus))


def announce_product_master_changed(
    account_id: Any, skus: Iterable[str], *, everything: bool = False
) -> None:
    """Say that these SKUs were added to, renamed in or removed from the product master."""
    product_master_changed.send(sender=None, account_id=account_id, skus=list(skus), everything=everything)
