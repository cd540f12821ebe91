"""``manage.py create_demo_seller`` is idempotent and prints a working login."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import Account, Membership, Role, User

pytestmark = pytest.mark.django_db


def run(**kwargs) -> str:
    out = io.StringIO()
    call_command("create_demo_seller", stdout=out, **kwargs)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _private_var(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    settings.DEMO_PASSWORD = ""


def test_creates_owner_and_prints_password() -> None:
    output = run()
    password = output.split("Password:")[1].strip()
    user = User.objects.get(email="demo@example.com")
    assert authenticate(None, username="demo@example.com", password=password) == user
    assert Membership.objects.get(user=user).role == Role.OWNER


def test_every_run_prints_the_same_password_until_the_kept_one_is_removed(tmp_path) -> None:
    first = run().split("Password:")[1].strip()
    assert run().split("Password:")[1].strip() == first
    assert authenticate(None, username="demo@example.com", password=first) is not None
    (tmp_path / "var" / "demo-password").unlink()
    fresh = run().split("Password:")[1].strip()
    assert fresh != first
    assert authenticate(None, username="demo@example.com", password=fresh) is not None
    assert authenticate(None, username="demo@example.com", password=first) is None


def test_running_twice_keeps_one_account_and_uses_demo_password(settings) -> None:
    run()
    settings.DEMO_PASSWORD = "demo-password-42"
    output = run()
    assert "demo-password-42" in output
    assert User.objects.filter(email="demo@example.com").count() == 1
    assert Account.objects.count() == 1
    assert authenticate(None, username="demo@example.com", password="demo-password-42") is not None
