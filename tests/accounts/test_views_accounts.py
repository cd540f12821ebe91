"""Seller UI for accounts: sign up, log in/out (throttled), API keys (shown once, revocable)."""

from __future__ import annotations

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
    form = {
        "account_name": "Penny's Pottery",
        "email": "penny@example.com",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    form.update(overrides)
    return form


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


def test_sign_up_creates_the_account_with_the_user_as_owner_and_logs_in(client):
    response = client.post(reverse("signup"), signup_form())

    assert response.status_code == 302
    assert response.url == reverse("channels:list")
    user = User.objects.get(email="penny@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.account.name == "Penny's Pottery"
    page = client.get(response.url).content.decode()
    assert "Penny&#x27;s Pottery" in page
    assert "No sales channels yet" in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"password_confirm": "something-else-42"},
            "password_confirm",
            "The two passwords are not the same.",
        ),
        ({"password": "password", "password_confirm": "password"}, "password", "too common"),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"account_name": ""}, "account_name", "This field is required."),
    ],
)
def test_sign_up_errors_appear_next_to_their_field(client, overrides, field, message):
    response = client.post(reverse("signup"), signup_form(**overrides))

    body = response.content.decode()
    assert response.status_code == 200
    field_html = body.split(f'id="field-{field}"', 1)[1].split('class="form-field', 1)[0]
    assert message in field_html
    assert PASSWORD not in body  # passwords are never rendered back
    assert not User.objects.filter(email="penny@example.com").exists()
    assert Account.objects.count() == 0


def test_sign_up_refuses_a_taken_address(client, bob):
    response = client.post(reverse("signup"), signup_form(email="BOB@example.com"))
    assert "already exists" in response.content.decode()
    assert Account.objects.count() == 1


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


@pytest.mark.parametrize("name", ["login", "signup"])
def test_password_fields_of_the_seller_do_not_carry_the_credential_note(client, name):
    body = client.get(reverse(name)).content.decode()
    assert 'type="password"' in body
    assert CREDENTIAL_NOTE not in body


def test_store_credential_fields_keep_the_credential_note(client, alice):
    channel = SalesChannelFactory(account=alice.account, connection_state=ConnectionState.NEEDS_REAUTH)
    body = client.get(reverse("channels:reauthorise", args=[channel.pk])).content.decode()
    assert 'type="password"' in body
    assert CREDENTIAL_NOTE in body
