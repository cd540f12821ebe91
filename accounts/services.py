"""Account actions: sign-up (confirmed by an e-mailed link) and API keys.

Verb-named, actor as a keyword, one transaction each.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, ApiKey, Membership, Role, User
from accounts.tenancy import Actor, actor_user, require_actor_role
from accounts.zones import DEFAULT_TIME_ZONE, browser_time_zone, validate_time_zone

log = logging.getLogger("storelink.accounts")

API_KEY_PREFIX = "sl_"
#: ``last_used_at`` is written at most this often per key, so a busy integration does not turn
#: every read request into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


#: How long a sign-up confirmation link works.
SIGN_UP_LINK_MAX_AGE = timedelta(days=3)
_SIGN_UP_SALT = "accounts.sign_up"


def check_sign_up_details(email: str, account_name: str) -> tuple[str, str]:
    """The normalised e-mail and account name, or per-field :class:`ValidationError`.

    Says nothing about whether the address already has an account: the sign-up page must look the
    same for a new and a known address, so that check happens only when the link is used.
    """
    email = (email or "").strip().lower()
    account_name = (account_name or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid e-mail address."]
    if not account_name:
        errors["account_name"] = ["Enter your company or shop name."]
    elif not account_name.isprintable():
        errors["account_name"] = ["Remove line breaks and other invisible characters."]
    elif len(account_name) > 150:
        errors["account_name"] = ["Use at most 150 characters."]
    if errors:
        raise ValidationError(errors)
    return email, account_name


def email_has_account(email: str) -> bool:
    return User.objects.filter(email__iexact=(email or "").strip()).exists()


def sign_up_token(email: str, account_name: str) -> str:
    """A signed, expiring token carrying a sign-up's details, for the link e-mailed to the address.

    Nothing is stored until the link is used, so a stranger typing someone's address creates
    nothing, and the link stops working once the account exists.
    """
    email, account_name = check_sign_up_details(email, account_name)
    return signing.dumps({"email": email, "account_name": account_name}, salt=_SIGN_UP_SALT, compress=True)


def read_sign_up_token(token: str) -> tuple[str, str]:
    """(e-mail, account name) from a sign-up link; ValidationError when forged, expired or used."""
    try:
        data = signing.loads(token, salt=_SIGN_UP_SALT, max_age=SIGN_UP_LINK_MAX_AGE)
        email, account_name = check_sign_up_details(data["email"], data["account_name"])
    except (signing.BadSignature, KeyError, TypeError, ValidationError):
        raise ValidationError("This sign-up link is invalid or has expired.", code="invalid") from None
    if email_has_account(email):
        raise ValidationError("This sign-up link was already used: log in instead.", code="used")
    return email, account_name


def sign_up(
    email: str, password: str, account_name: str, time_zone: str = DEFAULT_TIME_ZONE
) -> tuple[User, Account]:
    """Create a user, their seller account, and make them its owner.

    ``time_zone`` is what the signing-up browser reported; a name the zone database does not
    know becomes UTC (the seller never typed it, so it is no reason to refuse the sign-up).

    Raises :class:`ValidationError` with per-field messages (``email``, ``password``,
    ``account_name``); nothing is saved unless everything is valid.
    """
    errors: dict[str, list[str]] = {}
    try:
        email, account_name = check_sign_up_details(email, account_name)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        email = (email or "").strip().lower()
    if "email" not in errors and email_has_account(email):
        errors["email"] = ["An account with this e-mail address already exists."]
    try:
        validate_password(password or "", user=User(email=email))
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            account = Account.objects.create(name=account_name, time_zone=browser_time_zone(time_zone))
            Membership.objects.create(account=account, user=user, role=Role.OWNER)
    except IntegrityError:  # two sign-ups racing for the same address
        raise ValidationError({"email": ["An account with this e-mail address already exists."]}) from None
    log.info("account.signed_up account=%s user=%s", account.pk, user.pk)
    return user, account


def set_time_zone(account: Account, *, actor: Actor, time_zone: str) -> None:
    """Change the zone the account's pages show times in (an admin's decision: it changes what
    every member sees). Raises :class:`ValidationError` on ``time_zone`` for an unknown name."""
    require_actor_role(actor, account, Role.ADMIN, doing="change the account's time zone")
    time_zone = (time_zone or "").strip()
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        raise ValidationError({"time_zone": exc.messages}) from None
    if account.time_zone != time_zone:
        account.time_zone = time_zone
        account.save(update_fields=["time_zone"])
        log.info("account.time_zone_changed account=%s zone=%s", account.pk, time_zone)


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(account: Account, *, actor: Actor, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never available again."""
    require_actor_role(actor, account, Role.ADMIN, doing="create API keys")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Give the key a name, e.g. the system that will use it."]})
    if len(name) > 100:
        raise ValidationError({"name": ["Use at most 100 characters."]})
    if not name.isprintable():
        raise ValidationError({"name": ["Remove line breaks and other invisible characters."]})
    for attempt in range(5):
        prefix = secrets.token_hex(4)
        plaintext = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    account=account,
                    name=name,
                    prefix=prefix,
                    key_hash=_digest(plaintext),
                    created_by=actor_user(actor),
                )
            break
        except IntegrityError:  # the 32-bit visible prefix is taken: draw another
            if attempt == 4:
                raise
    log.info("api_key.created account=%s key=%s prefix=%s", account.pk, key.pk, prefix)
    return key, plaintext


def revoke_api_key(api_key: ApiKey, *, actor: Actor) -> ApiKey:
    """Refuse the key from now on; idempotent (revoking twice keeps the first time)."""
    require_actor_role(actor, api_key.account, Role.ADMIN, doing="revoke API keys")
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db(fields=["revoked_at"])
    log.info("api_key.revoked account=%s key=%s", api_key.account_id, api_key.pk)
    return api_key


def authenticate_api_key(plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``, or ``None``. Records when it was last used."""
    plaintext = (plaintext or "").strip()
    if not plaintext.startswith(API_KEY_PREFIX) or len(plaintext) > 200:
        return None
    prefix = plaintext[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("account").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, _digest(plaintext)):
        return None
    if key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
