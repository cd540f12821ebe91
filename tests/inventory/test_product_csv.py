"""Products as CSV: the export streams the account's master (formulas escaped); an import is
previewed, checked by the bulk API's own rules with per-row errors, all or nothing; tenancy."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import InventoryEvent, Product
from tests.factories import SalesChannelFactory, member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def products(alice, bob):
    Product.objects.create(account=alice.account, sku="MUG-1", name="Mug", on_hand=4, price=Decimal("9.50"))
    Product.objects.create(account=alice.account, sku="CAP-2", name='=HYPERLINK("x")', on_hand=0)
    Product.objects.create(account=bob.account, sku="BOB-9", name="Bob's", on_hand=7, price=Decimal("1.00"))


def _rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def _post(client, text, action="preview"):
    return client.post(reverse("inventory:product_import"), {"csv": text, "action": action})


def test_export_streams_only_the_accounts_products_with_formulas_escaped(client, alice, products):
    client.force_login(alice.user)
    response = client.get(reverse("inventory:product_export"))
    assert response["Content-Type"].startswith("text/csv")
    with CaptureQueriesContext(connection) as queries:
        first = next(iter(response.streaming_content))
    assert first.decode("utf-8-sig").startswith("sku,name,on_hand,price,tax_rate")
    assert not [q for q in queries if "inventory_product" in q["sql"]]  # nothing read before the header
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[0] for row in rows] == ["CAP-2", "MUG-1"]  # not Bob's
    assert rows[0][1] == '\'=HYPERLINK("x")'
    assert rows[1][2:4] == ["4", "9.5000"]


def test_round_trip_export_edit_import_changes_the_values(
    client, alice, products, django_capture_on_commit_callbacks
):
    SalesChannelFactory(account=alice.account)  # a channel that syncs stock and prices
    client.force_login(alice.user)
    rows = _rows(client.get(reverse("inventory:product_export")))
    for row in rows[1:]:
        if row[0] == "MUG-1":
            row[2], row[3] = "11", "12.25"
    rows.append(["NEW-3", "Teapot", "5", "", ""])
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    text = out.getvalue()

    preview = _post(client, text).content.decode()
    assert "1 new, 1 changed, 1 unchanged." in preview
    assert "on hand: 4 → 11" in preview
    assert "csv-apply" in preview
    assert Product.objects.get(account=alice.account, sku="MUG-1").on_hand == 4  # a preview writes nothing
    assert not Product.objects.filter(sku="NEW-3").exists()

    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, text, action="apply")
    assert response.status_code == 302
    mug = Product.objects.get(account=alice.account, sku="MUG-1")
    assert (mug.on_hand, mug.price) == (11, Decimal("12.25"))
    assert Product.objects.get(account=alice.account, sku="NEW-3").on_hand == 5
    cap = Product.objects.get(account=alice.account, sku="CAP-2")
    assert cap.name == '=HYPERLINK("x")'  # the escaped cell came back as it was
    assert InventoryEvent.objects.filter(account=alice.account, action="products.upserted").count() == 1
    assert callbacks  # stock and price jobs go out after commit


def test_per_row_errors_and_nothing_changed(client, alice, products):
    client.force_login(alice.user)
    text = "\n".join(
        [
            "sku,on_hand,price",
            "MUG-1,20,",  # line 2: fine on its own
            "CAP-2,-1,",  # line 3: negative
            "MUG-1,3,",  # line 4: repeated SKU
            "TEA-4,,2.00",  # line 5: fine in form
            "PEN-5,1,1.23456",  # line 6: too many decimals
        ]
    )
    for action in ("preview", "apply"):
        page = _post(client, text, action).content.decode()
        assert "3 rows to fix; nothing was changed" in page
        assert "On hand cannot be negative." in page
        assert "This SKU is already on line 2." in page
        assert "Use at most 4 decimal places." in page
        assert Product.objects.get(account=alice.account, sku="MUG-1").on_hand == 4
    # Only the stored-state rule left: a new SKU without its quantity.
    page = _post(client, "sku,on_hand,price\nMUG-1,20,\nTEA-4,,2.00\n", "apply").content.decode()
    assert "A new product needs its quantity on hand." in page
    assert Product.objects.get(account=alice.account, sku="MUG-1").on_hand == 4


def test_another_accounts_sku_is_a_new_product_of_this_account(client, alice, bob, products):
    client.force_login(alice.user)
    page = _post(client, "sku,on_hand\nBOB-9,1\n").content.decode()
    assert "1 new, 0 changed" in page
    assert _post(client, "sku,on_hand\nBOB-9,1\n", "apply").status_code == 302
    assert Product.objects.get(account=bob.account, sku="BOB-9").on_hand == 7
    assert Product.objects.get(account=alice.account, sku="BOB-9").on_hand == 1


def test_a_member_may_import(client, alice, products):
    client.force_login(member_of(alice.account))
    assert _post(client, "sku,on_hand\nMUG-1,8\n", "apply").status_code == 302
    assert Product.objects.get(account=alice.account, sku="MUG-1").on_hand == 8


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01\x02binary", "holds binary data"),
        ("sku,name\nMUG-1,Tasse \u00e0 caf\u00e9\n".encode("cp1252"), "not UTF-8 text (line 2"),
        (b"MUG-1,4\n", "with a sku column"),
        (b"sku\nMUG-1\n", "names no column to change"),
        (b"sku,on_hand\n", "header row but no products"),
    ],
)
def test_hostile_files_get_a_clear_message(client, alice, products, payload, message):
    client.force_login(alice.user)
    upload = SimpleUploadedFile("p.csv", payload, content_type="text/csv")
    response = client.post(reverse("inventory:product_import"), {"file": upload, "action": "apply"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Product.objects.get(account=alice.account, sku="MUG-1").on_hand == 4


def test_bom_semicolons_and_extra_columns_are_read(client, alice, products):
    client.force_login(alice.user)
    data = "\ufeffSKU;On hand;Notes\nMUG-1;6;keep dry\n".encode()
    upload = SimpleUploadedFile("p.csv", data, content_type="text/csv")
    page = client.post(reverse("inventory:product_import"), {"file": upload}).content.decode()
    assert "Columns ignored: Notes." in page
    assert "on hand: 4 → 6" in page


def test_ten_thousand_rows_are_previewed_and_one_more_is_refused(client, alice, products):
    client.force_login(alice.user)
    rows = "".join(f"S-{n:05d},{n}\n" for n in range(10_000))
    page = _post(client, "sku,on_hand\n" + rows).content.decode()
    assert "10000 new, 0 changed, 0 unchanged." in page
    assert "and 9800 more rows" in page
    assert not Product.objects.filter(sku="S-00001").exists()
    response = _post(client, "sku,on_hand\n" + rows + "S-X,1\n")
    assert response.status_code == 400
    assert "more than 10000 rows" in response.content.decode()


def test_a_huge_upload_is_refused_before_it_is_read(client, alice, products):
    client.force_login(alice.user)
    huge = SimpleUploadedFile("p.csv", b"sku,on_hand\n" + b"A,1\n" * (600 * 1024), content_type="text/csv")
    response = client.post(reverse("inventory:product_import"), {"file": huge})
    assert response.status_code == 413
    assert "larger than 2 MB" in response.content.decode()


def test_random_bytes_never_make_a_500(client, alice, products):
    import random

    client.force_login(alice.user)
    rng = random.Random(15)
    alphabet = b"sku,on_hand;price\t\"'\r\n =+-@MUG-1.5\xc3\xa9\xff\x00\xfe"
    for _ in range(40):
        payload = b"sku,on_hand,price\n" + bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        upload = SimpleUploadedFile("p.csv", payload, content_type="text/csv")
        response = client.post(reverse("inventory:product_import"), {"file": upload, "action": "apply"})
        assert response.status_code in (200, 302, 400), payload


def test_export_follows_the_lists_search(client, alice, products):
    client.force_login(alice.user)
    rows = _rows(client.get(reverse("inventory:product_export"), {"q": "mug"}))
    assert [row[0] for row in rows[1:]] == ["MUG-1"]
    page = client.get(reverse("inventory:product_list"), {"q": "mug"}).content.decode()
    assert "/products/export.csv?q=mug" in page
