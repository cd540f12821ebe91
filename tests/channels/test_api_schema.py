"""The API against its own OpenAPI schema (schemathesis): no 5xx, and answers match the schema.

Every operation in ``/api/schema/`` gets valid and invalid generated requests with a real API key,
through the WSGI app (no server, no network). The store side is scripted: the connection test
alternately succeeds and refuses the credentials, so both paths of create/test/reauthorise run.
(Schemathesis' pytest plugin does not run on pytest 9 yet, so hypothesis drives its strategies.)
"""

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
from channels.models import SalesChannel
from connectors.errors import AuthError
from tests.conftest import DEFAULT_FACTS
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def scripted_store(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = itertools.cycle([DEFAULT_FACTS, AuthError("The store refused the key.")])

    def scripted(*args: Any, **kwargs: Any) -> Any:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def refusing_connector(*args: Any, **kwargs: Any) -> Any:
        raise AuthError("The store refused the key.")

    monkeypatch.setattr("channels.services.test_connection", scripted)
    monkeypatch.setattr("channels.services.build_connector", refusing_connector)


def _live_channel_id(account: Any) -> str:
    channel = SalesChannel.objects.live().filter(account=account).first()
    return str((channel or SalesChannelFactory(account=account)).pk)


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Calling the WSGI app directly fires request_finished, which would close the test's database
    connection mid-transaction; Django's own test client disconnects it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_api_never_answers_5xx(
    keep_test_connection: None, alice: Any, scripted_store: None, allow_private_hosts: None
) -> None:
    _key, plaintext = create_api_key(alice.account, actor=None, name="schemathesis")
    headers = {"Authorization": f"Api-Key {plaintext}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9, [op.label for op in operations]
    seen: dict[str, set[int]] = {}
    counter = itertools.count()

    def check(case: Any) -> None:
        if "id" in (case.path_parameters or {}) and next(counter) % 2:
            # Half the cases address a real channel, so handlers run with generated bodies too.
            case.path_parameters["id"] = _live_channel_id(alice.account)
        response = case.call(headers=headers)
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        # No 5xx, and every answer (errors included) is documented and shaped as the schema says.
        case.validate_response(response, checks=CHECKS, headers=headers)

    by_label = {op.label: op for op in operations}
    # Hand-written valid requests first, so the success paths are checked against the schema too.
    check(
        by_label["POST /api/v1/channels/"].Case(
            body={
                "platform": "opencart",
                "name": "Explicit",
                "store_url": "https://shop.example.com",
                "credentials": {"api_username": "Default", "api_key": "A" * 32},
                "settings": {"currency": "EUR"},
            }
        )
    )
    check(
        by_label["PATCH /api/v1/channels/{id}/"].Case(
            path_parameters={"id": _live_channel_id(alice.account)}, body={"settings": {"stock_sync": False}}
        )
    )

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
                # An operation with no parameters and no body has nothing to make invalid.
                assert mode == GenerationMode.NEGATIVE, operation.label

    assert set(seen) == {op.label for op in operations}
    # The generated requests reached real handlers, not only the router's 404.
    assert 201 in seen["POST /api/v1/channels/"]
    assert 200 in seen["PATCH /api/v1/channels/{id}/"]
    assert 200 in seen["POST /api/v1/channels/{id}/enable/"]
