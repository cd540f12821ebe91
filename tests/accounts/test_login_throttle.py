"""Login throttling per e-mail + client address."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from accounts.throttle import Block, client_address, is_login_blocked, login_block
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


# --------------------------------------------------------------------------------------------------
# One client spraying many accounts, and the client address behind proxies
# --------------------------------------------------------------------------------------------------


def _new_email() -> str:
    return f"spray-{uuid.uuid4().hex[:10]}@example.com"


def _unique_address() -> str:
    """A documentation-range address of its own: counters may sit in a Redis shared with workers."""
    number = uuid.uuid4().int
    return f"2001:db8:{number % 65536:x}:{(number >> 16) % 65536:x}::7"


def test_one_client_spraying_many_accounts_is_blocked_for_every_account(settings) -> None:
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    settings.LOGIN_THROTTLE_CLIENT_ATTEMPTS = 6
    victim = UserFactory(email=_new_email())
    sprayer = _request(_unique_address())
    for _ in range(6):  # one wrong password per address: no (e-mail, client) counter reaches 3
        authenticate(sprayer, username=_new_email(), password="Summer2026!")

    assert is_login_blocked(sprayer, victim.email)
    assert login_block(sprayer, victim.email) is Block.CLIENT
    assert authenticate(sprayer, username=victim.email, password=PASSWORD) is None
    # the victim, from their own address, is not affected
    assert authenticate(_request(_unique_address()), username=victim.email, password=PASSWORD) == victim


def test_a_successful_login_does_not_refill_the_clients_budget(settings) -> None:
    settings.LOGIN_THROTTLE_CLIENT_ATTEMPTS = 4
    own = UserFactory(email=_new_email())
    client = _request(_unique_address())
    from django.contrib.auth import login
    from django.contrib.sessions.backends.cache import SessionStore

    for _ in range(4):
        authenticate(client, username=_new_email(), password="wrong-password")
        client.session = SessionStore()
        login(client, own, backend="accounts.backends.ThrottledEmailBackend")
    assert login_block(client, _new_email()) is Block.CLIENT


def test_forwarded_for_is_ignored_without_a_trusted_proxy(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().post(
        "/login/", REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    assert client_address(request) == "203.0.113.50"


def test_an_attacker_rotating_forwarded_for_without_a_trusted_proxy_stays_blocked(user, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    address = _unique_address()
    for number in range(3):
        spoofed = RequestFactory().post(
            "/login/", REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"10.0.0.{number}"
        )
        authenticate(spoofed, username=user.email, password="wrong-password")
    fresh = RequestFactory().post("/login/", REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert is_login_blocked(fresh, user.email)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote 6.6.6.6 itself
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", "198.51.100.1"),  # fewer hops than proxies: the leftmost one
        (1, "not-an-address", "10.0.0.1"),  # garbage: the connection's address
        (1, "", "10.0.0.1"),
    ],
)
def test_behind_trusted_proxies_the_client_is_the_address_the_outermost_proxy_added(
    settings, proxies: int, forwarded: str, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_a_trusted_proxy_clients_are_throttled_separately(user, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    attacker_ip, seller_ip = _unique_address(), _unique_address()

    def via_proxy(address: str):
        return RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=address)

    for _ in range(3):
        authenticate(via_proxy(attacker_ip), username=user.email, password="wrong-password")
    assert is_login_blocked(via_proxy(attacker_ip), user.email)
    assert authenticate(via_proxy(seller_ip), username=user.email, password=PASSWORD) == user
