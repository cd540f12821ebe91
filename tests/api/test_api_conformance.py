"""The whole REST API against its own OpenAPI document (schemathesis, every check it has).

Every operation in ``/api/schema/`` gets generated valid requests (which must be accepted) and
invalid ones (which must be refused with a documented 4xx), with a real API key, through the WSGI
app (no server, no network). Every answer, errors included, must have a documented status code,
content type, headers and body shape; nothing may answer 5xx. The store side is scripted to
succeed, so valid requests reach the end of their handlers; the refusal paths have tests of their
own. (Schemathesis' pytest plugin does not run on pytest 9 yet, so hypothesis drives its
strategies; examples per operation are bounded so the run stays well under a minute.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup

from accounts.services import create_api_key
from connectors.base import StoreStatus
from inventory.models import Listing
from orders.models import Shipment
from tests.conftest import DEFAULT_FACTS
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Calling the WSGI app directly fires request_finished, which would close the test's database
    connection mid-transaction; Django's own test client disconnects it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


#: What each platform's store reports on a connection test: its statuses include the ones the
#: platform's settings default to, so a generated request that leaves them out is accepted.
STORE_FACTS = {
    "opencart": DEFAULT_FACTS,
    "xcart": replace(
        DEFAULT_FACTS,
        platform_version="5.4.1.23",
        order_statuses=(
            StoreStatus("P", "Paid", group="payment"),
            StoreStatus("A", "Authorized", group="payment"),
            StoreStatus("N", "New", group="shipping"),
            StoreStatus("S", "Shipped", group="shipping"),
        ),
    ),
    "threedcart": replace(
        DEFAULT_FACTS,
        platform_version="",
        order_statuses=(StoreStatus("1", "New"), StoreStatus("2", "Processing"), StoreStatus("4", "Shipped")),
    ),
}


@pytest.fixture
def working_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store answers its connection test (its own platform's facts): a valid request to
    connect one is accepted. Refusals by a store have tests of their own."""
    monkeypatch.setattr(
        "channels.services.test_connection", lambda platform, *args, **kwargs: STORE_FACTS[platform]
    )
    monkeypatch.setattr("channels.sync.send_job", lambda channel_id, job: None)


def _describe(error: BaseException) -> list[str]:
    if isinstance(error, FailureGroup):
        return [line for failure in error.exceptions for line in _describe(failure)]
    if isinstance(error, Failure):
        return [f"{error.title}: " + error.message.replace("\n", " ")[:300]]
    return [f"{type(error).__name__}: {error}"[:300]]


def test_api_conforms_to_its_schema(
    keep_test_connection: None, alice: Any, working_store: None, allow_private_hosts: None
) -> None:
    channel = SalesChannelFactory(account=alice.account, connection_state="ok")
    orders = [make_order(channel, str(n)) for n in range(3)]
    failed = Shipment.objects.create(
        account=alice.account,
        order=orders[0],
        channel=channel,
        tracking_numbers=["F"],
        lines=[{"external_line_id": "0-0", "quantity": 1}],
        state="failed",
    )
    listing = Listing.objects.create(account=alice.account, channel=channel, sku="L-1", remote_id="1")
    real_ids = itertools.cycle([str(channel.pk), str(orders[1].pk), str(failed.pk), str(listing.pk)])
    _key, plaintext = create_api_key(alice.account, actor=None, name="schemathesis")
    headers = {"Authorization": f"Api-Key {plaintext}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    problems: dict[str, list[str]] = {}
    seen: dict[str, set[int]] = {}
    counter = itertools.count()

    def check(case: Any) -> None:
        if "id" in (case.path_parameters or {}) and next(counter) % 2:
            case.path_parameters["id"] = next(real_ids)
        response = case.call(headers=headers)
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, headers=headers)
        except (Failure, FailureGroup) as error:
            sent = f"{case.path_parameters or ''} {case.query or ''} {str(case.body)[:200]}"
            for described in _describe(error):
                line = f"{described} <- {response.status_code} {response.text[:160]!r} for {sent}"
                problems.setdefault(case.operation.label, [])
                if line not in problems[case.operation.label]:
                    problems[case.operation.label].append(line)

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = given(case=operation.as_strategy(generation_mode=mode))(
                settings(
                    max_examples=EXAMPLES_PER_OPERATION,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )(lambda case: check(case))
            )
            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label

    # The generated requests reached real handlers, not only the router's 404.
    assert 201 in seen["POST /api/v1/channels/"], seen
    assert 200 in seen["GET /api/v1/orders/"], seen
    assert 200 in seen["GET /api/v1/products/"], seen
    assert set(seen) == {op.label for op in operations}
    report = "\n".join(f"{label}\n  " + "\n  ".join(lines) for label, lines in sorted(problems.items()))
    assert not problems, f"{sum(map(len, problems.values()))} disagreements:\n{report}"
