"""The one place that decides which account a request acts for, and with which role.

Every UI view, API view and admin page goes through these helpers, so tenant scoping cannot drift
between surfaces. One account per user for now (the first membership); a later account switcher
changes :func:`current_membership` and nothing else.

An *actor* is whoever causes a change: a :class:`~accounts.models.User` (browser, admin), an
:class:`~accounts.models.ApiKey` (API), or ``None`` for the system itself (Celery tasks, store
callbacks), which is trusted.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.models import ROLE_RANK, Account, ApiKey, Membership, Role, User

Actor: TypeAlias = User | ApiKey | None

#: API keys are created by admins and act for the whole account: admin rights, never owner rights.
API_KEY_ROLE = Role.ADMIN

_CACHE_ATTR = "_storelink_membership"


def membership_of(user: Any) -> Membership | None:
    """The membership a user acts through (their first), or ``None``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.select_related("account").filter(user=user).order_by("created_at").first()


def api_key_of(request: HttpRequest | Any) -> ApiKey | None:
    """The API key that authenticated this (DRF) request, if any."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def current_membership(request: HttpRequest | Any) -> Membership | None:
    """The browser user's membership (cached on the request); ``None`` for API keys and strangers."""
    if api_key_of(request) is not None:
        return None
    if not hasattr(request, _CACHE_ATTR):
        setattr(request, _CACHE_ATTR, membership_of(getattr(request, "user", None)))
    return getattr(request, _CACHE_ATTR)


def account_for(request: HttpRequest | Any) -> Account:
    """The account this request acts for; :class:`PermissionDenied` when it has none."""
    key = api_key_of(request)
    if key is not None:
        return key.account
    membership = current_membership(request)
    if membership is None:
        raise PermissionDenied("You are not a member of any account.")
    return membership.account


def role_for(request: HttpRequest | Any) -> str:
    if api_key_of(request) is not None:
        return API_KEY_ROLE
    membership = current_membership(request)
    if membership is None:
        raise PermissionDenied("You are not a member of any account.")
    return membership.role


def actor_for(request: HttpRequest | Any) -> User | ApiKey:
    """What services record as the actor of a change made through this request."""
    return api_key_of(request) or request.user


def has_role(request: HttpRequest | Any, role: str) -> bool:
    try:
        return ROLE_RANK[role_for(request)] >= ROLE_RANK[role]
    except PermissionDenied:
        return False


def require_role(request: HttpRequest | Any, role: str) -> None:
    """Raise :class:`PermissionDenied` unless the request's role is at least ``role``."""
    if not has_role(request, role):
        raise PermissionDenied(f"This needs the {role} role on the account.")


# --------------------------------------------------------------------------------------------------
# The same decisions for services, which see an actor rather than a request
# --------------------------------------------------------------------------------------------------


def role_of(actor: Actor, account: Account) -> str | None:
    """The actor's role on ``account``; ``None`` when the actor does not belong to it."""
    if actor is None:
        return Role.OWNER
    if isinstance(actor, ApiKey):
        if actor.account_id == account.pk and actor.revoked_at is None:
            return API_KEY_ROLE
        return None
    if not getattr(actor, "is_authenticated", False):
        return None
    if actor.is_superuser:  # operators acting in the admin; recorded as themselves in the audit
        return Role.OWNER
    membership = Membership.objects.filter(account=account, user=actor).only("role").first()
    return membership.role if membership else None


def require_actor_role(actor: Actor, account: Account, role: str, *, doing: str = "do this") -> None:
    """Services call this so a view that forgot its check still cannot let a member through."""
    actual = role_of(actor, account)
    if actual is None or ROLE_RANK[actual] < ROLE_RANK[role]:
        raise PermissionDenied(f"Only an account {role} or owner can {doing}.")


def actor_user(actor: Actor) -> User | None:
    """The user behind an actor, for audit rows (an API key records its creator separately)."""
    return actor if isinstance(actor, User) else None
