"""Which OpenCart order statuses close an order, judged from the store's own declarations.

Status ids differ per store (merchants rename, delete and add statuses), so the store's settings
decide first:

- ``config_complete_status`` (Settings > Option > "Complete Order Status", default Shipped and
  Complete): the order is finished — closed.
- ``config_processing_status`` ("Processing Order Status") and ``config_order_status_id`` (the status
  of a new order): OpenCart keeps the stock subtracted — open.
- any other status is one OpenCart puts the stock back for. It closes the order when its id is one
  of the stock closing ids (:data:`CLOSED_STATUS_CODES`) or its name says so (cancelled, refunded,
  voided ...); a custom status that says neither stays open: reserving stock for an order that may
  still ship is the safer mistake.

A store that declares neither list (a bridge older than 1.1.0) is judged by
:data:`CLOSED_STATUS_CODES` alone.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

#: OpenCart's stock statuses that close an order: Shipped, Complete, Canceled, Denied, Canceled
#: Reversal, Failed, Refunded, Reversed, Chargeback, Expired, Voided (identical ids in every version).
CLOSED_STATUS_CODES: frozenset[str] = frozenset({"3", "5", "7", "8", "9", "10", "11", "12", "13", "14", "16"})

_CLOSING_WORDS = re.compile(
    r"cancel|refund|void|declin|denied|fail|expired|chargeback|storn|annul|rembours|erstatt",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StatusRules:
    """The store's declarations; empty sets mean the store did not say."""

    processing: frozenset[str] = frozenset()
    complete: frozenset[str] = frozenset()
    default: str = ""
    fallback: frozenset[str] = CLOSED_STATUS_CODES

    @classmethod
    def from_ids(
        cls, processing: Collection[object], complete: Collection[object], default: object = ""
    ) -> StatusRules:
        return cls(
            processing=frozenset(str(code) for code in processing),
            complete=frozenset(str(code) for code in complete),
            default=str(default or ""),
        )

    def closes(self, code: object, name: str = "") -> bool:
        """Whether an order in this status is finished and holds no stock."""
        code = str(code).strip()
        if not self.processing and not self.complete:
            return code in self.fallback
        if code in self.complete:
            return True
        if code in self.processing or code == self.default:
            return False
        return code in self.fallback or bool(_CLOSING_WORDS.search(name or ""))
