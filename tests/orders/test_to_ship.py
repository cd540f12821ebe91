"""The to-ship queue and shipment CSV import: what needs shipping, shipping several orders at once,
a warehouse CSV with preview, per-row errors and all-or-nothing; tenancy; the orders CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, Shipment, ShipmentState
from tests.factories import SalesChannelFactory, member_of
from tests.orders.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = "tests.orders.urls"


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    from channels import sync

    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(sync, "send_job", lambda channel_id, job: jobs.append((str(channel_id), str(job))))
    return jobs


@pytest.fixture
def shop(alice):
    return SalesChannelFactory(account=alice.account, name="Alice OpenCart")


@pytest.fixture
def other_shop(alice):
    return SalesChannelFactory(account=alice.account, name="Alice X-Cart", platform="xcart")


def _preview(client, text, **extra):
    return client.post(reverse("orders:shipment_csv"), {"csv": text, "action": "preview", **extra})


def _apply(client, text, **extra):
    return client.post(reverse("orders:shipment_csv"), {"csv": text, "action": "apply", **extra})


# -- the queue ----------------------------------------------------------------------------------


def test_queue_lists_open_orders_with_units_left_oldest_first(client, alice, bob, shop):
    now = timezone.now()
    new = make_order(shop, "1001", placed_at=now - timedelta(hours=2))
    old = make_order(shop, "1002", placed_at=now - timedelta(days=5))
    partly = make_order(shop, "1003", placed_at=now - timedelta(days=3))
    Shipment.objects.create(
        account=alice.account,
        order=partly,
        channel=shop,
        tracking_numbers=["T1"],
        lines=[{"external_line_id": "1003-0", "quantity": 2}],
        state=ShipmentState.CONFIRMED,
    )
    done = make_order(shop, "1004")
    Shipment.objects.create(
        account=alice.account,
        order=done,
        channel=shop,
        tracking_numbers=["T2"],
        lines=[{"external_line_id": "1004-0", "quantity": 2}, {"external_line_id": "1004-1", "quantity": 2}],
    )
    failed = make_order(shop, "1005")  # a failed shipment covers nothing: still to ship
    Shipment.objects.create(
        account=alice.account,
        order=failed,
        channel=shop,
        tracking_numbers=["T3"],
        lines=[{"external_line_id": "1005-0", "quantity": 2}],
        state=ShipmentState.FAILED,
    )
    make_order(shop, "1006", store_closed=True)
    make_order(shop, "1007", status_code="3")  # the channel's processed ("shipped") status
    make_order(SalesChannelFactory(account=bob.account), "1008")
    client.force_login(alice.user)
    page = client.get(reverse("orders:to_ship")).content.decode()
    shown = [
        number
        for number in ("#1001", "#1002", "#1003", "#1004", "#1005", "#1006", "#1007", "#1008")
        if number in page
    ]
    assert shown == ["#1001", "#1002", "#1003", "#1005"]
    assert page.index("#1002") < page.index("#1003") < page.index("#1005") < page.index("#1001")
    assert "2 of 4" in page  # the partly shipped order's units left
    assert str(new.pk) in page
    assert str(old.pk) in page

    partial = client.get(reverse("orders:to_ship"), {"shipped": "partial"}).content.decode()
    assert "#1003" in partial
    assert "#1002" not in partial
    assert "#1005" not in partial
    aged = client.get(reverse("orders:to_ship"), {"age": "2"}).content.decode()
    assert "#1002" in aged
    assert "#1003" in aged
    assert "#1001" not in aged


def test_queue_filters_by_channel(client, alice, shop, other_shop):
    make_order(shop, "2001")
    make_order(other_shop, "2002")
    client.force_login(alice.user)
    page = client.get(reverse("orders:to_ship"), {"channel": str(other_shop.pk)}).content.decode()
    assert "#2002" in page
    assert "#2001" not in page


def test_ship_several_ticked_orders_at_once(client, alice, shop, sent, django_capture_on_commit_callbacks):
    first, second = make_order(shop, "3001"), make_order(shop, "3002")
    untouched = make_order(shop, "3003")
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("orders:to_ship"),
            {
                "order": [str(first.pk), str(second.pk)],
                "default_carrier": "DHL",
                f"tracking-{first.pk}": "TRK-1",
                f"tracking-{second.pk}": "TRK-2",
                f"carrier-{second.pk}": "UPS",
                f"tracking-{untouched.pk}": "not ticked",
            },
        )
    assert response.status_code == 302
    shipments = {s.order_id: s for s in Shipment.objects.all()}
    assert set(shipments) == {first.pk, second.pk}
    assert shipments[first.pk].carrier == "DHL"
    assert shipments[first.pk].tracking_numbers == ["TRK-1"]
    assert shipments[second.pk].carrier == "UPS"
    assert sorted((line["external_line_id"], line["quantity"]) for line in shipments[first.pk].lines) == [
        ("3001-0", 2),
        ("3001-1", 2),
    ]
    assert not shipments[first.pk].is_partial
    assert any(job == "shipments" for _, job in sent)
    page = client.get(reverse("orders:to_ship")).content.decode()
    assert "#3003" in page
    assert "#3001" not in page


def test_ticked_orders_are_all_or_nothing(client, alice, shop):
    good, missing = make_order(shop, "3101"), make_order(shop, "3102")
    client.force_login(alice.user)
    response = client.post(
        reverse("orders:to_ship"),
        {"order": [str(good.pk), str(missing.pk)], f"tracking-{good.pk}": "TRK-1"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was recorded" in page
    assert "Enter a tracking number." in page
    assert 'value="TRK-1"' in page  # what was typed stays
    assert not Shipment.objects.exists()


def test_ticking_another_accounts_order_records_nothing(client, alice, bob, shop):
    theirs = make_order(SalesChannelFactory(account=bob.account), "3201")
    client.force_login(alice.user)
    response = client.post(
        reverse("orders:to_ship"), {"order": [str(theirs.pk)], f"tracking-{theirs.pk}": "X"}
    )
    assert response.status_code == 200
    assert not Shipment.objects.exists()


# -- the CSV ------------------------------------------------------------------------------------


def test_csv_preview_shows_the_bad_row_and_records_nothing_until_fixed(client, alice, shop):
    make_order(shop, "4001")
    make_order(shop, "4002")
    client.force_login(alice.user)
    text = "order number,carrier,tracking number\n#4001,DHL,JD1\n4002,DHL,JD2\n4999,DHL,JD3\n"
    preview = _preview(client, text)
    page = preview.content.decode()
    assert preview.status_code == 200
    assert "Order 4999 not found." in page
    assert "csv-apply" not in page  # no apply button while a row is wrong
    assert "4999,DHL,JD3" in page  # the text is back in the box to fix
    applied = _apply(client, text)  # even applying directly records none of the good rows
    assert applied.status_code == 200
    assert "Order 4999 not found." in applied.content.decode()
    assert not Shipment.objects.exists()

    fixed = text.replace("4999", "4002").replace("JD3", "JD2")
    page = _preview(client, fixed).content.decode()
    assert "Order 4999" not in page
    assert "Repeats line 3" in page  # the same order and tracking twice is an error too
    fixed = text.replace("4999,DHL,JD3\n", "")
    page = _preview(client, fixed).content.decode()
    assert "csv-apply" in page
    assert "2 × SKU-0 Item 0" in page  # lines shown by SKU and name
    assert not Shipment.objects.exists()  # a preview records nothing
    response = _apply(client, fixed)
    assert response.status_code == 302
    assert sorted(Shipment.objects.values_list("tracking_numbers", flat=True)) == [["JD1"], ["JD2"]]


def test_csv_with_skus_ships_those_units(client, alice, shop):
    order = make_order(shop, "4101", lines=3)
    client.force_login(alice.user)
    text = "4101;UPS;1Z1;SKU-0;1\n4101;UPS;1Z1;SKU-2;2\n4101;DHL;JD9;sku-1;\n"  # no header, semicolons
    page = _preview(client, text).content.decode()
    assert "1 × SKU-0 Item 0" in page
    assert "2 × SKU-2 Item 2" in page
    assert "2 × SKU-1 Item 1" in page
    assert _apply(client, text).status_code == 302
    shipments = {s.tracking_numbers[0]: s for s in Shipment.objects.filter(order=order)}
    assert sorted((l["external_line_id"], l["quantity"]) for l in shipments["1Z1"].lines) == [  # noqa: E741
        ("4101-0", 1),
        ("4101-2", 2),
    ]
    assert shipments["JD9"].lines == [{"external_line_id": "4101-1", "quantity": 2}]
    assert shipments["1Z1"].is_partial  # one unit of SKU-0 is still to ship


def test_csv_per_row_errors_name_the_problem(client, alice, shop):
    make_order(shop, "4201")
    make_order(shop, "4202", store_closed=True, status_name="Cancelled")
    client.force_login(alice.user)
    text = "\n".join(
        [
            "Order #,Carrier,Tracking #,SKU,Qty",
            "4201,DHL,,,",  # line 2: no tracking
            "4201,DHL,A1,NOPE,1",  # line 3: unknown SKU
            "4201,DHL,A2,SKU-0,5",  # line 4: too many
            "4201,DHL,A3,SKU-1,x",  # line 5: not a number
            "4201,DHL,A4,,2",  # line 6: quantity without SKU
            "4202,DHL,A5,,",  # line 7: closed on the store (the service's own rule)
            ",DHL,A6,,",  # line 8: no order number
        ]
    )
    page = _preview(client, text).content.decode()
    assert "Enter a tracking number." in page
    assert "Order #4201 has no line with SKU NOPE." in page
    assert "has only 2 unit(s) of SKU-0 left to ship; the file says 5." in page
    assert "The quantity must be a whole number." in page
    assert "A quantity needs its SKU" in page
    assert "as closed (Cancelled)" in page
    assert "Enter the order number." in page
    assert "7 rows to fix" in page
    assert not Shipment.objects.exists()


def test_another_accounts_order_number_is_not_found(client, alice, bob, shop):
    make_order(SalesChannelFactory(account=bob.account, name="Bob shop"), "5001")
    client.force_login(alice.user)
    page = _preview(client, "5001,DHL,JD1").content.decode()
    assert "Order 5001 not found." in page
    assert "Bob shop" not in page
    assert _apply(client, "5001,DHL,JD1").status_code == 200
    assert not Shipment.objects.exists()


def test_an_order_number_on_two_channels_needs_the_channel(client, alice, shop, other_shop):
    make_order(shop, "6001")
    theirs = make_order(other_shop, "6001")
    client.force_login(alice.user)
    page = _preview(client, "6001,DHL,JD1").content.decode()
    assert "exists on several channels (Alice OpenCart, Alice X-Cart)" in page
    assert not Shipment.objects.exists()
    with_column = "order,carrier,tracking,channel\n6001,DHL,JD1,alice x-cart\n"
    assert _apply(client, with_column).status_code == 302
    assert list(Shipment.objects.values_list("order_id", flat=True)) == [theirs.pk]
    Shipment.objects.all().delete()
    assert _apply(client, "6001,DHL,JD1", channel=str(other_shop.pk)).status_code == 302
    assert list(Shipment.objects.values_list("order_id", flat=True)) == [theirs.pk]
    page = _preview(client, "order,carrier,tracking,channel\n6001,DHL,JD1,Nowhere\n").content.decode()
    assert "You have no channel named “Nowhere”." in page


def test_applying_the_same_file_twice_records_each_shipment_once(client, alice, shop):
    make_order(shop, "7001")
    client.force_login(alice.user)
    text = "7001,DHL,JD1\n"
    assert _apply(client, text).status_code == 302
    again = _apply(client, text, follow=False)
    assert again.status_code == 302
    assert Shipment.objects.count() == 1
    page = client.get(reverse("orders:to_ship")).content.decode()
    assert "already been recorded" in page


def test_a_service_refusal_rolls_back_the_whole_file(client, alice, shop):
    make_order(shop, "7101")
    closed = make_order(shop, "7102")
    client.force_login(alice.user)
    text = "7101,DHL,JD1\n7102,DHL,JD2\n"
    assert "csv-apply" in _preview(client, text).content.decode()
    Order.objects.filter(pk=closed.pk).update(store_closed=True)  # the store closed it meanwhile
    response = _apply(client, text)
    assert response.status_code == 200
    assert "as closed" in response.content.decode()
    assert not Shipment.objects.exists()


def test_a_member_may_import_but_the_file_is_checked_for_everyone(client, alice, shop):
    make_order(shop, "7201")
    client.force_login(member_of(alice.account))
    assert _apply(client, "7201,DHL,JD1").status_code == 302
    assert Shipment.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "holds binary data"),
        ("7301,DHL,Jürgen".encode("latin-1"), "not UTF-8 text (line 1"),
        (b"", "The file is empty."),
        (b"order number,carrier,tracking\n", "header row but no shipments"),
        (b"carrier,sku\nDHL,X\n", None),  # no header recognised: read as positional, order not found
        (b'7301,"DHL,JD1\n', "cannot be read as CSV"),
    ],
)
def test_hostile_files_get_a_clear_message(client, alice, shop, payload, message):
    make_order(shop, "7301")
    client.force_login(alice.user)
    upload = SimpleUploadedFile("ship.csv", payload, content_type="text/csv")
    response = client.post(reverse("orders:shipment_csv"), {"file": upload, "action": "preview"})
    assert response.status_code in (200, 400)
    if message:
        assert message in response.content.decode()
    assert not Shipment.objects.exists()


def test_a_bom_and_utf16_file_are_read(client, alice, shop):
    make_order(shop, "7401")
    make_order(shop, "7402")
    client.force_login(alice.user)
    for number, data in (
        ("7401", "\ufefforder number,carrier,tracking\n7401,DHL,JD1\n".encode()),
        ("7402", "order number,carrier,tracking\n7402,DHL,JD2\n".encode("utf-16")),
    ):
        upload = SimpleUploadedFile("ship.csv", data, content_type="text/csv")
        response = client.post(reverse("orders:shipment_csv"), {"file": upload, "action": "apply"})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Shipment.objects.filter(order__number=f"#{number}").exists()


def test_too_many_rows_and_a_huge_upload_are_refused(client, alice, shop):
    client.force_login(alice.user)
    rows = "\n".join(f"{n},DHL,T{n}" for n in range(502))
    response = _preview(client, rows)
    assert response.status_code == 400
    assert "more than 500 rows" in response.content.decode()
    huge = SimpleUploadedFile("ship.csv", b"1,DHL,T\n" * (300 * 1024), content_type="text/csv")
    response = client.post(reverse("orders:shipment_csv"), {"file": huge, "action": "preview"})
    assert response.status_code == 413
    assert "larger than 2 MB" in response.content.decode()


def test_shipment_lines_on_the_order_page_show_sku_and_name(client, alice, shop):
    order = make_order(shop, "8001")
    Shipment.objects.create(
        account=alice.account,
        order=order,
        channel=shop,
        tracking_numbers=["JD1"],
        lines=[{"external_line_id": "8001-1", "quantity": 1}],
        state=ShipmentState.FAILED,
        last_error="The store refused: " + "x" * 300,
    )
    client.force_login(alice.user)
    page = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert "1 × SKU-1 Item 1" in page
    assert "line 8001-1" not in page
    assert "x" * 300 in page  # the whole error


# -- orders export ------------------------------------------------------------------------------


def _csv_of(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_orders_export_streams_the_filtered_list_with_lines(client, alice, bob, shop):
    make_order(shop, "9001", customer_name='=HYPERLINK("http://evil")')
    make_order(shop, "9002", status_code="5", status_name="Complete", lines=1)
    make_order(SalesChannelFactory(account=bob.account), "9003")
    client.force_login(alice.user)
    response = client.get(reverse("orders:export"))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv_of(response)
    assert rows[0][:3] == ["order number", "channel", "placed at"]
    numbers = [row[0] for row in rows[1:]]
    assert sorted(numbers) == ["#9001", "#9001", "#9002"]  # one row per line; not Bob's
    first = next(row for row in rows[1:] if row[0] == "#9001")
    assert first[4].startswith("'=HYPERLINK")  # a formula is escaped, not run by a spreadsheet
    assert first[8:11] == ["SKU-0", "Item 0", "2"]
    filtered = _csv_of(client.get(reverse("orders:export"), {"status": "Complete"}))
    assert [row[0] for row in filtered[1:]] == ["#9002"]


def test_random_bytes_never_make_a_500(client, alice, shop):
    import random

    make_order(shop, "7501")
    client.force_login(alice.user)
    rng = random.Random(15)
    alphabet = b"7501,;\t\"'\r\n =+-@#DHLx\xc3\xa9\xff\x00\xfe"
    for _ in range(40):
        payload = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        upload = SimpleUploadedFile("ship.csv", payload, content_type="text/csv")
        response = client.post(reverse("orders:shipment_csv"), {"file": upload, "action": "apply"})
        assert response.status_code in (200, 302, 400), payload


def test_the_queue_page_takes_a_csv_too(client, alice, shop):
    make_order(shop, "7601")
    client.force_login(alice.user)
    page = client.get(reverse("orders:to_ship")).content.decode()
    assert 'id="csv_csv"' in page
    assert page.count('id="id_channel"') == 1  # the filter's channel; the CSV form has its own ids
    response = client.post(reverse("orders:shipment_csv"), {"csv": "7601,DHL,JD1", "action": "preview"})
    assert "csv-apply" in response.content.decode()
