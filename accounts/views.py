"""Seller UI for accounts: sign up (confirmed by e-mail), log in/out, password reset, API keys.

Views stay thin: tenancy comes from :mod:`accounts.tenancy`, rules from :mod:`accounts.services`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.forms import (
    AccountSettingsForm,
    ApiKeyForm,
    LoginForm,
    PasswordResetForm,
    SetPasswordForm,
    SignUpForm,
    SignUpPasswordForm,
)
from accounts.models import Role
from accounts.tenancy import account_for, actor_for, current_membership, has_role, require_role
from accounts.throttle import allow_account_email, client_address

log = logging.getLogger("storelink.accounts")

#: The plaintext of a key just created survives exactly one redirect in the session, then is gone.
NEW_KEY_SESSION = "accounts:new_api_key"
#: The sign-up token of the e-mailed link, between the link and the password form.
SIGN_UP_SESSION = "accounts:sign_up_token"


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """What every signed-in page shows in its header: the account and the user's role."""
    return {"account": account_for(request), "membership": current_membership(request), **extra}


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST-only (Django 5): a link cannot log a seller out behind their back."""


def _send_sign_up_mail(request: HttpRequest, email: str, account_name: str) -> None:
    """The e-mail that continues a sign-up: a link to choose a password, or, when the address
    already has an account, a note saying so with links to log in and to reset the password.

    Only the owner of the inbox learns which one it was; the page answers the same for both.
    """
    if not allow_account_email(request, email):
        log.warning("account.mail_throttled kind=sign_up client=%s", client_address(request))
        return
    if services.email_has_account(email):
        template, subject = "accounts/email/sign_up_existing.txt", "You already have a Storelink account"
        context = {
            "login_url": request.build_absolute_uri(reverse("login")),
            "reset_url": request.build_absolute_uri(reverse("password_reset")),
        }
    else:
        template, subject = "accounts/email/sign_up_confirm.txt", "Confirm your e-mail address for Storelink"
        token = services.sign_up_token(email, account_name)
        context = {
            "confirm_url": request.build_absolute_uri(reverse("signup_confirm", args=[token])),
            "account_name": account_name,
            "valid_days": services.SIGN_UP_LINK_MAX_AGE.days,
        }
    body = render_to_string(template, {"email": email, **context}, request=request)
    send_mail(subject, body, None, [email])
    log.info("account.sign_up_mail_sent client=%s", client_address(request))


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Step one: name and e-mail. Whether the address is new or known, the same page follows."""
    if request.user.is_authenticated:
        return redirect("channels:list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            email, account_name = services.check_sign_up_details(
                form.cleaned_data["email"], form.cleaned_data["account_name"]
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            _send_sign_up_mail(request, email, account_name)
            return redirect("signup_sent")
    return render(request, "accounts/signup.html", {"form": form})


@require_http_methods(["GET"])
def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_sent.html", {"valid_days": services.SIGN_UP_LINK_MAX_AGE.days})


@require_http_methods(["GET"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link: a valid token moves into the session and the browser on to a URL without
    it (as Django's password reset does), so the token never leaks through a Referer header."""
    try:
        services.read_sign_up_token(token)
    except ValidationError as exc:
        return _invalid_sign_up_link(request, exc)
    request.session[SIGN_UP_SESSION] = token
    return redirect("signup_password")


def _invalid_sign_up_link(request: HttpRequest, error: ValidationError) -> HttpResponse:
    context = {"message": error.messages[0], "used": error.code == "used"}
    return render(request, "accounts/signup_invalid.html", context, status=400)


@require_http_methods(["GET", "POST"])
def signup_password(request: HttpRequest) -> HttpResponse:
    """Step two: choose a password; the account is created and signed in."""
    try:
        email, account_name = services.read_sign_up_token(request.session.get(SIGN_UP_SESSION) or "")
    except ValidationError as exc:
        return _invalid_sign_up_link(request, exc)
    form = SignUpPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, account = services.sign_up(
                email=email,
                password=form.cleaned_data["password"],
                account_name=account_name,
                time_zone=form.cleaned_data.get("time_zone") or "",
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            request.session.pop(SIGN_UP_SESSION, None)
            login(request, user, backend="accounts.backends.ThrottledEmailBackend")
            messages.success(request, f"Welcome to Storelink. Your account “{account.name}” is ready.")
            return redirect("channels:list")
    context = {"form": form, "email": email, "account_name": account_name}
    return render(request, "accounts/signup_confirm.html", context)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset: the same answer whether or not the address has an account."""

    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        if allow_account_email(self.request, form.cleaned_data["email"]):
            return super().form_valid(form)
        log.warning("account.mail_throttled kind=password_reset client=%s", client_address(self.request))
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = SetPasswordForm


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    """The account's settings: the time zone its pages show times in. Members see it; admins change it."""
    account = account_for(request)
    can_manage = has_role(request, Role.ADMIN)
    form = AccountSettingsForm(request.POST or None, initial={"time_zone": account.time_zone})
    if request.method == "POST":
        require_role(request, Role.ADMIN)
        if form.is_valid():
            try:
                services.set_time_zone(
                    account, actor=actor_for(request), time_zone=form.cleaned_data["time_zone"]
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Times are now shown in {account.time_zone.replace('_', ' ')}.")
                return redirect("account_settings")
    if not can_manage:
        form.fields["time_zone"].disabled = True
    context = page_context(request, nav="account_settings", form=form, can_manage=can_manage)
    return render(request, "accounts/account_settings.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    account = account_for(request)
    can_manage = has_role(request, Role.ADMIN)
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST":
        require_role(request, Role.ADMIN)
        if form.is_valid():
            try:
                key, plaintext = services.create_api_key(
                    account, actor=actor_for(request), name=form.cleaned_data["name"]
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                request.session[NEW_KEY_SESSION] = {
                    "id": str(key.pk),
                    "name": key.name,
                    "plaintext": plaintext,
                }
                return HttpResponseRedirect(reverse("api_keys"))
    new_key = request.session.pop(NEW_KEY_SESSION, None)
    keys = account.api_keys.select_related("created_by").order_by("revoked_at", "-created_at")
    context = page_context(
        request,
        nav="api_keys",
        form=form,
        keys=keys,
        new_key=new_key,
        can_manage=can_manage,
        key_prefix=services.API_KEY_PREFIX,
    )
    response = render(request, "accounts/api_keys.html", context)
    if new_key:
        response["Cache-Control"] = "no-store"  # the plaintext must not linger in a browser cache
    return response


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HttpRequest, key_id: str) -> HttpResponse:
    """GET asks first (a revoked key cannot be brought back, and whatever uses it stops at once);
    POST revokes."""
    account = account_for(request)
    key = get_object_or_404(account.api_keys, pk=key_id)
    require_role(request, Role.ADMIN)
    if request.method == "GET":
        if key.revoked_at is not None:
            messages.info(request, f"API key “{key.name}” was already revoked.")
            return redirect("api_keys")
        context = page_context(request, nav="api_keys", key=key, key_prefix=services.API_KEY_PREFIX)
        return render(request, "accounts/api_key_revoke.html", context)
    services.revoke_api_key(key, actor=actor_for(request))
    messages.success(request, f"API key “{key.name}” ({key.prefix}…) was revoked.")
    return redirect("api_keys")
