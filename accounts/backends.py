"""E-mail + password authentication with the login throttle in front of it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.models import User
from accounts.throttle import is_login_blocked


class ThrottledEmailBackend(ModelBackend):
    """Refuses (without checking the password) once an e-mail + client has failed too often.

    Raising :class:`PermissionDenied` makes :func:`django.contrib.auth.authenticate` stop at once,
    so a blocked attacker learns nothing from trying more passwords.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if email is None or password is None:
            return None
        if is_login_blocked(request, email):
            raise PermissionDenied("Too many failed logins; try again later.")
        return super().authenticate(request, username=email, password=password, **kwargs)
