"""The channel lifecycle against real sandbox stores over loopback (real connectors, no fakes).

One store per platform: add the channel (the connection test runs the platform's real
``test_connection``), check the facts landed, then break the credentials on the store side and see
the channel move to ``needs_reauth``, then reauthorise it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from channels import services
from channels.models import ConnectionState, SalesChannel
from connectors.errors import AuthError
from connectors.registry import connector_class
from connectors.sandbox import SandboxServer, make_sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["opencart", "xcart", "threedcart"])
def store(request: pytest.FixtureRequest, settings: Any) -> Iterator[Any]:
    app = make_sandbox(request.param)
    with SandboxServer(app) as server:
        app.seed(products=3, orders=2, days=3, rng_seed=7)
        options = app.connector_options()
        settings.ALLOW_PRIVATE_STORE_HOSTS = True
        settings.STORE_HTTP_TIMEOUT = 5.0
        settings.STORE_HTTP_MAX_RETRIES = 0
        if options.get("api_base"):
            settings.THREEDCART_API_BASE = options["api_base"]
        keys = options.get("app_keys") or {}
        settings.THREEDCART_PUBLIC_KEY = keys.get("threedcart_public_key", "")
        settings.THREEDCART_PRIVATE_KEY = keys.get("threedcart_private_key", "")
        app.platform = request.param
        app.server = server
        yield app


def test_channel_lifecycle_against_the_sandbox(
    alice: Any, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the HTTP layer logs requests and bodies at DEBUG
    secrets = connector_class(store.platform).secret_values(store.connector_credentials())
    assert secrets
    channel = services.add_channel(
        alice.account,
        actor=alice.user,
        platform=store.platform,
        name=f"Sandbox {store.platform}",
        store_url=store.connector_store_url(),
        credentials=store.connector_credentials(),
        settings=store.connector_settings(),
    )
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert channel.connection_state == ConnectionState.OK
    assert channel.store_facts["base_currency"]
    assert channel.store_facts["order_statuses"], "the store's own statuses are kept for the settings step"

    store.faults.update({"expired_token": True})
    with pytest.raises(AuthError):
        services.check_channel_connection(channel, actor=alice.user)
    assert SalesChannel.objects.get(pk=channel.pk).connection_state == ConnectionState.NEEDS_REAUTH

    store.faults.update({"expired_token": False})
    services.reauthorise_channel(channel, actor=alice.user, credentials=store.connector_credentials())
    channel = SalesChannel.objects.get(pk=channel.pk)
    assert (channel.connection_state, channel.last_error) == (ConnectionState.OK, "")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "store.http" in logged  # the requests really were logged ...
    for secret in secrets:
        assert secret not in logged  # ... without the credentials
