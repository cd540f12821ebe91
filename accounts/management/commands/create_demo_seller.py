"""``manage.py create_demo_seller``: the demo login ``make run`` prints. Safe to run again."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account, Membership, Role, User

DEMO_EMAIL = "demo@example.com"
DEMO_ACCOUNT = "Demo Shop Ltd"


def demo_password_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "demo-password"


def kept_demo_password() -> str:
    """The demo password of earlier runs, so the login a seller wrote down keeps working.

    Made once, at random (a known default would be a known password), and kept outside the
    repository in ``var/``; delete the file or set ``DEMO_PASSWORD`` to change it.
    """
    path = demo_password_file()
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        kept = ""
    if kept:
        return kept
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return password


class Command(BaseCommand):
    help = "Create (or reset the password of) the demo seller demo@example.com and print the login."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default=DEMO_EMAIL)
        parser.add_argument(
            "--password",
            default=None,
            help="Defaults to $DEMO_PASSWORD, else the one kept in var/demo-password (made once).",
        )

    def handle(self, *args: Any, email: str, password: str | None, **options: Any) -> None:
        password = password or settings.DEMO_PASSWORD or kept_demo_password()
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            created = user is None
            if user is None:
                user = User.objects.create_user(email=email, password=password)
            else:
                user.set_password(password)
                user.is_active = True
                user.save(update_fields=["password", "is_active"])
            membership = Membership.objects.filter(user=user).select_related("account").first()
            if membership is None:
                account = Account.objects.create(name=DEMO_ACCOUNT)
                membership = Membership.objects.create(account=account, user=user, role=Role.OWNER)
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} demo seller for account “{membership.account.name}”.")
        self.stdout.write(f"  Log in as: {email}")
        self.stdout.write(f"  Password:  {password}")
