"""Account time zones: chosen at sign-up from the browser, changed on the settings page, used for
every time a page shows (zone named), for the store-local placed-at, for date filters and the CSV
export; the REST API stays in UTC."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Role, User
from accounts.services import set_time_zone
from accounts.zones import browser_time_zone, time_zone_names, validate_time_zone
from tests.factories import PASSWORD, SalesChannelFactory, member_of
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db

#: 13:30 UTC on 10 March 2026 is 00:30 on 11 March in Sydney (AEDT, +11) and 14:30 in Berlin (CET).
PLACED = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _ui_test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def sydney(alice, client):
    """Alice's account in Sydney with one order on a Berlin store, Alice signed in."""
    Account.objects.filter(pk=alice.account.pk).update(time_zone="Australia/Sydney")
    channel = SalesChannelFactory(account=alice.account, name="Berlin shop")
    order = make_order(channel, "5001", placed_at=PLACED)
    client.force_login(alice.user)
    return order


def test_zone_names_are_the_iana_database():
    names = time_zone_names()
    assert "Australia/Sydney" in names
    assert "UTC" in names
    assert "localtime" not in names
    validate_time_zone("America/New_York")
    for bad in ("Mars/Olympus_Mons", "", "../../etc/passwd", "europe/berlin ", None, 5):
        with pytest.raises(Exception, match="Choose a time zone"):
            validate_time_zone(bad)
    assert browser_time_zone("Asia/Kolkata") == "Asia/Kolkata"
    assert browser_time_zone("Nowhere/Special") == "UTC"
    assert browser_time_zone(None) == "UTC"


def test_pages_show_times_in_the_account_zone_with_the_zone_named(client, sydney):
    listing = client.get(reverse("orders:list")).content.decode()
    assert "11 Mar 2026, 00:30 AEDT" in listing
    assert "13:30" not in listing

    detail = client.get(reverse("orders:detail", args=[sydney.pk])).content.decode()
    assert re.search(r'id="order-placed-at">11 Mar 2026, 00:30 AEDT<', detail)
    # the store's own zone (Europe/Berlin, from its facts) as well, since it reads differently
    store = re.search(r'id="order-placed-at-store">\(([^)]*)\)', detail)
    assert store, detail
    assert store.group(1) == "10 Mar 2026, 14:30 CET at the store, Europe/Berlin"
    assert 'datetime="2026-03-10T13:30:00+00:00"' in detail
    # the zone is the request's only: nothing leaks into the next request or this thread
    assert timezone.get_current_timezone_name() == "UTC"


def test_store_time_is_left_out_when_it_reads_the_same(client, sydney):
    channel = sydney.channel
    channel.settings = {**channel.settings, "timezone": "Australia/Melbourne"}  # the channel setting wins
    channel.save(update_fields=["settings"])
    detail = client.get(reverse("orders:detail", args=[sydney.pk])).content.decode()
    assert "11 Mar 2026, 00:30 AEDT" in detail
    assert "order-placed-at-store" not in detail

    channel.settings = {**channel.settings, "timezone": "Not/A_Zone"}
    channel.store_facts = {**channel.store_facts, "timezone": "Not/A_Zone"}
    channel.save(update_fields=["settings", "store_facts"])
    response = client.get(reverse("orders:detail", args=[sydney.pk]))
    assert response.status_code == 200
    assert "order-placed-at-store" not in response.content.decode()


def test_a_utc_account_names_utc_and_shows_the_store_zone(client, alice):
    channel = SalesChannelFactory(account=alice.account)
    order = make_order(channel, "5002", placed_at=PLACED)
    client.force_login(alice.user)
    detail = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert "10 Mar 2026, 13:30 UTC" in detail
    assert "10 Mar 2026, 14:30 CET at the store" in detail


def test_date_filters_are_days_in_the_account_zone(client, sydney):
    def listed(**params: str) -> bool:
        return "#5001" in client.get(reverse("orders:list"), params).content.decode()

    # placed on 11 March in Sydney, though still 10 March in UTC
    assert listed(placed_from="2026-03-11")
    assert listed(placed_to="2026-03-11")
    assert not listed(placed_to="2026-03-10")
    assert not listed(placed_from="2026-03-12")

    Account.objects.filter(pk=sydney.account_id).update(time_zone="UTC")
    assert listed(placed_to="2026-03-10")
    assert not listed(placed_from="2026-03-11")


def test_csv_export_writes_times_in_the_account_zone(client, sydney):
    response = client.get(reverse("orders:export"))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header, first = rows[0], rows[1]
    assert first[header.index("placed at")] == "2026-03-11T00:30:00+11:00"


def test_the_api_stays_in_utc_for_a_browser_session(client, sydney):
    response = client.get(f"/api/v1/orders/{sydney.pk}/")
    assert response.status_code == 200, response.content
    assert response.json()["placed_at"] in ("2026-03-10T13:30:00Z", "2026-03-10T13:30:00+00:00")


def test_settings_page_changes_the_zone(client, alice):
    client.force_login(alice.user)
    page = client.get(reverse("account_settings"))
    assert page.status_code == 200
    assert 'option value="UTC" selected' in page.content.decode()

    response = client.post(reverse("account_settings"), {"time_zone": "America/New_York"})
    assert response.status_code == 302
    alice.account.refresh_from_db()
    assert alice.account.time_zone == "America/New_York"
    page = client.get(response.url).content.decode()
    assert "Times are now shown in America/New York" in page
    assert re.search(r"it is now \d+ \w+ \d{4}, \d\d:\d\d E[SD]T there", page)


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", "x" * 5000, "Europe/Berlin\x00"])
def test_a_bad_zone_is_a_form_error_not_a_500(client, alice, bad):
    client.force_login(alice.user)
    response = client.post(reverse("account_settings"), {"time_zone": bad})
    assert response.status_code == 200
    assert response.context["form"].errors["time_zone"]
    alice.account.refresh_from_db()
    assert alice.account.time_zone == "UTC"


def test_members_see_the_zone_and_only_admins_change_it(client, alice):
    member = member_of(alice.account, Role.MEMBER)
    client.force_login(member)
    page = client.get(reverse("account_settings")).content.decode()
    assert "An owner or admin of the account can change it." in page
    assert client.post(reverse("account_settings"), {"time_zone": "Asia/Tokyo"}).status_code == 403
    with pytest.raises(PermissionDenied, match="can change the account"):
        set_time_zone(alice.account, actor=member, time_zone="Asia/Tokyo")
    alice.account.refresh_from_db()
    assert alice.account.time_zone == "UTC"


def _sign_up_to_password_page(client, mailoutbox) -> str:
    client.post(reverse("signup"), {"account_name": "Zoned Shop", "email": "zoned@example.com"})
    (message,) = mailoutbox
    path = re.search(r"https?://[^/\s]+(/signup/confirm/\S*)", message.body).group(1)
    return client.get(path).url


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("America/New_York", "America/New_York"), ("", "UTC"), ("Mars/Base", "UTC"), ("y" * 900, "UTC")],
)
def test_sign_up_keeps_the_zone_the_browser_sent(client, mailoutbox, sent, stored):
    password_page = _sign_up_to_password_page(client, mailoutbox)
    page = client.get(password_page).content.decode()
    assert "data-browser-time-zone" in page
    assert "js/timezone.js" in page
    response = client.post(
        password_page, {"password": PASSWORD, "password_confirm": PASSWORD, "time_zone": sent}
    )
    assert response.status_code == 302
    user = User.objects.get(email="zoned@example.com")
    assert user.memberships.get().account.time_zone == stored
