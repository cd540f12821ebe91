"""``connect_demo_stores``: what ``make run`` does to give the demo seller three working channels."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from accounts.services import sign_up
from channels.models import ConnectionState, SalesChannel
from connectors.sandbox import make_sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_stores(tmp_path: Any, settings: Any) -> Any:
    settings.ALLOW_PRIVATE_STORE_HOSTS = True
    settings.THREEDCART_PUBLIC_KEY = "demo-public-key"
    settings.THREEDCART_PRIVATE_KEY = "demo-private-key"
    keys = {"public_key": "demo-public-key", "private_key": "demo-private-key"}
    for platform, options in (("opencart", {"family": "4.0"}), ("xcart", {}), ("threedcart", keys)):
        make_sandbox(platform, db_path=str(tmp_path / f"{platform}.db"), **options).seed(6, 4, 3, 1)
    return tmp_path


def test_demo_seller_gets_one_live_channel_per_platform_and_a_product_master(demo_stores: Any) -> None:
    _user, account = sign_up(email="demo@example.com", password="a-Long-demo-pass-1", account_name="Demo")
    out = StringIO()
    call_command("connect_demo_stores", sandbox_dir=str(demo_stores), stdout=out)

    channels = SalesChannel.objects.filter(account=account).order_by("platform")
    assert [c.platform for c in channels] == ["opencart", "threedcart", "xcart"]
    assert all(c.connection_state == ConnectionState.OK and c.enabled for c in channels)
    assert {c.store_url for c in channels if c.platform != "threedcart"} == {
        "http://127.0.0.1:8701",
        "http://127.0.0.1:8702",
    }
    from inventory.models import Product

    assert Product.objects.filter(account=account).count() >= 6

    call_command("connect_demo_stores", sandbox_dir=str(demo_stores), stdout=out)  # safe to run again
    assert SalesChannel.objects.filter(account=account).count() == 3
    assert "already connected" in out.getvalue()
