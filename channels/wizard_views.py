"""The add-channel wizard: choose a platform, name the channel, connect (test) and settle its settings.

The wizard keeps its state server-side in the session (:class:`Wizard`), never in hidden fields or
URLs, and the credentials inside it are encrypted with the same keys as stored channel credentials:
a session row must not be an easier place to read a store key from than the channel table. The
channel is created only at the last step, through :func:`channels.services.add_channel`; the page
helpers it shares with the channel page live in :mod:`channels.views`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role
from accounts.tenancy import account_for, actor_for, require_role
from channels import services
from channels.fields import CredentialsUnreadable, decrypt_json, encrypt_json
from channels.forms import ChannelNameForm, ConnectionForm, SettingsForm, facts_as_dict
from channels.models import ConnectionState
from channels.views import (
    add_errors,
    channels_for_request,
    page_context,
    platform_help_context,
    platform_or_404,
    platforms,
    price_example,
)
from connectors.base import FieldErrors
from connectors.errors import ConnectorError
from connectors.registry import CONNECTORS

log = logging.getLogger("storelink.channels.ui")

WIZARD_SESSION = "channels:wizard"
WIZARD_STEPS = ("Platform", "Name", "Connection details", "Settings")


class Wizard:
    """The add-channel wizard's state in the session (credentials encrypted inside it)."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.data: dict[str, Any] = dict(request.session.get(WIZARD_SESSION) or {})

    # state -------------------------------------------------------------------------------------
    @property
    def platform(self) -> str:
        return str(self.data.get("platform") or "")

    @property
    def name(self) -> str:
        return str(self.data.get("name") or "")

    @property
    def store_url(self) -> str:
        return str(self.data.get("store_url") or "")

    @property
    def facts(self) -> dict[str, Any]:
        return dict(self.data.get("facts") or {})

    @property
    def connected(self) -> bool:
        """The connection test passed, or (3DCart) the seller chose to wait for the store."""
        return bool(self.data.get("tested") or self.data.get("awaiting"))

    @property
    def credentials(self) -> dict[str, Any]:
        token = self.data.get("credentials")
        if not token:
            return {}
        try:
            return dict(decrypt_json(token))
        except CredentialsUnreadable:
            return {}

    # transitions -------------------------------------------------------------------------------
    def start(self, platform: str, name: str) -> None:
        previous = self.data if self.platform == platform else {}
        self.data = {"platform": platform, "name": name}
        if previous.get("store_url"):
            self.data["store_url"] = previous["store_url"]  # a URL typed before is not a secret
        self.save()

    def connect(self, store_url: str, credentials: dict[str, Any], facts: dict[str, Any] | None) -> None:
        self.data.update(
            store_url=store_url,
            credentials=encrypt_json(credentials),
            facts=facts or {},
            tested=facts is not None,
            awaiting=facts is None,
        )
        self.save()

    def forget_connection(self) -> None:
        for key in ("credentials", "facts", "tested", "awaiting"):
            self.data.pop(key, None)
        self.save()

    def save(self) -> None:
        self.request.session[WIZARD_SESSION] = self.data

    def clear(self) -> None:
        self.request.session.pop(WIZARD_SESSION, None)


def _wizard_context(request: HttpRequest, step: int, **extra: Any) -> dict[str, Any]:
    return page_context(request, wizard_steps=WIZARD_STEPS, step=step, **extra)


@login_required
@require_GET
def wizard_choose(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.ADMIN)
    context = _wizard_context(request, 1, platforms=list(platforms().values()), platform=None)
    return render(request, "channels/wizard/choose.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def wizard_name(request: HttpRequest, platform: str) -> HttpResponse:
    require_role(request, Role.ADMIN)
    info = platform_or_404(platform)
    wizard = Wizard(request)
    initial = {"name": wizard.name} if wizard.platform == platform else {}
    form = ChannelNameForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        if channels_for_request(request).filter(name__iexact=name).exists():
            form.add_error("name", "You already have a channel with this name.")
        else:
            wizard.start(platform, name)
            return redirect("channels:add_connection", platform)
    context = _wizard_context(request, 2, platform=info, form=form)
    return render(request, "channels/wizard/name.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def wizard_connection(request: HttpRequest, platform: str) -> HttpResponse:
    require_role(request, Role.ADMIN)
    info = platform_or_404(platform)
    wizard = Wizard(request)
    if wizard.platform != platform or not wizard.name:
        return redirect("channels:add_name", platform)
    data = request.POST if request.method == "POST" else None
    form = ConnectionForm(platform, data, initial={"store_url": wizard.store_url})
    connection_error = connection_error_code = ""
    if request.method == "POST":
        # A new attempt replaces the old one: nothing half-tested survives a failed test.
        wizard.forget_connection()
        if form.is_valid():
            store_url = form.cleaned_data["store_url"]
            credentials = form.credentials()
            action = request.POST.get("action", "test")
            try:
                # Before any test: a second channel for the same store would download its orders twice.
                services.ensure_store_not_connected(account_for(request), store_url)
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                waits_for_callback = bool(info.callback_credential)
                if action == "await" and waits_for_callback and not any(credentials.values()):
                    wizard.connect(store_url, credentials, None)
                    return redirect("channels:add_settings", platform)
                if not any(credentials.values()) and waits_for_callback:
                    form.add_error(
                        info.callback_credential,
                        "Paste the access token to test the connection now, or choose "
                        "“Continue without a token” to wait for the store's authorisation.",
                    )
                else:
                    try:
                        facts = services.test_connection(platform, store_url, credentials, {})
                    except ConnectorError as exc:
                        connection_error, connection_error_code = exc.message, exc.code
                        log.info("channel.wizard.test_failed platform=%s code=%s", platform, exc.code)
                    except (ValidationError, FieldErrors) as exc:
                        add_errors(form, exc)
                    else:
                        wizard.connect(store_url, credentials, facts_as_dict(facts))
                        return redirect("channels:add_settings", platform)
    context = _wizard_context(
        request,
        3,
        platform=info,
        form=form,
        wizard=wizard,
        connection_error=connection_error,
        connection_error_code=connection_error_code,
        **platform_help_context(request),
    )
    return render(request, "channels/wizard/connection.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def wizard_settings(request: HttpRequest, platform: str) -> HttpResponse:
    require_role(request, Role.ADMIN)
    info = platform_or_404(platform)
    wizard = Wizard(request)
    if wizard.platform != platform or not wizard.name:
        return redirect("channels:add_name", platform)
    if not wizard.connected:
        return redirect("channels:add_connection", platform)
    facts = wizard.facts
    values = _settings_defaults_from_facts(platform, facts)
    data = request.POST if request.method == "POST" else None
    form = SettingsForm(platform, data, facts=facts, values=values)
    if request.method == "POST" and form.is_valid():
        try:
            channel = services.add_channel(
                account_for(request),
                actor=actor_for(request),
                platform=platform,
                name=wizard.name,
                store_url=wizard.store_url,
                credentials=wizard.credentials,
                settings=form.spec_values(),
                store_facts=facts or None,
            )
        except ConnectorError as exc:
            form.add_error(None, exc.message)
        except (ValidationError, FieldErrors) as exc:
            add_errors(form, exc)
        else:
            wizard.clear()
            if channel.connection_state == ConnectionState.PENDING:
                messages.info(
                    request,
                    f"“{channel.name}” was added. It connects as soon as your store authorises Storelink.",
                )
            else:
                messages.success(request, f"“{channel.name}” was added and is enabled.")
            return redirect("channels:list")
    context = _wizard_context(
        request,
        4,
        platform=info,
        form=form,
        wizard=wizard,
        facts=facts,
        price_example=price_example(request, platform, data or values),
    )
    return render(request, "channels/wizard/settings.html", context)


@login_required
@require_GET
def wizard_cancel(request: HttpRequest) -> HttpResponseRedirect:
    """Leave the wizard; the typed credentials leave the session with it."""
    Wizard(request).clear()
    return redirect("channels:list")


def _settings_defaults_from_facts(platform: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Start the settings step from what the store said (currency, zone, statuses) over the defaults.

    Never the tax answers: a storefront's "display prices with tax" says nothing about what its
    price field holds, and an API caller who sends no answer gets the same defaults.
    """
    values: dict[str, Any] = {spec.name: spec.default for spec in CONNECTORS[platform].settings_fields}
    if facts.get("base_currency"):
        values["currency"] = facts["base_currency"]
    if facts.get("timezone") and "timezone" in values:
        values["timezone"] = facts["timezone"]
    codes = {status["code"] for status in facts.get("order_statuses", ())}
    if codes and isinstance(values.get("import_statuses"), list):
        values["import_statuses"] = [code for code in values["import_statuses"] if code in codes]
    return values
