"""Channel lifecycle: the only code that changes a SalesChannel or turns one into a connector.

Every state change is a verb_noun function with the actor as a keyword, runs in one transaction
and writes a :class:`~channels.models.ChannelEvent` inside it, so the audit trail cannot disagree
with the data. Network calls to the store (connection tests) happen *before* the transaction opens:
a slow store must not hold database locks.

Errors a seller can fix are raised as :class:`ChannelError` (a Django ``ValidationError`` whose
keys are field names: ``name``, ``store_url``, each credential and setting name, or ``__all__``),
so forms and the API put each message next to its field. What the store said is raised as the
connectors' typed errors (``AuthError``, ``TransientError`` ...) with a seller-facing message.
Role checks are repeated here, not only in views: a member can never change credentials, remove
or reauthorise a channel, whichever surface they come through.

Why one module of this size: it owns one thing, a channel's lifecycle, and every verb uses the
same pieces in the same order: the connector built from the platform's declaration (with the
private-host guard and the operator's keys), the validation of name, store URL, credentials and
settings (merged into one error per field), the connection test outside the transaction, then
the locked row and its audit event. Tests, forms and the API replace the store at one seam here
(``build_connector``, ``test_connection``, ``connector_for``); splitting the connector building
away from the verbs would split that seam. If it grows, the validation section (pure functions
over their inputs) is the part to move out first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings as django_settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, ApiKey, Role
from accounts.tenancy import Actor, actor_user, require_actor_role
from channels.events import announce_reservations_moved
from channels.models import (
    ChannelEvent,
    ConnectionState,
    SalesChannel,
    SyncJob,
    SyncRun,
    SyncState,
    store_key_for,
)
from connectors.base import Connector, ConnectorOptions, FieldErrors, FieldSpec, StoreFacts, clean_fields
from connectors.errors import AuthError, ConnectorError, PermanentError
from connectors.http import check_store_url
from connectors.registry import CONNECTORS, build_connector, connector_class
from connectors.text import unsafe_character_message

log = logging.getLogger("storelink.channels")

NAME_MAX_LENGTH = 100
STORE_URL_MAX_LENGTH = 500


class ChannelError(ValidationError):
    """Something the seller can fix; ``message_dict`` maps field name to messages."""


class ChannelConflict(ChannelError):
    """A well-formed request that the account's or the store's current state refuses (a name or
    store already connected, a status the store does not have): the API answers 409, not 400."""

    http_status = 409


def _error(field: str, message: str) -> ChannelError:
    return ChannelError({field: [message]})


# --------------------------------------------------------------------------------------------------
# Platforms and connectors
# --------------------------------------------------------------------------------------------------


def platform_class(platform: str) -> type[Connector]:
    """The connector class of ``platform``; ``ChannelError`` on ``platform`` when unknown."""
    try:
        return connector_class(platform)
    except ValueError:
        raise _error("platform", f"Choose one of: {', '.join(CONNECTORS)}.") from None


def credential_fields(platform: str) -> tuple[FieldSpec, ...]:
    return platform_class(platform).credential_fields


def settings_fields(platform: str) -> tuple[FieldSpec, ...]:
    return platform_class(platform).settings_fields


def check_store_url_with_options(url: str) -> str:
    """:func:`check_store_url` under the deployment's rules (private hosts, ports): the wizard, the
    reauthorise form, the API and the 3DCart callback all judge a store URL by this one call."""
    options = connector_options()
    return check_store_url(
        url, allow_private=options.allow_private_hosts, allowed_ports=options.allowed_ports
    )


def connector_options(platform: str = "") -> ConnectorOptions:
    """Deployment knobs from Django settings, the same for every channel of ``platform``: the
    operator's app keys and API host are those the platform's connector declares."""
    declared = connector_class(platform) if platform in CONNECTORS else None
    app_keys = {
        name: str(getattr(django_settings, setting, "") or "")
        for name, setting in (declared.app_key_settings if declared else {}).items()
    }
    api_base = str(getattr(django_settings, declared.api_base_setting, "") or "") if declared else ""
    return ConnectorOptions(
        allow_private_hosts=django_settings.ALLOW_PRIVATE_STORE_HOSTS,
        allowed_ports=tuple(django_settings.STORE_ALLOWED_PORTS),
        timeout=django_settings.STORE_HTTP_TIMEOUT,
        max_retries=django_settings.STORE_HTTP_MAX_RETRIES,
        max_in_flight=django_settings.STORE_HTTP_MAX_IN_FLIGHT,
        gate_url=django_settings.STORE_GATE_REDIS_URL,
        gate_lease_seconds=django_settings.STORE_GATE_LEASE_SECONDS,
        gate_prefix=django_settings.STORE_GATE_KEY_PREFIX,
        app_keys=app_keys,
        api_base=api_base,
    )


def build_connector_for(
    platform: str,
    store_url: str,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    http: httpx.Client | None = None,
) -> Connector:
    """The one place a connector is built from stored or typed values plus deployment options."""
    platform_class(platform)
    return build_connector(
        platform, store_url, credentials, settings, http=http, options=connector_options(platform)
    )


#: What the seller reads when the stored credentials cannot be decrypted (the operator's log says more).
CREDENTIALS_UNREADABLE = (
    "The stored credentials of this channel cannot be decrypted (the key they were saved with is no "
    "longer configured). Reauthorise the channel with its credentials; its jobs are paused until then."
)


def connector_for(channel: SalesChannel, *, http: httpx.Client | None = None) -> Connector:
    """A connector for a stored channel (workers call this per job; cheap to build)."""
    if channel.is_removed:
        raise PermanentError("This channel has been removed.", code="removed")
    if channel.credentials_unreadable:
        log.error(
            "channel.credentials_unreadable channel=%s: no key in FIELD_ENCRYPTION_KEYS decrypts the "
            "stored credentials; restore the key they were saved with, or the seller reauthorises",
            channel.pk,
        )
        raise AuthError(CREDENTIALS_UNREADABLE, code="credentials_unreadable")
    return build_connector_for(
        channel.platform, channel.store_url, channel.credentials or {}, channel.settings or {}, http=http
    )


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def clean_store_url(store_url: str) -> str:
    """The store URL without a trailing slash, after the egress guard (https, public address ...)."""
    text = (store_url or "").strip()
    if not text:
        raise _error("store_url", "Enter your store's address.")
    if len(text) > STORE_URL_MAX_LENGTH:
        raise _error("store_url", f"Use at most {STORE_URL_MAX_LENGTH} characters.")
    if message := unsafe_character_message(text, "The store URL"):
        raise _error("store_url", message)
    try:
        return check_store_url_with_options(text)
    except PermanentError as exc:
        raise _error("store_url", exc.message) from None
    except ValueError:  # urlsplit: "Invalid IPv6 URL" for a stray "[" and similar
        raise _error("store_url", "This is not a web address, e.g. https://shop.example.com/.") from None


def _raise_field_errors(exc: FieldErrors) -> None:
    raise ChannelError({name: [message] for name, message in exc.errors.items()}) from None


def clean_credentials(platform: str, credentials: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate credentials against the platform's specs; unknown keys are dropped."""
    try:
        return clean_fields(credential_fields(platform), dict(credentials or {}))
    except FieldErrors as exc:
        _raise_field_errors(exc)
        raise  # unreachable, keeps type checkers calm


def clean_settings(
    platform: str, values: Mapping[str, Any] | None, store_facts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate settings; where the store reported its statuses, choices must be among them."""
    values = dict(values or {})
    facts = dict(store_facts or {})
    if values.get("currency") in (None, "") and facts.get("base_currency"):  # false or 0 is an error
        values["currency"] = facts["base_currency"]
    specs = settings_fields(platform)
    try:
        cleaned = clean_fields(specs, values)
    except FieldErrors as exc:
        # A currency left out is taken from the store; without a store answer (a 3DCart channel
        # still waiting for its token, a store that does not say) it is the state that refuses.
        unreported = {
            spec.name: [
                f"{spec.label}: your store has not reported its currency (yet); choose it in the settings."
            ]
            for spec in specs
            if spec.choices_from == "currencies" and values.get(spec.name) in (None, "")
        }
        if unreported and set(exc.errors) <= set(unreported):
            raise ChannelConflict(unreported) from None
        _raise_field_errors(exc)
        raise
    errors: dict[str, list[str]] = {
        name: [message]
        for name, value in cleaned.items()
        if (message := unsafe_character_message(value, "This setting"))
    }
    # Rules that depend on what the store reported (its statuses and currencies): a request that is
    # well formed but refused by them is a conflict with the store's state, not malformed.
    conflicts: dict[str, list[str]] = {}
    currencies = {str(code) for code in facts.get("currencies") or []}
    for spec in specs:
        value = cleaned.get(spec.name)
        statuses = {
            str(status["code"])
            for status in facts.get("order_statuses") or []
            if not spec.choices_group or status.get("group") == spec.choices_group
        }
        if spec.choices_from == "order_statuses" and statuses:
            chosen = value if isinstance(value, list) else ([value] if value else [])
            unknown = [item for item in chosen if item not in statuses]
            if unknown:
                conflicts[spec.name] = [
                    f"{', '.join(unknown)} is not one of your store's order statuses; choose from the list."
                ]
        elif spec.choices_from == "currencies" and currencies and value and value not in currencies:
            conflicts[spec.name] = [
                f"Your store does not sell in {value}; choose one of {', '.join(sorted(currencies))}."
            ]
    partial = cleaned.get("partial_status")
    closing = (
        partial == cleaned.get("processed_status") or partial in connector_class(platform).closed_status_codes
    )
    if partial and closing and "partial_status" not in conflicts:
        conflicts["partial_status"] = [
            "Choose a status that keeps the order open: in this one the order counts as shipped or "
            "finished, so its unshipped items would stop reserving stock."
        ]
    if errors:
        raise ChannelError(errors | {k: v for k, v in conflicts.items() if k not in errors})
    if conflicts:
        raise ChannelConflict(conflicts)
    return cleaned


def _clean_name(account: Account, name: str, *, exclude: SalesChannel | None = None) -> str:
    text = (name or "").strip()
    if not text:
        raise _error("name", "Give this channel a name, e.g. the shop's name.")
    if len(text) > NAME_MAX_LENGTH:
        raise _error("name", f"Use at most {NAME_MAX_LENGTH} characters.")
    if message := unsafe_character_message(text, "The name"):
        raise _error("name", message)
    clash = SalesChannel.objects.live().filter(account=account, name__iexact=text)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if clash.exists():
        raise ChannelConflict({"name": [f"You already have a channel called “{text}”. Choose another name."]})
    return text


def _store_taken_message(other: SalesChannel) -> str:
    return (
        f"This store is already connected as “{other.name}”: a second channel would download its "
        "orders twice. Open that channel (reauthorise it if its key changed), or remove it first."
    )


def ensure_store_not_connected(
    account: Account, store_url: str, *, exclude: SalesChannel | None = None
) -> None:
    """Refuse a store URL that reaches a store the account already has as a live channel.

    URLs are compared by :func:`~channels.models.store_key_for` (case, default port, trailing
    slash, ``index.php``); removed channels do not count, other accounts never do. The database's
    unique index on the key stops two concurrent requests that both passed this check.
    """
    others = SalesChannel.objects.live().filter(account=account, store_key=store_key_for(store_url))
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    other = others.only("name").first()
    if other is not None:
        raise ChannelConflict({"store_url": [_store_taken_message(other)]})


def _integrity_conflict(exc: IntegrityError, account: Account, store_url: str, name: str) -> ChannelConflict:
    """The unique index that a concurrent request won, in the seller's words."""
    if "channel_store_unique_live" in str(exc):
        other = (
            SalesChannel.objects.live().filter(account=account, store_key=store_key_for(store_url)).first()
        )
        message = _store_taken_message(other) if other else "This store is already connected in your account."
        return ChannelConflict({"store_url": [message]})
    return ChannelConflict({"name": [f"You already have a channel called “{name}”."]})


class _Errors(dict[str, list[str]]):
    """Field errors collected from several checks; ``conflict`` while every one was a conflict."""

    conflict = True

    def raise_all(self) -> None:
        raise (ChannelConflict if self.conflict else ChannelError)(dict(self))


def _merge_errors(*checks: Any) -> tuple[list[Any], _Errors]:
    """Run each zero-argument check, collecting every ChannelError so all fields report at once."""
    results: list[Any] = []
    errors = _Errors()
    for check in checks:
        try:
            results.append(check())
        except ChannelError as exc:
            results.append(None)
            errors.conflict = errors.conflict and isinstance(exc, ChannelConflict)
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    return results, errors


def awaiting_authorisation(platform: str, credentials: Mapping[str, Any]) -> bool:
    """A channel may be saved before the store hands over a credential by callback (3DCart's token)."""
    return connector_class(platform).awaits_callback(credentials)


def store_facts_to_dict(facts: StoreFacts) -> dict[str, Any]:
    """JSON-safe form of what ``test_connection`` learnt, kept on the channel row."""
    data = asdict(facts)
    data["order_statuses"] = [
        {"code": str(s.code), "name": s.name, "group": s.group, "closes_order": s.closes_order}
        for s in facts.order_statuses
    ]
    data["currencies"] = list(facts.currencies)
    data["warnings"] = list(facts.warnings)
    data["details"] = {str(k): v for k, v in dict(facts.details).items() if _json_plain(v)}
    return data


def _json_plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


# --------------------------------------------------------------------------------------------------
# Connection test
# --------------------------------------------------------------------------------------------------


def test_connection(
    platform: str,
    store_url: str,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,  # noqa: PT028  (a service, not a pytest test)
    *,
    http: httpx.Client | None = None,  # noqa: PT028
) -> StoreFacts:
    """Check a store with typed (not yet saved) values and return what it reports.

    Field problems raise :class:`ChannelError`; what the store answered raises the connectors'
    typed errors (``AuthError`` for a wrong key or a missing IP allow-list entry ...).
    """
    (url, creds), errors = _merge_errors(
        lambda: clean_store_url(store_url), lambda: clean_credentials(platform, credentials)
    )
    if errors:
        errors.raise_all()
    if awaiting_authorisation(platform, creds):
        raise _error(
            "access_token",
            "3DCart has not sent the access token yet: authorise Storelink in your 3DCart admin "
            "(Modules > REST API) or paste the token here.",
        )
    known = {spec.name for spec in settings_fields(platform)}
    loose_settings = {key: value for key, value in dict(settings or {}).items() if key in known}
    connector = build_connector_for(platform, url, creds, loose_settings, http=http)
    try:
        facts = connector.test_connection()
    finally:
        connector.close()
    log.info("channel.test_connection.ok platform=%s host=%s", platform, urlsplit(url).hostname)
    return facts


# --------------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------------


def _audit(channel: SalesChannel, actor: Actor, action: str, **detail: Any) -> ChannelEvent:
    return ChannelEvent.objects.create(
        account_id=channel.account_id,
        channel=channel,
        actor=actor_user(actor),
        actor_api_key=actor if isinstance(actor, ApiKey) else None,
        action=action,
        detail=detail,
    )


def _locked(channel: SalesChannel) -> SalesChannel:
    """Re-read the channel under a row lock (call inside ``transaction.atomic``)."""
    fresh = SalesChannel.objects.select_for_update().get(pk=channel.pk)
    if fresh.is_removed:
        raise ChannelError({NON_FIELD_ERRORS: ["This channel has been removed."]})
    return fresh


# --------------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------------


def add_channel(
    account: Account,
    *,
    actor: Actor,
    platform: str,
    name: str,
    store_url: str,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    store_facts: StoreFacts | Mapping[str, Any] | None = None,
) -> SalesChannel:
    """Connect a store. Without ``store_facts`` (the API, a script) the connection is tested here.

    The wizard passes the facts its "test connection" step already got. A 3DCart channel whose
    token has not arrived yet is saved as ``pending``; the store's callback completes it.
    """
    require_actor_role(actor, account, Role.ADMIN, doing="add channels")
    platform_class(platform)
    (clean_name, url, creds), errors = _merge_errors(
        lambda: _clean_name(account, name),
        lambda: _clean_new_store_url(account, store_url),
        lambda: clean_credentials(platform, credentials),
    )
    if errors:
        errors.raise_all()
    pending = awaiting_authorisation(platform, creds)
    if store_facts is None and not pending:
        store_facts = test_connection(platform, url, creds, settings)
    facts = (
        store_facts_to_dict(store_facts) if isinstance(store_facts, StoreFacts) else dict(store_facts or {})
    )
    cleaned_settings = clean_settings(platform, settings, facts)
    now = timezone.now()
    try:
        with transaction.atomic():
            channel = SalesChannel.objects.create(
                account=account,
                platform=platform,
                name=clean_name,
                store_url=url,
                enabled=True,
                connection_state=ConnectionState.PENDING if pending else ConnectionState.OK,
                credentials=creds,
                settings=cleaned_settings,
                store_facts=facts,
                last_success_at=None if pending else now,
            )
            _audit(channel, actor, "channel.added", platform=platform, name=clean_name, store_url=url)
    except IntegrityError as exc:  # a concurrent add with the same name or store won the race
        raise _integrity_conflict(exc, account, url, clean_name) from None
    log.info("channel.added account=%s channel=%s platform=%s", account.pk, channel.pk, platform)
    return channel


def update_channel_settings(
    channel: SalesChannel,
    *,
    actor: Actor,
    settings: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> SalesChannel:
    """Change settings (merged over the current ones) and/or the name. Any member may do this."""
    require_actor_role(actor, channel.account, Role.MEMBER, doing="change channel settings")
    changes: dict[str, Any] = {}
    (clean_name, cleaned), errors = _merge_errors(
        lambda: _clean_name(channel.account, name, exclude=channel) if name is not None else None,
        lambda: (
            clean_settings(
                channel.platform, {**(channel.settings or {}), **dict(settings)}, channel.store_facts
            )
            if settings is not None
            else None
        ),
    )
    if errors:
        errors.raise_all()
    try:
        with transaction.atomic():
            fresh = _locked(channel)
            if clean_name is not None and clean_name != fresh.name:
                changes["name"] = {"from": fresh.name, "to": clean_name}
                fresh.name = clean_name
            if cleaned is not None and cleaned != fresh.settings:
                changed_keys = sorted(k for k in cleaned if cleaned.get(k) != (fresh.settings or {}).get(k))
                changes["settings"] = changed_keys
                fresh.settings = cleaned
            if changes:
                fresh.save(update_fields=["name", "settings", "updated_at"])
                _audit(fresh, actor, "channel.settings_changed", **changes)
                if "processed_status" in changes.get("settings", ()):
                    # Orders at the new "shipped" status stop reserving stock (and those at the
                    # old one start again): availability moved for the whole account.
                    announce_reservations_moved(fresh.account_id)
    except IntegrityError:
        raise ChannelConflict({"name": ["You already have a channel with this name."]}) from None
    return fresh


def _set_enabled(channel: SalesChannel, *, actor: Actor, enabled: bool) -> SalesChannel:
    require_actor_role(actor, channel.account, Role.MEMBER, doing="enable or disable channels")
    with transaction.atomic():
        fresh = _locked(channel)
        if fresh.enabled != enabled:
            fresh.enabled = enabled
            fresh.save(update_fields=["enabled", "updated_at"])
            _audit(fresh, actor, "channel.enabled" if enabled else "channel.disabled")
    log.info("channel.%s channel=%s", "enabled" if enabled else "disabled", fresh.pk)
    return fresh


def enable_channel(channel: SalesChannel, *, actor: Actor) -> SalesChannel:
    """Let jobs run again (the seller's toggle). Idempotent."""
    return _set_enabled(channel, actor=actor, enabled=True)


def disable_channel(channel: SalesChannel, *, actor: Actor) -> SalesChannel:
    """Stop downloading orders and updating listings until enabled again. Idempotent."""
    return _set_enabled(channel, actor=actor, enabled=False)


def remove_channel(channel: SalesChannel, *, actor: Actor) -> SalesChannel:
    """Soft delete: jobs stop, credentials are wiped, orders stay in reports.

    Adding the same store again makes a new channel (the name becomes free at once).
    """
    require_actor_role(actor, channel.account, Role.ADMIN, doing="remove channels")
    with transaction.atomic():
        fresh = _locked(channel)
        fresh.removed_at = timezone.now()
        fresh.enabled = False
        fresh.credentials = {}
        fresh.save(update_fields=["removed_at", "enabled", "credentials", "updated_at"])
        _audit(fresh, actor, "channel.removed", name=fresh.name)
        # Its open orders stop reserving stock, so the other channels may sell those units again.
        announce_reservations_moved(fresh.account_id)
    log.info("channel.removed channel=%s", fresh.pk)
    return fresh


def reauthorise_channel(
    channel: SalesChannel,
    *,
    actor: Actor,
    credentials: Mapping[str, Any],
    store_url: str | None = None,
) -> SalesChannel:
    """Re-check the store with new (or confirmed) credentials and store them; clears needs_reauth.

    A secret left blank keeps the stored value, so a seller who only fixed the URL or the IP
    allow-list does not have to find the key again. Nothing is saved when the test fails. On
    success the work that waited while the channel was paused is requested at once.
    """
    require_actor_role(actor, channel.account, Role.ADMIN, doing="reauthorise channels")
    if channel.is_removed:
        raise ChannelError({NON_FIELD_ERRORS: ["This channel has been removed."]})
    stored = channel.credentials or {}
    merged = dict(credentials or {})
    for spec in credential_fields(channel.platform):
        if spec.secret and not merged.get(spec.name) and stored.get(spec.name):
            merged[spec.name] = stored[spec.name]
    (url, creds), errors = _merge_errors(
        lambda: _clean_own_store_url(channel, store_url),
        lambda: clean_credentials(channel.platform, merged),
    )
    if errors:
        errors.raise_all()
    pending = awaiting_authorisation(channel.platform, creds)
    facts = None if pending else test_connection(channel.platform, url, creds, channel.settings)
    try:
        with transaction.atomic():
            fresh = _reauthorised(channel, actor, url, creds, stored, pending, facts)
    except IntegrityError as exc:  # another channel took this store meanwhile
        raise _integrity_conflict(exc, channel.account, url, channel.name) from None
    log.info("channel.reauthorised channel=%s", fresh.pk)
    return fresh


def _clean_new_store_url(account: Account, store_url: str) -> str:
    url = clean_store_url(store_url)
    ensure_store_not_connected(account, url)
    return url


def _clean_own_store_url(channel: SalesChannel, store_url: str | None) -> str:
    url = clean_store_url(store_url if store_url is not None else channel.store_url)
    ensure_store_not_connected(channel.account, url, exclude=channel)
    return url


def _reauthorised(
    channel: SalesChannel,
    actor: Actor,
    url: str,
    creds: dict[str, Any],
    stored: Mapping[str, Any],
    pending: bool,
    facts: StoreFacts | None,
) -> SalesChannel:
    """The write of :func:`reauthorise_channel` (inside its transaction)."""
    fresh = _locked(channel)
    fresh.store_url = url
    fresh.credentials = creds
    fresh.connection_state = ConnectionState.PENDING if pending else ConnectionState.OK
    fresh.last_error = fresh.last_error_job = ""
    fresh.failed_runs, fresh.failing_since = 0, None  # the store answered: a new count starts
    update_fields = [
        "store_url",
        "credentials",
        "connection_state",
        "last_error",
        "last_error_job",
        "failed_runs",
        "failing_since",
        "updated_at",
    ]
    if facts is not None:
        fresh.store_facts = store_facts_to_dict(facts)
        fresh.last_success_at = timezone.now()
        update_fields += ["store_facts", "last_success_at"]
    fresh.save(update_fields=update_fields)
    _audit(
        fresh,
        actor,
        "channel.reauthorised",
        store_url=url,
        store_url_changed=url != channel.store_url,
        credentials_changed=creds != stored,
    )
    if not pending:
        from channels import sync  # sync imports this module lazily too

        sync.resume_paused_work(fresh)  # sent once this transaction commits
    return fresh


def check_channel_connection(channel: SalesChannel, *, actor: Actor) -> StoreFacts:
    """Test a saved channel with its stored credentials and record the outcome on the row.

    ``AuthError`` marks the channel ``needs_reauth``; other store errors mark it ``error``; each
    test leaves a ``SyncRun`` (job ``test``). The typed error is re-raised for the caller to show.
    """
    require_actor_role(actor, channel.account, Role.MEMBER, doing="test channels")
    if channel.is_removed:
        raise ChannelError({NON_FIELD_ERRORS: ["This channel has been removed."]})
    run = SyncRun.objects.create(
        account_id=channel.account_id,
        channel=channel,
        job=SyncJob.TEST,
        state=SyncState.RUNNING,
        started_at=timezone.now(),
    )
    try:
        if awaiting_authorisation(channel.platform, channel.credentials or {}):
            raise AuthError(
                "3DCart has not sent the access token yet: authorise Storelink in your 3DCart admin.",
                code="awaiting_token",
            )
        connector = connector_for(channel)
        try:
            facts = connector.test_connection()
        finally:
            connector.close()
    except ConnectorError as exc:
        with transaction.atomic():
            SyncRun.objects.filter(pk=run.pk).update(
                state=SyncState.FAILED, finished_at=timezone.now(), error=exc.message, failed=1
            )
            fresh = _locked(channel)
            if isinstance(exc, AuthError) and fresh.connection_state not in (
                ConnectionState.NEEDS_REAUTH,
                ConnectionState.PENDING,
            ):
                # Working credentials just stopped working (a test in the background, after a
                # 3DCart token arrived, or by a colleague): the admins hear of it the same way as
                # when a sync job hits the AuthError. A channel still waiting for its first
                # token has nothing to announce.
                _notify_needs_reauth_on_commit(fresh.pk, exc.message)
            fresh.connection_state = (
                ConnectionState.NEEDS_REAUTH if isinstance(exc, AuthError) else ConnectionState.ERROR
            )
            fresh.last_error, fresh.last_error_job = exc.message, ""
            fresh.save(update_fields=["connection_state", "last_error", "last_error_job", "updated_at"])
            _audit(fresh, actor, "channel.test_failed", code=exc.code, message=exc.message)
        raise
    with transaction.atomic():
        SyncRun.objects.filter(pk=run.pk).update(state=SyncState.SUCCEEDED, finished_at=timezone.now())
        fresh = _locked(channel)
        fresh.store_facts = store_facts_to_dict(facts)
        fresh.last_success_at = timezone.now()
        if fresh.connection_state != ConnectionState.PENDING:
            fresh.connection_state = ConnectionState.OK
            fresh.last_error = fresh.last_error_job = ""
            fresh.failed_runs, fresh.failing_since = 0, None  # the store answered: a new count starts
        fresh.save(
            update_fields=[
                "store_facts",
                "last_success_at",
                "connection_state",
                "last_error",
                "last_error_job",
                "failed_runs",
                "failing_since",
                "updated_at",
            ]
        )
        _audit(fresh, actor, "channel.tested")
    return facts


def _notify_needs_reauth_on_commit(channel_id: Any, reason: str) -> None:
    from channels import sync  # sync imports this module lazily too

    transaction.on_commit(lambda: sync.notify_needs_reauth(channel_id, reason))


def mark_needs_reauth(channel: SalesChannel, reason: str, *, actor: Actor = None) -> SalesChannel:
    """Pause the channel's jobs until the seller reauthorises (workers call this on AuthError)."""
    with transaction.atomic():
        fresh = _locked(channel)
        if fresh.connection_state == ConnectionState.NEEDS_REAUTH and fresh.last_error == reason:
            return fresh
        fresh.connection_state = ConnectionState.NEEDS_REAUTH
        fresh.last_error, fresh.last_error_job = reason, ""
        fresh.save(update_fields=["connection_state", "last_error", "last_error_job", "updated_at"])
        _audit(fresh, actor, "channel.needs_reauth", reason=reason)
    log.warning("channel.needs_reauth channel=%s", fresh.pk)
    return fresh


# 3DCart's AUTHORIZE / REMOVE callbacks are handled in channels.threedcart_handoff.


# ``test_connection`` is a service, not a pytest test, wherever a test module imports it.
test_connection.__test__ = False  # type: ignore[attr-defined]
