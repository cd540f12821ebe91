"""The orders list's search can be served by the trigram indexes (PostgreSQL).

The indexes are on ``UPPER(col::text)``, the exact expression Django's ``icontains`` writes; if
either side changed (a lookup, a cast, a column) the planner could no longer use them and every
search would read the whole account again. With sequential and plain index scans switched off
for the transaction, the plan of the list's own search condition must use all three.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import connection, transaction
from django.http import QueryDict

from orders.forms import OrderFilterForm
from orders.models import Order
from orders.views import _filtered

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="pg_trgm indexes exist on PostgreSQL only; CI sets DATABASE_URL",
    ),
]


def test_search_condition_uses_the_trigram_indexes(alice: Any) -> None:
    form = OrderFilterForm(QueryDict("q=kalomi"), channels=[])
    queryset = _filtered(Order.objects.all(), form)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = queryset.explain()
    for index in ("order_number_trgm", "order_customer_name_trgm", "order_customer_email_trgm"):
        assert index in plan, plan
