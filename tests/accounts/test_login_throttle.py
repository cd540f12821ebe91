"""Login throttling per e-mail + client address."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from accounts.throttle import is_login_blocked
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _request(address: str):
    return RequestFactory().post("/login/", REMOTE_ADDR=address)


@pytest.fixture
def user(settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    # Unique address: the cache may be a Redis shared with other test workers.
    return UserFactory(email=f"throttle-{uuid.uuid4().hex[:8]}@example.com")


def test_repeated_failures_block_even_the_right_password(user) -> None:
    request = _request("203.0.113.7")
    for _ in range(3):
        assert authenticate(request, username=user.email, password="wrong-password") is None
    assert is_login_blocked(request, user.email)
    assert authenticate(request, username=user.email, password=PASSWORD) is None


def test_block_is_per_client_and_success_resets(user) -> None:
    attacker = _request("203.0.113.8")
    for _ in range(3):
        authenticate(attacker, username=user.email, password="wrong-password")
    seller = _request("198.51.100.4")
    assert authenticate(seller, username=user.email, password=PASSWORD) == user

    other = _request("198.51.100.5")
    authenticate(other, username=user.email, password="wrong-password")
    authenticate(other, username=user.email, password="wrong-password")
    from django.contrib.auth import login
    from django.contrib.sessions.backends.cache import SessionStore

    other.session = SessionStore()
    login(other, user, backend="accounts.backends.ThrottledEmailBackend")
    assert not is_login_blocked(other, user.email)
    authenticate(other, username=user.email, password="wrong-password")
    assert not is_login_blocked(other, user.email)  # counter restarted after the success


def test_email_is_case_insensitive_at_login(user) -> None:
    assert authenticate(_request("198.51.100.9"), username=user.email.upper(), password=PASSWORD) == user
