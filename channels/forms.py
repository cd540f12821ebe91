"""Seller-facing forms, generated from the connectors' FieldSpecs.

A platform declares its credentials and settings once (``connectors/<platform>/fields.py``); this
module turns those declarations into Django form fields so the wizard, the channel page and the
reauthorise form can never drift from what the connector validates. Validation runs twice on
purpose: Django's field for the shape of the widget, then the spec's own ``clean`` so a value the
form accepts is exactly the value the connector will be given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from django import forms

from channels.services import check_store_url_with_options
from connectors.base import FieldSpec
from connectors.errors import ConnectorError, FieldError
from connectors.registry import connector_class

YES_NO_CHOICES = (("yes", "Yes"), ("no", "No"))


# --------------------------------------------------------------------------------------------------
# Store facts → choices
# --------------------------------------------------------------------------------------------------


def facts_as_dict(facts: Any) -> dict[str, Any]:
    """Store facts as plain JSON-safe data, whether we got the dataclass or a stored JSON copy.

    The wizard keeps facts in the session and the channel keeps them in a JSON column; both end up
    here, so the settings form does not care where they came from.
    """
    if not facts:
        return {}
    if is_dataclass(facts) and not isinstance(facts, type):
        data = asdict(facts)
    elif isinstance(facts, Mapping):
        data = dict(facts)
    else:
        return {}
    statuses = []
    for item in data.get("order_statuses") or ():
        group, closes = "", False
        if isinstance(item, Mapping):
            code, name = item.get("code"), item.get("name")
            group, closes = str(item.get("group") or ""), bool(item.get("closes_order"))
        elif isinstance(item, list | tuple) and len(item) >= 2:
            code, name = item[0], item[1]
        else:
            continue
        if code is not None and str(code) != "":
            statuses.append(
                {"code": str(code), "name": str(name or code), "group": group, "closes_order": closes}
            )
    data["order_statuses"] = statuses
    data["currencies"] = [str(c) for c in data.get("currencies") or () if c]
    data["warnings"] = [str(w) for w in data.get("warnings") or ()]
    data["details"] = {str(k): _json_safe(v) for k, v in dict(data.get("details") or {}).items()}
    return data


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    return str(value)


def choices_from_facts(spec: FieldSpec, facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The store's own choices for a field that declares ``choices_from`` (empty when unknown)."""
    if spec.choices_from == "order_statuses":
        return [
            (s["code"], f"{s['name']} ({s['code']})")
            for s in facts.get("order_statuses", ())
            if not spec.choices_group or s.get("group") == spec.choices_group
        ]
    if spec.choices_from == "currencies":
        codes = list(facts.get("currencies") or ())
        base = facts.get("base_currency")
        if base and base not in codes:
            codes.insert(0, base)
        return [(code, code) for code in codes]
    return []


# --------------------------------------------------------------------------------------------------
# FieldSpec → Django field
# --------------------------------------------------------------------------------------------------


def _with_current(choices: list[tuple[str, str]], values: Sequence[str]) -> list[tuple[str, str]]:
    """Keep a saved value selectable even if the store no longer reports it, so editing other
    settings does not silently change it."""
    known = {key for key, _ in choices}
    extra = [(v, f"{v} (not reported by the store)") for v in values if v and v not in known]
    return choices + extra


def form_field_for_spec(
    spec: FieldSpec,
    *,
    facts: Mapping[str, Any] | None = None,
    current: Any = None,
    secret_required: bool | None = None,
) -> forms.Field:
    """One Django form field for one FieldSpec, with the seed's label and help text.

    ``current`` is the value already saved (or the spec default) so a value the store stopped
    reporting stays visible. Secrets are write-only: a PasswordInput that never renders its value.
    """
    field = _form_field_for_spec(spec, facts=facts, current=current, secret_required=secret_required)
    # Yes/no selects and fields with a default always hold a value: neither "*" nor "(optional)".
    if spec.kind == "bool" or spec.default is not None:
        field.requirement_hint = "none"
    else:
        field.requirement_hint = "required" if field.required else "optional"
    return field


def _form_field_for_spec(
    spec: FieldSpec,
    *,
    facts: Mapping[str, Any] | None,
    current: Any,
    secret_required: bool | None,
) -> forms.Field:
    facts = facts or {}
    required = spec.required and spec.default is None
    common: dict[str, Any] = {"label": spec.label, "help_text": spec.help_text}
    store_choices = choices_from_facts(spec, facts) if spec.choices_from else []

    if spec.kind == "secret":
        secret = forms.CharField(
            required=required if secret_required is None else secret_required,
            max_length=spec.max_length,
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            **common,
        )
        # The field template says "stored encrypted" for store credentials only, not for passwords.
        secret.stored_credential = True
        return secret
    if spec.kind == "bool":
        return forms.ChoiceField(required=True, choices=YES_NO_CHOICES, **common)
    if spec.kind == "int":
        return forms.IntegerField(
            required=required, min_value=spec.min_value, max_value=spec.max_value, **common
        )
    if spec.kind == "multichoice":
        choices = store_choices or list(spec.choices)
        if choices:
            current_values = [str(v) for v in (current or [])]
            return forms.MultipleChoiceField(
                required=False,
                choices=_with_current(choices, current_values),
                widget=forms.CheckboxSelectMultiple,
                **common,
            )
        # Nothing to choose from (no connection test yet): codes typed by hand, comma-separated.
        return forms.CharField(
            required=False,
            help_text=f"{spec.help_text} Enter status codes separated by commas.".strip(),
            label=spec.label,
            max_length=2000,
        )
    choices = list(spec.choices) or store_choices
    if spec.kind == "choice" or choices:
        choices = _with_current(choices, [str(current)] if current not in (None, "") else [])
        if not required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(required=required, choices=choices, **common)
    return forms.CharField(required=required, max_length=spec.max_length, **common)


def initial_for_spec(spec: FieldSpec, value: Any) -> Any:
    """A stored or default value in the shape the generated widget expects."""
    if value is None:
        value = spec.default
    if spec.kind == "bool":
        return "yes" if value else "no"
    if spec.kind == "multichoice":
        return list(value or [])
    return value


class SpecForm(forms.Form):
    """A form whose fields are generated from FieldSpecs and whose values are cleaned by them.

    ``cleaned_values()`` returns exactly what ``connectors.base.clean_fields`` would, so services
    receive connector-valid data; spec errors land next to the field they belong to.
    """

    def __init__(
        self,
        specs: Sequence[FieldSpec],
        *args: Any,
        facts: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.specs = tuple(specs)
        values = values or {}
        for spec in self.specs:
            current = values.get(spec.name, spec.default)
            self.fields[spec.name] = form_field_for_spec(spec, facts=facts, current=current)
            if spec.kind != "secret":
                field = self.fields[spec.name]
                initial = initial_for_spec(spec, current)
                if isinstance(field, forms.CharField) and spec.kind == "multichoice":
                    initial = ", ".join(initial)
                self.initial.setdefault(spec.name, initial)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for spec in self.specs:
            if spec.name not in cleaned:
                continue  # the Django field already reported an error
            raw = cleaned[spec.name]
            if spec.kind == "multichoice" and isinstance(raw, str):
                raw = [part for part in (p.strip() for p in raw.split(",")) if part]
            try:
                cleaned[spec.name] = spec.clean(raw)
            except FieldError as exc:
                self.add_error(spec.name, exc.message)
        return cleaned

    def spec_values(self) -> dict[str, Any]:
        return {
            spec.name: self.cleaned_data[spec.name] for spec in self.specs if spec.name in self.cleaned_data
        }


# --------------------------------------------------------------------------------------------------
# Wizard and channel forms
# --------------------------------------------------------------------------------------------------


def clean_store_url_value(value: str) -> str:
    """Refuse hostile store URLs (userinfo, non-http schemes, private hosts) with the connector
    layer's own guard, so the form and the workers agree on what is allowed."""
    try:
        return check_store_url_with_options(value)
    except ConnectorError as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from None


class ChannelNameForm(forms.Form):
    name = forms.CharField(
        label="Channel name",
        max_length=100,
        help_text="A name for this integration that you will recognise, e.g. 'Main web shop (EU)'.",
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Enter a name for this integration.")
        return name


class ConnectionForm(SpecForm):
    """Store URL plus the platform's credential fields (seed: "end point" and "key")."""

    def __init__(self, platform: str, *args: Any, **kwargs: Any) -> None:
        cls = connector_class(platform)
        super().__init__(cls.credential_fields, *args, **kwargs)
        url_field = forms.CharField(
            label=cls.store_url_label,
            help_text=cls.store_url_help,
            max_length=500,
            widget=forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "url"}),
        )
        # store URL first, as the platforms' own admin screens ask for it
        self.fields = {"store_url": url_field, **self.fields}
        self.platform = platform

    def clean_store_url(self) -> str:
        return clean_store_url_value(self.cleaned_data["store_url"])

    def credentials(self) -> dict[str, Any]:
        return self.spec_values()


class SettingsForm(SpecForm):
    """The platform's settings, with the store's own currencies and statuses as choices.

    On the channel page the integration's name is edited here too (``name=`` its current value).
    """

    def __init__(self, platform: str, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(connector_class(platform).settings_fields, *args, **kwargs)
        self.platform = platform
        if name is not None:
            name_field = ChannelNameForm.base_fields["name"]
            self.fields = {
                "name": name_field.__class__(
                    label=name_field.label, max_length=name_field.max_length, help_text=name_field.help_text
                ),
                **self.fields,
            }
            self.initial.setdefault("name", name)

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())


class ReauthoriseForm(ConnectionForm):
    """Same fields as the connection step. Secrets are never shown; left empty, the stored value
    is kept (``services.reauthorise_channel`` merges), so fixing only the URL needs no key hunt."""

    def __init__(self, platform: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(platform, *args, **kwargs)
        for spec in self.specs:
            if spec.secret:
                field = self.fields[spec.name]
                field.required = False
                field.help_text = f"{spec.help_text} Leave empty to keep the stored value.".strip()

    def clean(self) -> dict[str, Any]:
        # A blank secret means "keep": skip the spec's required check for secrets only.
        blank_secrets = [s.name for s in self.specs if s.secret and not self.data.get(s.name)]
        cleaned = forms.Form.clean(self)
        for spec in self.specs:
            if spec.name not in cleaned or spec.name in blank_secrets:
                continue
            try:
                cleaned[spec.name] = spec.clean(cleaned[spec.name])
            except FieldError as exc:
                self.add_error(spec.name, exc.message)
        return cleaned
