"""The orders, shipments and "sync now" API against its own OpenAPI schema (schemathesis): no 5xx,
and every answer documented and shaped as the schema says."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import create_api_key
from orders.models import Shipment
from tests.factories import SalesChannelFactory
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MINE = ("/api/v1/orders", "/api/v1/shipments", "/api/v1/channels/{id}/sync", "/api/v1/sync-runs")


@pytest.fixture(autouse=True)
def _urls(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.ROOT_URLCONF = "tests.orders.urls"
    monkeypatch.setattr("channels.sync.send_job", lambda channel_id, job: None)


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_orders_api_never_answers_5xx(keep_test_connection: None, alice: Any) -> None:
    channel = SalesChannelFactory(account=alice.account)
    orders = [make_order(channel, str(n)) for n in range(3)]
    failed = Shipment.objects.create(
        account=alice.account,
        order=orders[0],
        channel=channel,
        tracking_numbers=["F"],
        lines=[{"external_line_id": "0-0", "quantity": 1}],
        state="failed",
    )
    real_ids = itertools.cycle([str(orders[1].pk), str(failed.pk), str(channel.pk)])
    _key, plaintext = create_api_key(alice.account, actor=None, name="schemathesis")
    headers = {"Authorization": f"Api-Key {plaintext}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().path.startswith(MINE)]
    assert len(operations) == 9, [op.label for op in operations]
    seen: dict[str, set[int]] = {}
    counter = itertools.count()

    def check(case: Any) -> None:
        if "id" in (case.path_parameters or {}) and next(counter) % 2:
            case.path_parameters["id"] = next(real_ids)
        response = case.call(headers=headers)
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    by_label = {op.label: op for op in operations}
    check(
        by_label["POST /api/v1/shipments/"].Case(
            body={"order": str(orders[2].pk), "tracking_numbers": ["1Z"], "carrier": "UPS"}
        )
    )
    check(by_label["POST /api/v1/shipments/{id}/retry/"].Case(path_parameters={"id": str(failed.pk)}))
    check(by_label["POST /api/v1/channels/{id}/sync/"].Case(path_parameters={"id": str(channel.pk)}, body={}))
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
    assert 201 in seen["POST /api/v1/shipments/"]
    assert 200 in seen["POST /api/v1/shipments/{id}/retry/"]
    assert 202 in seen["POST /api/v1/channels/{id}/sync/"]
    assert 200 in seen["GET /api/v1/orders/"]
