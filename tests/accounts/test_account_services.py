"""Sign-up, memberships and API keys (services and the tenancy helpers)."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory

from accounts import services, tenancy
from accounts.models import Account, ApiKey, Membership, Role, User
from tests.factories import PASSWORD, member_of

pytestmark = pytest.mark.django_db


def test_sign_up_creates_owner_membership() -> None:
    user, account = services.sign_up("Carol@Example.com ", PASSWORD, "Carol's Candles")
    assert user.email == "carol@example.com"
    assert user.check_password(PASSWORD)
    assert account.name == "Carol's Candles"
    membership = Membership.objects.get(user=user)
    assert (membership.account, membership.role) == (account, Role.OWNER)


def test_sign_up_reports_every_bad_field_and_saves_nothing() -> None:
    with pytest.raises(ValidationError) as caught:
        services.sign_up("not-an-email", "123", "")
    assert set(caught.value.message_dict) == {"email", "password", "account_name"}
    assert not User.objects.exists()
    assert not Account.objects.exists()


def test_sign_up_refuses_existing_email_case_insensitively() -> None:
    services.sign_up("dave@example.com", PASSWORD, "Dave's")
    with pytest.raises(ValidationError) as caught:
        services.sign_up("DAVE@example.com", PASSWORD, "Dave again")
    assert "already exists" in caught.value.message_dict["email"][0]
    assert Account.objects.count() == 1


def test_api_key_is_stored_hashed_and_shown_once(alice) -> None:
    key, plaintext = services.create_api_key(alice.account, actor=alice.user, name="ERP")
    assert plaintext.startswith(f"sl_{key.prefix}_")
    assert len(key.prefix) == 8
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.created_by == alice.user


def test_authenticate_api_key_records_last_use_and_refuses_revoked(alice) -> None:
    key, plaintext = services.create_api_key(alice.account, actor=alice.user, name="ERP")
    assert key.last_used_at is None
    found = services.authenticate_api_key(plaintext)
    assert found == key
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None
    assert services.authenticate_api_key(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    assert services.authenticate_api_key("sl_nothing") is None
    services.revoke_api_key(key, actor=alice.user)
    assert services.authenticate_api_key(plaintext) is None


def test_member_cannot_create_or_revoke_keys(alice) -> None:
    member = alice.member(Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.create_api_key(alice.account, actor=member, name="Nope")
    key, _ = services.create_api_key(alice.account, actor=alice.user, name="ERP")
    with pytest.raises(PermissionDenied):
        services.revoke_api_key(key, actor=member)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_other_accounts_owner_cannot_create_keys_here(alice, bob) -> None:
    with pytest.raises(PermissionDenied):
        services.create_api_key(alice.account, actor=bob.user, name="Intruder")
    key, _ = services.create_api_key(alice.account, actor=alice.user, name="ERP")
    with pytest.raises(PermissionDenied):
        services.revoke_api_key(key, actor=bob.user)


def test_tenancy_helpers_follow_the_membership(alice, bob) -> None:
    request = RequestFactory().get("/")
    request.user = alice.user
    assert tenancy.account_for(request) == alice.account
    assert tenancy.role_for(request) == Role.OWNER
    tenancy.require_role(request, Role.ADMIN)

    member_request = RequestFactory().get("/")
    member_request.user = member_of(bob.account, Role.MEMBER)
    assert tenancy.account_for(member_request) == bob.account
    assert not tenancy.has_role(member_request, Role.ADMIN)
    with pytest.raises(PermissionDenied):
        tenancy.require_role(member_request, Role.ADMIN)


def test_user_without_membership_has_no_account(db) -> None:
    request = RequestFactory().get("/")
    request.user = User.objects.create_user(email="lonely@example.com", password=PASSWORD)
    with pytest.raises(PermissionDenied):
        tenancy.account_for(request)


def test_role_of_actor(alice, bob) -> None:
    key, _ = services.create_api_key(alice.account, actor=alice.user, name="ERP")
    assert tenancy.role_of(key, alice.account) == Role.ADMIN
    assert tenancy.role_of(key, bob.account) is None
    assert tenancy.role_of(alice.user, bob.account) is None
    assert tenancy.role_of(None, alice.account) == Role.OWNER


def test_email_is_stored_lower_case_on_every_path(db) -> None:
    user = User(email="  Mixed@Example.COM ")
    user.set_password(PASSWORD)
    user.save()
    assert User.objects.get(pk=user.pk).email == "mixed@example.com"


def test_api_key_prefix_collision_draws_again(alice, monkeypatch) -> None:
    first, _ = services.create_api_key(alice.account, actor=alice.user, name="One")
    prefixes = iter([first.prefix, "0badc0de"])
    monkeypatch.setattr("accounts.services.secrets.token_hex", lambda n: next(prefixes))
    second, plaintext = services.create_api_key(alice.account, actor=alice.user, name="Two")
    assert second.prefix == "0badc0de"
    assert services.authenticate_api_key(plaintext) == second
