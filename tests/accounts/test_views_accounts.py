"""Seller UI for accounts: sign up, log in/out (throttled), API keys (shown once, revocable)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client as client_class
from django.urls import reverse

from accounts.models import Account, ApiKey, Membership, Role, User
from accounts.services import create_api_key
from accounts.views import NEW_KEY_SESSION
from channels.models import ConnectionState
from tests.factories import PASSWORD, SalesChannelFactory, member_of

pytestmark = pytest.mark.django_db


def signup_form(**overrides: str) -> dict[str, str]:
    form = {"account_name": "Penny's Pottery", "email": "penny@example.com"}
    form.update(overrides)
    return form


def link_in(message, path_start: str) -> str:
    """The first link in an e-mail whose path starts with ``path_start``, as a path."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(path_start) + r"\S*)", message.body)
    assert match, message.body
    return match.group(1)


def without_csrf(response) -> str:
    """The page with its per-request CSRF token blanked, to compare two pages for equality."""
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", response.content.decode())


@pytest.fixture(autouse=True)
def _ui_test_settings(settings):
    """Pages link static files and tests run without ``collectstatic``: no manifest storage.
    A fast password hasher keeps the many sign-ups and logins of these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def alice(alice, client):
    """Alice (the shared tenant fixture), signed in."""
    client.force_login(alice.user)
    return alice


def test_sign_up_mails_a_link_then_the_password_creates_the_account_and_logs_in(client, mailoutbox):
    response = client.post(reverse("signup"), signup_form())

    assert response.status_code == 302
    assert response.url == reverse("signup_sent")
    assert not User.objects.exists()  # nothing is stored before the address is confirmed
    (message,) = mailoutbox
    assert message.to == ["penny@example.com"]
    confirm = link_in(message, "/signup/confirm/")
    landing = client.get(confirm)
    assert landing.status_code == 302
    assert landing.url == reverse("signup_password")  # the token leaves the address bar
    page = client.get(landing.url).content.decode()
    assert "penny@example.com" in page
    assert "Penny&#x27;s Pottery" in page

    response = client.post(landing.url, {"password": PASSWORD, "password_confirm": PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("channels:list")
    user = User.objects.get(email="penny@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.account.name == "Penny's Pottery"
    page = client.get(response.url).content.decode()
    assert "Penny&#x27;s Pottery" in page
    assert "No sales channels yet" in page
    # the link is single-use: the account exists now
    client.post(reverse("logout"))
    again = client.get(confirm)
    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert Account.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"account_name": ""}, "account_name", "This field is required."),
        ({"account_name": "Shop\u202egnp.exe"}, "account_name", "invisible characters"),
    ],
)
def test_sign_up_errors_appear_next_to_their_field(client, mailoutbox, overrides, field, message):
    response = client.post(reverse("signup"), signup_form(**overrides))

    body = response.content.decode()
    assert response.status_code == 200
    field_html = body.split(f'id="field-{field}"', 1)[1].split('class="form-field', 1)[0]
    assert message in field_html
    assert not mailoutbox


@pytest.mark.parametrize(
    ("password", "confirm", "field", "message"),
    [
        (PASSWORD, "something-else-42", "password_confirm", "The two passwords are not the same."),
        ("password", "password", "password", "too common"),
    ],
)
def test_password_errors_of_the_second_step_appear_next_to_their_field(
    client, mailoutbox, password, confirm, field, message
):
    client.post(reverse("signup"), signup_form())
    confirm_url = client.get(link_in(mailoutbox[0], "/signup/confirm/")).url

    response = client.post(confirm_url, {"password": password, "password_confirm": confirm})

    body = response.content.decode()
    assert response.status_code == 200
    field_html = body.split(f'id="field-{field}"', 1)[1].split('class="form-field', 1)[0]
    assert message in field_html
    assert f'value="{password}"' not in body  # passwords are never rendered back
    assert not User.objects.exists()


def test_sign_up_answers_the_same_for_a_new_and_a_known_address(client, bob, mailoutbox):
    known = client.post(reverse("signup"), signup_form(email="BOB@example.com"))
    new = client.post(reverse("signup"), signup_form(email="newcomer@example.com"))

    assert (known.status_code, known.url) == (new.status_code, new.url) == (302, reverse("signup_sent"))
    assert without_csrf(client.get(known.url)) == without_csrf(client.get(new.url))
    # only the owner of each inbox learns which case it was
    to_bob, to_newcomer = mailoutbox
    assert to_bob.to == ["bob@example.com"]
    assert "already have one" in to_bob.body
    assert "/signup/confirm/" not in to_bob.body
    assert reverse("password_reset") in to_bob.body
    assert "/signup/confirm/" in to_newcomer.body
    assert Account.objects.count() == 1


@pytest.mark.parametrize("token", ["forged", "eyJlbWFpbCI6ImFAYi5jIn0:1a2b3c:deadbeef"])
def test_a_forged_sign_up_link_creates_nothing(client, token):
    response = client.get(reverse("signup_confirm", args=[token]))
    assert response.status_code == 400
    assert "invalid or has expired" in response.content.decode()
    response = client.post(reverse("signup_password"), {"password": PASSWORD, "password_confirm": PASSWORD})
    assert response.status_code == 400
    assert not User.objects.exists()


def test_an_expired_sign_up_link_creates_nothing(client, mailoutbox, monkeypatch):
    from datetime import timedelta

    from accounts import services

    client.post(reverse("signup"), signup_form())
    password_page = client.get(link_in(mailoutbox[0], "/signup/confirm/")).url
    monkeypatch.setattr(services, "SIGN_UP_LINK_MAX_AGE", timedelta(seconds=-1))
    response = client.post(password_page, {"password": PASSWORD, "password_confirm": PASSWORD})
    assert response.status_code == 400
    assert not User.objects.exists()


# --------------------------------------------------------------------------------------------------
# Password reset (Django's views and e-mails)
# --------------------------------------------------------------------------------------------------


def test_login_page_links_to_password_reset(client):
    body = client.get(reverse("login")).content.decode()
    assert "Forgot your password?" in body
    assert reverse("password_reset") in body


def test_password_reset_answers_the_same_for_a_known_and_an_unknown_address(client, bob, mailoutbox):
    known = client.post(reverse("password_reset"), {"email": "BOB@example.com"})
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.com"})

    assert (known.status_code, known.url) == (unknown.status_code, unknown.url)
    assert known.url == reverse("password_reset_done")
    assert without_csrf(client.get(known.url)) == without_csrf(client.get(unknown.url))
    (message,) = mailoutbox
    assert message.to == ["bob@example.com"]


def test_sign_up_and_reset_mails_are_limited_per_recipient_with_the_same_answer(
    client, bob, mailoutbox, settings
):
    settings.ACCOUNT_EMAIL_ADDRESS_LIMIT = 2
    answers = [client.post(reverse("password_reset"), {"email": "bob@example.com"}) for _ in range(3)]
    answers += [client.post(reverse("signup"), signup_form(email="bob@example.com")) for _ in range(2)]

    assert [answer.url for answer in answers] == [reverse("password_reset_done")] * 3 + [
        reverse("signup_sent")
    ] * 2
    assert len(mailoutbox) == 2  # an inbox cannot be flooded through Storelink


def test_account_mails_are_limited_per_client(client, mailoutbox, settings):
    settings.ACCOUNT_EMAIL_CLIENT_LIMIT = 3
    for number in range(5):
        response = client.post(reverse("signup"), signup_form(email=f"target{number}@example.com"))
        assert response.url == reverse("signup_sent")
    assert [message.to for message in mailoutbox] == [[f"target{n}@example.com"] for n in range(3)]


def test_password_reset_link_sets_a_new_password_once(client, bob, mailoutbox):
    client.post(reverse("password_reset"), {"email": "bob@example.com"})
    link = link_in(mailoutbox[0], "/password-reset/")
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    new_password = "a-brand-new-password-93"

    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )

    assert done.status_code == 302
    assert done.url == reverse("password_reset_complete")
    bob.user.refresh_from_db()
    assert bob.user.check_password(new_password)
    again = client.get(link, follow=True).content.decode()
    assert "invalid or was already used" in again
    assert (
        client.post(reverse("login"), {"username": "bob@example.com", "password": new_password}).status_code
        == 302
    )


def test_password_reset_form_has_no_credential_note_and_refuses_weak_passwords(client, bob, mailoutbox):
    client.post(reverse("password_reset"), {"email": "bob@example.com"})
    form_page = client.get(link_in(mailoutbox[0], "/password-reset/"), follow=True)
    body = form_page.content.decode()
    assert 'type="password"' in body
    assert CREDENTIAL_NOTE not in body

    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "password", "new_password2": "password"}
    )

    assert response.status_code == 200
    assert "too common" in response.content.decode()
    bob.user.refresh_from_db()
    assert bob.user.check_password(PASSWORD)


def test_log_in_and_out(client, bob):
    response = client.post(reverse("login"), {"username": "bob@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("channels:list")).status_code == 200

    assert client.get(reverse("logout")).status_code == 405  # a link cannot log anyone out
    client.post(reverse("logout"))
    assert client.get(reverse("channels:list")).status_code == 302


def test_wrong_password_is_refused_with_a_clear_message(client, bob):
    response = client.post(reverse("login"), {"username": "bob@example.com", "password": "nope-nope-nope"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()


def test_repeated_failures_are_throttled_even_with_the_right_password(client, bob, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": "bob@example.com", "password": "wrong-password-1"})

    response = client.post(reverse("login"), {"username": "bob@example.com", "password": PASSWORD})

    assert response.status_code == 200
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_client_trying_many_addresses_is_stopped_with_its_own_message(client, bob, settings):
    settings.LOGIN_THROTTLE_CLIENT_ATTEMPTS = 4
    for number in range(4):
        client.post(reverse("login"), {"username": f"guess{number}@example.com", "password": "Summer2026!"})

    response = client.post(reverse("login"), {"username": "bob@example.com", "password": PASSWORD})

    assert "Too many failed log-ins from your network" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # the same seller from another address logs in as usual
    other = client_class()
    ok = other.post(
        reverse("login"), {"username": "bob@example.com", "password": PASSWORD}, REMOTE_ADDR="198.51.100.77"
    )
    assert ok.status_code == 302


def test_login_page_links_to_sign_up(client):
    body = client.get(reverse("login")).content.decode()
    assert reverse("signup") in body
    assert 'autocomplete="email"' in body


# --------------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------------


def test_api_key_is_shown_once_then_only_its_prefix(client, alice):
    response = client.post(reverse("api_keys"), {"name": "Warehouse WMS"})
    assert response.status_code == 302

    first = client.get(reverse("api_keys"))
    body = first.content.decode()
    key = ApiKey.objects.get()
    plaintext = body.split('data-testid="api-key-plaintext">', 1)[1].split("<", 1)[0]
    assert plaintext.startswith("sl_" + key.prefix)
    assert first["Cache-Control"] == "no-store"
    assert NEW_KEY_SESSION not in client.session

    second = client.get(reverse("api_keys")).content.decode()
    assert plaintext not in second
    assert f"sl_{key.prefix}_…" in second
    assert "Warehouse WMS" in second
    assert "Never" in second  # last used


def test_api_key_name_error_is_next_to_the_field(client, alice):
    response = client.post(reverse("api_keys"), {"name": ""})
    body = response.content.decode()
    assert "This field is required." in body.split('id="field-name"', 1)[1]
    assert ApiKey.objects.count() == 0


def test_revoke_api_key(client, alice):
    key, _plaintext = create_api_key(alice.account, actor=alice.user, name="ERP")
    response = client.post(reverse("api_key_revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked" in client.get(reverse("api_keys")).content.decode()


def test_revoking_an_api_key_asks_first(client, alice):
    key, _plaintext = create_api_key(alice.account, actor=alice.user, name="ERP")
    listing = client.get(reverse("api_keys")).content.decode()
    assert f'href="{reverse("api_key_revoke", args=[key.pk])}"' in listing  # a link to the question

    page = client.get(reverse("api_key_revoke", args=[key.pk])).content.decode()
    assert "Revoke the API key “ERP”?" in page
    assert "Revoke the key" in page
    key.refresh_from_db()
    assert key.revoked_at is None  # asking changes nothing

    client.post(reverse("api_key_revoke", args=[key.pk]))
    response = client.get(reverse("api_key_revoke", args=[key.pk]))
    assert response.status_code == 302  # nothing left to ask about
    assert "already revoked" in client.get(reverse("api_keys")).content.decode()


def test_another_accounts_api_key_is_404_and_stays_active(client, alice, bob):
    theirs, _plaintext = create_api_key(bob.account, actor=bob.user, name="Bob's ERP")

    assert client.post(reverse("api_key_revoke", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("api_key_revoke", args=[uuid.uuid4()])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "Bob&#x27;s ERP" not in client.get(reverse("api_keys")).content.decode()


def test_member_can_see_keys_but_not_create_or_revoke(client, bob):
    key, _plaintext = create_api_key(bob.account, actor=bob.user, name="ERP")
    member = member_of(bob.account, Role.MEMBER)
    client.force_login(member)

    page = client.get(reverse("api_keys")).content.decode()
    assert "Create API key" not in page
    assert reverse("api_key_revoke", args=[key.pk]) not in page
    assert client.post(reverse("api_keys"), {"name": "Sneaky"}).status_code == 403
    assert client.post(reverse("api_key_revoke", args=[key.pk])).status_code == 403
    assert client.get(reverse("api_key_revoke", args=[key.pk])).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize("name", ["api_keys"])
def test_api_keys_need_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --------------------------------------------------------------------------------------------------
# The credential note belongs to store credentials, not to a seller's own password
# --------------------------------------------------------------------------------------------------

CREDENTIAL_NOTE = "Stored encrypted and never shown again"


def test_password_fields_of_the_seller_do_not_carry_the_credential_note(client, mailoutbox):
    client.post(reverse("signup"), signup_form())
    for url in (reverse("login"), link_in(mailoutbox[0], "/signup/confirm/")):
        body = client.get(url, follow=True).content.decode()
        assert 'type="password"' in body
        assert CREDENTIAL_NOTE not in body


def test_store_credential_fields_keep_the_credential_note(client, alice):
    channel = SalesChannelFactory(account=alice.account, connection_state=ConnectionState.NEEDS_REAUTH)
    body = client.get(reverse("channels:reauthorise", args=[channel.pk])).content.decode()
    assert 'type="password"' in body
    assert CREDENTIAL_NOTE in body
