"""The channel list shows 50 channels a page, by name, and every channel once across pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from channels.views import CHANNEL_PAGE_SIZE
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


def _names(body: str) -> list[str]:
    return re.findall(r'data-channel-name="([^"]+)"', body)


def _link(body: str, rel: str) -> str | None:
    found = re.search(rf'<a href="(\?[^"]*)" rel="{rel}">', body)
    return found.group(1) if found else None


def test_channel_list_pages_by_name(alice: Any, bob: Any) -> None:
    total = CHANNEL_PAGE_SIZE + 5
    for n in range(total):
        SalesChannelFactory(
            account=alice.account, name=f"Shop {n:03d}", store_url=f"https://s{n}.example.com"
        )
    SalesChannelFactory(account=bob.account, name="Bob's shop")
    client = Client()
    client.force_login(alice.user)
    url = reverse("channels:list")
    first = client.get(url).content.decode()
    assert _link(first, "prev") is None
    seen = _names(first)
    assert len(seen) == CHANNEL_PAGE_SIZE
    second = client.get(url + _link(first, "next")).content.decode()
    seen += _names(second)
    assert seen == [f"Shop {n:03d}" for n in range(total)]
    assert _link(second, "next") is None
    back = client.get(url + _link(second, "prev")).content.decode()
    assert _names(back) == seen[:CHANNEL_PAGE_SIZE]
    assert client.get(url, {"after": "garbage"}).status_code == 200
