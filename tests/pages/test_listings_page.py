"""Listings by channel: a summary line per channel, one channel's unmatched SKUs a page at a time."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from inventory.models import Listing, Product
from inventory.views import UNMATCHED_PAGE_SIZE
from tests.factories import SalesChannelFactory

pytestmark = pytest.mark.django_db


def _skus(body: str, side: str) -> list[str]:
    block = body.split(f'class="{side}"')[1].split("</ul>")[0]
    return re.findall(r"<code>([^<]+)</code>", block)


def _next(body: str) -> str | None:
    found = re.search(r'<a href="([^"]*)" rel="next">', body)
    return found.group(1).replace("&amp;", "&") if found else None


def test_summary_per_channel_and_one_channel_paged(alice: Any) -> None:
    first = SalesChannelFactory(account=alice.account, name="A shop")
    second = SalesChannelFactory(account=alice.account, name="B shop")
    listed = Product.objects.create(account=alice.account, sku="LISTED", on_hand=1)
    Product.objects.create(account=alice.account, sku="NOWHERE", on_hand=1)
    Listing.objects.create(account=alice.account, channel=first, product=listed, sku="LISTED", remote_id="0")
    extra = UNMATCHED_PAGE_SIZE + 5
    Listing.objects.bulk_create(
        Listing(account=alice.account, channel=second, sku=f"STORE-{n:04d}", remote_id=str(n))
        for n in range(extra)
    )
    client = Client()
    client.force_login(alice.user)
    url = reverse("inventory:unmatched")

    body = client.get(url).content.decode()
    summary = body.split('id="listing-summary"')[1].split("</table>")[0]
    cells = r"<tr[^>]*>\s*<td><a[^>]*>([^<]+)</a></td>\s*" + r'<td class="num">(\d+)</td>\s*' * 3
    rows = re.findall(cells, summary)
    assert rows == [("A shop", "1", "0", "1"), ("B shop", str(extra), str(extra), "2")]
    assert _skus(body, "master-only") == ["NOWHERE"]  # the first channel is shown by default

    body = client.get(url, {"channel": str(second.pk)}).content.decode()
    seen = _skus(body, "store-only")
    assert len(seen) == UNMATCHED_PAGE_SIZE
    assert _skus(body, "master-only") == ["LISTED", "NOWHERE"]
    following = _next(body)
    assert following is not None
    assert f"channel={second.pk}" in following
    rest = client.get(following).content.decode()
    seen += _skus(rest, "store-only")
    assert seen == [f"STORE-{n:04d}" for n in range(extra)]
    assert _next(rest) is None
    # A channel id that is not one of the account's shows the first channel, not an error.
    assert client.get(url, {"channel": "nonsense", "store_after": "%%%"}).status_code == 200
