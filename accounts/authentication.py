"""REST API authentication (``Authorization: Api-Key <key>``) and the account permission."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from accounts.models import ApiKey
from accounts.services import authenticate_api_key
from accounts.tenancy import api_key_of, current_membership

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a request as an account (not a person): ``request.auth`` is the ApiKey.

    ``request.user`` stays anonymous so nothing that trusts a user (the admin, session-only pages)
    can be reached with a key; tenancy helpers read the account from the key.
    """

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        keyword, _, value = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None
        key = authenticate_api_key(value)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasAccount(permissions.BasePermission):
    """An API key, or a logged-in user who belongs to an account."""

    message = "You are not a member of any account."

    def has_permission(self, request: Request, view: Any) -> bool:
        if api_key_of(request) is not None:
            return True
        if not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated()
        return current_membership(request) is not None


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the API-key header in the OpenAPI schema."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create keys on the API keys page of the web UI.",
        }
