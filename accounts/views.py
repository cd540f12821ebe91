"""Seller UI for accounts: sign up, log in/out, API keys.

Views stay thin: tenancy comes from :mod:`accounts.tenancy`, rules from :mod:`accounts.services`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import ApiKeyForm, LoginForm, SignUpForm
from accounts.models import Role
from accounts.tenancy import account_for, actor_for, current_membership, has_role, require_role

#: The plaintext of a key just created survives exactly one redirect in the session, then is gone.
NEW_KEY_SESSION = "accounts:new_api_key"


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """What every signed-in page shows in its header: the account and the user's role."""
    return {"account": account_for(request), "membership": current_membership(request), **extra}


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST-only (Django 5): a link cannot log a seller out behind their back."""


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("channels:list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, account = services.sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                account_name=form.cleaned_data["account_name"],
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            login(request, user, backend="accounts.backends.ThrottledEmailBackend")
            messages.success(request, f"Welcome to Storelink. Your account “{account.name}” is ready.")
            return redirect("channels:list")
    return render(request, "accounts/signup.html", {"form": form})


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
@require_POST
def api_key_revoke(request: HttpRequest, key_id: str) -> HttpResponse:
    account = account_for(request)
    key = get_object_or_404(account.api_keys, pk=key_id)
    require_role(request, Role.ADMIN)
    services.revoke_api_key(key, actor=actor_for(request))
    messages.success(request, f"API key “{key.name}” ({key.prefix}…) was revoked.")
    return redirect("api_keys")
