"""Seller UI for sales channels: the list with its status switch, the channel page, reauthorise
and remove, and the page helpers the add-channel wizard (:mod:`channels.wizard_views`) shares.

Views are thin on purpose. Which account a request acts for and with which role comes from
:mod:`accounts.tenancy`; every channel is looked up through :func:`channel_for_request`, so another
account's channel id is a 404 everywhere; every change goes through :mod:`channels.services`, which
checks the role again and writes the audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.tenancy import account_for, actor_for, current_membership, has_role, require_role
from channels import progress, services, sync
from channels.events import describe_settings
from channels.forms import ReauthoriseForm, SettingsForm, facts_as_dict
from channels.health import with_recent_failures
from channels.models import ConnectionState, SalesChannel, SyncJob
from config.keyset import keyset_page
from connectors.base import Connector, FieldErrors
from connectors.errors import ConnectorError
from connectors.registry import CONNECTORS

log = logging.getLogger("storelink.channels.ui")

BRIDGE_FILE = Path(settings.BASE_DIR) / "connectors" / "opencart" / "bridge" / "storelink-bridge.php"


# --------------------------------------------------------------------------------------------------
# Platforms as the UI shows them
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformInfo:
    """A platform as the UI shows it, read from its connector's declaration."""

    key: str
    label: str
    company: str
    description: str
    store_url_label: str
    logo: str
    instructions_template: str
    instructions: tuple[str, ...]
    callback_credential: str

    @cached_property
    def logo_url(self) -> str:
        """The logo's static URL, looked up once: the channel list shows it on every row, and
        each lookup reads the static files manifest."""
        return static(self.logo) if self.logo else ""


def _platform_info(key: str, cls: type[Connector]) -> PlatformInfo:
    return PlatformInfo(
        key=key,
        label=cls.label,
        company=cls.company,
        description=cls.description,
        store_url_label=cls.store_url_label,
        logo=cls.logo,
        instructions_template=cls.instructions_template or "channels/_instructions_listed.html",
        instructions=cls.instructions,
        callback_credential=cls.callback_credential,
    )


@cache
def _platform_info_cached(key: str, cls: type[Connector]) -> PlatformInfo:
    return _platform_info(key, cls)


def platforms() -> dict[str, PlatformInfo]:
    """Every registered platform (read from the registry at each call, built once per class)."""
    return {key: _platform_info_cached(key, cls) for key, cls in CONNECTORS.items()}


def platform_or_404(key: str) -> PlatformInfo:
    try:
        return platforms()[key]
    except KeyError:
        raise Http404("Unknown platform.") from None


# --------------------------------------------------------------------------------------------------
# Tenancy and page context
# --------------------------------------------------------------------------------------------------


def channels_for_request(request: HttpRequest) -> QuerySet[SalesChannel]:
    """The only way these views see channels: the live ones of the request's own account."""
    return SalesChannel.objects.live().for_account(account_for(request))


def channel_for_request(request: HttpRequest, channel_id: Any) -> SalesChannel:
    """The request's own live channel, or 404 — for another account's id as much as a wrong one."""
    return get_object_or_404(channels_for_request(request), pk=channel_id)


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    can_manage = has_role(request, Role.ADMIN)
    return {
        "account": account_for(request),
        "membership": current_membership(request),
        "nav": "channels",
        "can_manage": can_manage,
        # anyone who runs the shop may pause a channel; the services decide finally
        "can_toggle": has_role(request, Role.MEMBER),
        **extra,
    }


def channel_context(request: HttpRequest, channel: SalesChannel, **extra: Any) -> dict[str, Any]:
    return page_context(
        request,
        channel=channel,
        platform=platforms().get(channel.platform),
        facts=facts_as_dict(channel.store_facts),
        **extra,
    )


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --------------------------------------------------------------------------------------------------
# Channel list and the status switch
# --------------------------------------------------------------------------------------------------


#: Channels per page of the channel list: each row is a switch, a state and links, so a page of
#: every channel of a large account would cost its rendering many times over.
CHANNEL_PAGE_SIZE = 50


@login_required
@require_GET
def channel_list(request: HttpRequest) -> HttpResponse:
    """The account's channels by name, a page at a time (one query; credentials not read)."""
    page = keyset_page(
        with_recent_failures(channels_for_request(request).for_listing()),
        key="name",
        descending=False,
        size=CHANNEL_PAGE_SIZE,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        parse_key=str,
    )
    known = platforms()
    rows = [{"channel": channel, "platform": known.get(channel.platform)} for channel in page.rows]
    return render(request, "channels/list.html", page_context(request, rows=rows, page=page))


@login_required
@require_POST
def channel_toggle(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """Set enabled to the posted value ("yes"/"no"); an absent value flips it."""
    channel = channel_for_request(request, channel_id)
    wanted = request.POST.get("enabled")
    enable = (not channel.enabled) if wanted not in ("yes", "no") else wanted == "yes"
    actor = actor_for(request)
    if enable and not channel.enabled:
        channel = services.enable_channel(channel, actor=actor)
    elif not enable and channel.enabled:
        channel = services.disable_channel(channel, actor=actor)
    return_to = request.POST.get("return_to", "list")
    done = f"“{channel.name}” is {'enabled' if channel.enabled else 'disabled'}."
    if is_htmx(request):
        # The channel page gets its whole status card back ("Sync now" depends on the switch),
        # the list its row; either names the change for the page's aria-live region.
        context = channel_context(request, channel, announce=done)
        template = "channels/_status_card.html" if return_to == "detail" else "channels/_row.html"
        return render(request, template, {**context, "toggle_context": return_to})
    messages.success(request, done)
    if return_to == "detail":
        return redirect("channels:detail", channel.pk)
    return redirect("channels:list")


@login_required
@require_GET
def channel_state(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """The connection-state badge alone, for HTMX polling while a channel waits for its store."""
    channel = channel_for_request(request, channel_id)
    context: dict[str, Any] = {"channel": channel, "poll": True}
    if channel.connection_state != ConnectionState.PENDING:
        # the wait is over: the page's aria-live region says how it ended
        context["state_announce"] = f"“{channel.name}”: {channel.health.label}."
    return render(request, "channels/_state_badge.html", context)


# --------------------------------------------------------------------------------------------------
# Channel page: settings, state, sync runs
# --------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def channel_detail(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """The channel page; POST saves its name and settings (any member may, as services allow)."""
    channel = channel_for_request(request, channel_id)
    facts = facts_as_dict(channel.store_facts)
    can_edit_settings = has_role(request, Role.MEMBER)
    data = request.POST if request.method == "POST" else None
    form = SettingsForm(channel.platform, data, facts=facts, values=channel.settings, name=channel.name)
    if request.method == "POST":
        require_role(request, Role.MEMBER)
        if form.is_valid():
            try:
                services.update_channel_settings(
                    channel,
                    actor=actor_for(request),
                    name=form.cleaned_data["name"],
                    settings=form.spec_values(),
                )
            except (ValidationError, FieldErrors) as exc:
                add_errors(form, exc)
            else:
                messages.success(request, "Settings saved.")
                return redirect("channels:detail", channel.pk)
    runs = channel.sync_runs.order_by("-created_at")[:25]
    # after "Sync now" the progress panel waits for the queued jobs to start
    wait = progress.WAIT_POLLS if request.GET.get("progress") == "wait" else 0
    context = channel_context(
        request,
        channel,
        **progress.progress_context(request, channel.account_id, channel, wait=wait),
        form=form,
        runs=runs,
        can_edit_settings=can_edit_settings,
        price_example=price_example(request, channel.platform, data or channel.settings),
    )
    declared = CONNECTORS.get(channel.platform)
    if (
        declared is not None
        and declared.callback_credential
        and channel.connection_state == ConnectionState.PENDING
    ):
        context.update(platform_help_context(request, channel))
    return render(request, "channels/detail.html", context)


@login_required
@require_POST
def channel_sync_now(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """The seller's "sync now": enqueue the channel's jobs at once (after this request commits)."""
    channel = channel_for_request(request, channel_id)
    if not channel.enabled:
        messages.error(request, "This channel is disabled: switch it to Yes to sync it.")
    elif channel.connection_state not in (ConnectionState.OK, ConnectionState.ERROR):
        messages.error(request, "This channel is not connected yet: reauthorise it first.")
    else:
        jobs = sync.sync_now(channel)
        labels = ", ".join(str(SyncJob(job).label).lower() for job in jobs)
        messages.success(request, f"Sync started: {labels}. Their progress shows below.")
        return HttpResponseRedirect(reverse("channels:detail", args=[channel.pk]) + "?progress=wait")
    return redirect("channels:detail", channel.pk)


@login_required
@require_POST
def channel_test(request: HttpRequest, channel_id: Any) -> HttpResponse:
    """Test the saved connection now; the outcome lands on the channel row and its sync runs."""
    channel = channel_for_request(request, channel_id)
    try:
        services.check_channel_connection(channel, actor=actor_for(request))
    except ConnectorError as exc:
        messages.error(request, f"The connection test failed: {exc.message}")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The store answered: the connection works.")
    return redirect("channels:detail", channel.pk)


# --------------------------------------------------------------------------------------------------
# Reauthorise and remove
# --------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def channel_reauthorise(request: HttpRequest, channel_id: Any) -> HttpResponse:
    channel = channel_for_request(request, channel_id)
    require_role(request, Role.ADMIN)
    data = request.POST if request.method == "POST" else None
    # Non-secret credentials (OpenCart's API username) are shown as stored; secrets never are.
    initial = {
        spec.name: (channel.credentials or {}).get(spec.name, spec.default)
        for spec in CONNECTORS[channel.platform].credential_fields
        if not spec.secret
    }
    initial["store_url"] = channel.store_url
    form = ReauthoriseForm(channel.platform, data, initial=initial)
    connection_error = ""
    if request.method == "POST" and form.is_valid():
        try:
            channel = services.reauthorise_channel(
                channel,
                store_url=form.cleaned_data["store_url"],
                credentials=form.credentials(),
                actor=actor_for(request),
            )
        except ConnectorError as exc:
            connection_error = exc.message
        except (ValidationError, FieldErrors) as exc:
            add_errors(form, exc)
        else:
            if channel.connection_state == ConnectionState.PENDING:
                messages.info(request, f"“{channel.name}” was saved and waits for the store's authorisation.")
            else:
                messages.success(request, f"“{channel.name}” is connected again.")
                _warn_about_access(request, channel)
            return redirect("channels:list")
    context = channel_context(request, channel, form=form, connection_error=connection_error)
    context.update(platform_help_context(request, channel))
    return render(request, "channels/reauthorise.html", context)


def _warn_about_access(request: HttpRequest, channel: SalesChannel) -> None:
    """What the connection test found worth checking, e.g. a new key that can read but not write
    (orders still download; shipments, stock and prices would fail)."""
    facts = channel.store_facts or {}
    warnings = [str(warning) for warning in facts.get("warnings") or [] if warning]
    if facts.get("can_write") is False and not any("read-only" in warning for warning in warnings):
        warnings.insert(
            0,
            "The new key is read-only: Storelink can download orders but cannot confirm shipments "
            "or update stock and prices.",
        )
    for warning in warnings:
        messages.warning(request, warning)


@login_required
@require_http_methods(["GET", "POST"])
def channel_remove(request: HttpRequest, channel_id: Any) -> HttpResponse:
    channel = channel_for_request(request, channel_id)
    require_role(request, Role.ADMIN)
    if request.method == "POST":
        services.remove_channel(channel, actor=actor_for(request))
        messages.success(request, f"“{channel.name}” was removed. Its orders stay in Storelink.")
        return redirect("channels:list")
    return render(request, "channels/remove.html", channel_context(request, channel))


# --------------------------------------------------------------------------------------------------
# The OpenCart store bridge download
# --------------------------------------------------------------------------------------------------


@login_required
@require_GET
def opencart_bridge(request: HttpRequest) -> FileResponse:
    """The PHP file sellers upload next to OpenCart's index.php (served, never executed, here)."""
    account_for(request)
    if not BRIDGE_FILE.is_file():
        raise Http404("The store bridge is not part of this installation.")
    response = FileResponse(
        BRIDGE_FILE.open("rb"),
        as_attachment=True,
        filename="storelink-bridge.php",
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def platform_help_context(request: HttpRequest, channel: SalesChannel | None = None) -> dict[str, Any]:
    """What the connection instructions show: our IPs, the app's public key and the callback address.

    A callback address belongs to one saved channel, so it is shown only for one (to those of its
    account who may manage it); the wizard says where it will appear.
    """
    declared = CONNECTORS.get(channel.platform) if channel is not None else None
    callback_url = ""
    if declared is not None and declared.callback_credential and has_role(request, Role.ADMIN):
        from channels.threedcart_handoff import callback_path

        callback_url = request.build_absolute_uri(callback_path(channel))
    public_keys = {
        key: str(getattr(settings, setting, "") or "")
        for cls in CONNECTORS.values()
        for key, setting in cls.app_key_settings.items()
        if key == cls.public_app_key
    }
    return {
        "egress_ips": list(getattr(settings, "STORE_EGRESS_IPS", []) or []),
        "app_public_keys": public_keys,
        "callback_url": callback_url,
    }


def price_example(request: HttpRequest, platform: str, values: Any) -> str:
    """What these settings do to a price of 100.00, in one sentence (inventory answers the question)."""
    return describe_settings(account_for(request), platform, values)


def add_errors(form: Any, exc: ValidationError | FieldErrors) -> None:
    """Service errors go next to the field they name, the rest above the form."""
    if isinstance(exc, FieldErrors):
        items: dict[str, list[str]] = {name: [message] for name, message in exc.errors.items()}
    elif hasattr(exc, "error_dict"):
        items = exc.message_dict
    else:
        items = {"__all__": exc.messages}
    for field, errors in items.items():
        form.add_error(field if field in form.fields else None, errors)
