"""API serializers, with the per-platform credential and settings shapes generated from FieldSpecs.

Validation of credentials and settings is done once, by the services (``clean_fields`` on the
platform's specs); the generated serializers describe those shapes in the OpenAPI schema so that
API users see the same fields, labels and help text as the wizard. Credentials are write-only:
no serializer here has a field that reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from channels.models import SalesChannel
from connectors.base import PRINTABLE_ASCII_PATTERN, FieldSpec
from connectors.errors import FieldError
from connectors.registry import CONNECTORS, platform_choices


def _field_for(spec: FieldSpec, *, for_update: bool = False) -> serializers.Field:
    # A currency left out is the store's base currency (the connection test reports it).
    filled_by_store = spec.choices_from == "currencies"
    common: dict[str, Any] = {
        "label": spec.label,
        "help_text": spec.help_text
        + (
            " Left out: the store's base currency, as the connection test reports it."
            if filled_by_store
            else ""
        ),
        "required": spec.required
        and spec.default is None
        and not for_update
        and spec.kind != "bool"
        and not filled_by_store,
    }
    if spec.kind == "bool":
        return serializers.BooleanField(**common)
    if spec.kind == "int":
        return serializers.IntegerField(min_value=spec.min_value, max_value=spec.max_value, **common)
    if spec.kind == "choice" and spec.choices:
        return serializers.ChoiceField(choices=list(spec.choices), **common)
    if spec.kind == "multichoice":
        child = (
            serializers.ChoiceField(choices=list(spec.choices)) if spec.choices else serializers.CharField()
        )
        return serializers.ListField(child=child, **common)
    extra: dict[str, Any] = {"max_length": spec.max_length, "allow_blank": not common["required"]}
    if spec.kind == "secret":
        extra |= {"write_only": True, "style": {"input_type": "password"}}
    if spec.pattern:
        return serializers.RegexField(rf"^(?:{spec.pattern})$", **common, **extra)
    if spec.printable_ascii:
        return serializers.RegexField(rf"^{PRINTABLE_ASCII_PATTERN}$", **common, **extra)
    return serializers.CharField(**common, **extra)


def _specs(platform: str, part: str) -> tuple[FieldSpec, ...]:
    connector = CONNECTORS[platform]
    return connector.credential_fields if part == "credentials" else connector.settings_fields


@cache
def spec_serializer(platform: str, part: str, for_update: bool = False) -> type[serializers.Serializer]:
    """A serializer class for one platform's ``credentials`` or ``settings`` (for the schema).

    ``for_update`` is the reauthorise shape: nothing is required (a secret left out keeps the
    stored value).
    """
    connector = CONNECTORS[platform]
    suffix = "Update" if for_update else ""
    name = f"{connector.__name__.removesuffix('Connector')}{part.title()}{suffix}"
    fields = {spec.name: _field_for(spec, for_update=for_update) for spec in _specs(platform, part)}
    return type(name, (serializers.Serializer,), fields)


def _polymorphic(part: str, for_update: bool = False) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(
        component_name=f"Platform{part.title()}{'Update' if for_update else ''}",
        serializers=[spec_serializer(platform, part, for_update) for platform in CONNECTORS],
        resource_type_field_name=None,
    )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "multichoice": (list,),
}


def _shape_problem(spec: FieldSpec, value: Any) -> str:
    """What is wrong with the JSON type of ``value`` for ``spec`` ('' when nothing)."""
    if value is None:
        return f"{spec.label} may not be null; leave it out instead."
    expected = _JSON_TYPES.get(spec.kind, (str,))
    if not isinstance(value, expected) or (spec.kind == "int" and isinstance(value, bool)):
        words = {"bool": "true or false", "int": "a whole number", "multichoice": "a list of texts"}
        return f"{spec.label} must be {words.get(spec.kind, 'text')}."
    if spec.kind == "multichoice" and not all(isinstance(item, str) for item in value):
        return f"{spec.label} must be a list of texts."
    return ""


def shape_errors(platform: str, part: str, data: Any, *, partial: bool = False) -> dict[str, list[str]]:
    """Where ``data`` does not have the platform's documented ``credentials``/``settings`` shape.

    The API is strict where the schema is (``additionalProperties: false``, JSON types): an
    unknown key or a number sent as text is an error, not silently dropped or converted.
    ``partial`` (reauthorise, settings merged over the current ones) also checks each value
    sent against its field's own rules, so a value that fits another platform's shape but not
    this channel's can be told apart (a 409, see :func:`fits_another_platform`).
    """
    if not isinstance(data, Mapping):
        return {"non_field_errors": [f"The {part} must be an object."]}
    specs = {spec.name: spec for spec in _specs(platform, part)}
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        spec = specs.get(key)
        if spec is None:
            errors[str(key)] = [f"Unknown field for {CONNECTORS[platform].label} {part}."]
        elif problem := _shape_problem(spec, value):
            errors[key] = [problem]
        elif partial and not (spec.secret and value == ""):
            try:
                spec.clean(value)
            except FieldError as exc:
                errors[key] = [exc.message]
    return errors


def fits_another_platform(platform: str, part: str, data: Any) -> str:
    """The label of another platform whose shape ``data`` has ('' when none has it)."""
    for other, connector in CONNECTORS.items():
        if other != platform and not shape_errors(other, part, data, partial=True):
            return str(connector.label)
    return ""


@extend_schema_field(_polymorphic("credentials", for_update=True))
class CredentialsField(serializers.DictField):
    """Write-only credentials; the shape depends on the channel's platform (see the schema's anyOf)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)


@extend_schema_field(_polymorphic("settings"))
class SettingsField(serializers.DictField):
    """Settings; the shape depends on ``platform``; validated against the platform's specs."""


class StatusSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    #: the store's list the status belongs to ("payment"/"shipping" on X-Cart, whose letters overlap)
    group = serializers.CharField(required=False, default="")
    closes_order = serializers.BooleanField(required=False, default=False)


class StoreFactsSerializer(serializers.Serializer):
    platform_version = serializers.CharField(required=False)
    base_currency = serializers.CharField(required=False)
    timezone = serializers.CharField(required=False)
    prices_include_tax = serializers.BooleanField(required=False, allow_null=True)
    order_statuses = StatusSerializer(many=True, required=False)
    currencies = serializers.ListField(child=serializers.CharField(), required=False)
    can_read = serializers.BooleanField(required=False)
    can_write = serializers.BooleanField(required=False)
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class ChannelSerializer(serializers.ModelSerializer):
    """What the API shows of a channel. No credentials: only whether some are stored."""

    platform_label = serializers.CharField(source="get_platform_display", read_only=True)
    has_credentials = serializers.BooleanField(read_only=True)
    settings = SettingsField(read_only=True)
    store_facts = StoreFactsSerializer(read_only=True)

    class Meta:
        model = SalesChannel
        fields = (
            "id",
            "platform",
            "platform_label",
            "name",
            "store_url",
            "enabled",
            "connection_state",
            "last_error",
            "has_credentials",
            "settings",
            "store_facts",
            "last_sync_at",
            "last_success_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
_PATH_CHAR = r"[^\s#\\\u0000-\u001f\u007f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069]"
#: What the store-URL rules accept, as far as a pattern can say it: http(s), a DNS name of valid
#: labels, an optional port, a path without spaces, ``#``, ``@``, backslashes or invisible characters.
STORE_URL_PATTERN = rf"^https?://{_LABEL}(?:\.{_LABEL})*\.?{_PORT}(?:/{_PATH_CHAR}*)?$"


_UNSAFE = r"\u0000-\u001f\u007f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069"
#: A name: plain text (no control or invisible characters) with something besides white space.
NAME_PATTERN = rf"^[^{_UNSAFE}]*[^\s{_UNSAFE}][^{_UNSAFE}]*$"


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField turns a JSON number into text, which the schema does not allow."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 100, "pattern": NAME_PATTERN})
class NameField(StrictCharField):
    """A channel's name (unique among the account's live channels, checked by the services)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)


@extend_schema_field({"type": "string", "pattern": STORE_URL_PATTERN, "maxLength": 500})
class StoreUrlField(StrictCharField):
    """Checked by the services (with every other field, so all errors come back at once); the
    pattern is for the schema, so generated clients and fuzzers send plausible addresses."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 500)
        super().__init__(**kwargs)


class StrictSerializer(serializers.Serializer):
    # Refuses fields it does not declare (the schema says ``additionalProperties: false``): a
    # misspelt or misplaced field must be an error, not silently ignored. (A comment, not a
    # docstring: the schema generator would show a docstring as every subclass's description.)

    #: Fields that are known elsewhere in the API, with the message that says where.
    moved_fields: ClassVar[dict[str, str]] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.moved_fields.get(name, "Unknown field.")] for name in unknown}
                )
        return super().to_internal_value(data)


class ChannelCreateSerializer(StrictSerializer):
    # Validates the body; the schema shows :data:`CHANNEL_CREATE_SCHEMA`, one shape per platform.
    platform = serializers.ChoiceField(choices=[])
    name = NameField()
    store_url = StoreUrlField()
    credentials = serializers.DictField(required=False, default=dict)
    settings = serializers.DictField(required=False, default=dict)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["platform"].choices = platform_choices()  # the platforms registered now

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for part in ("credentials", "settings"):
            errors |= shape_errors(attrs["platform"], part, attrs.get(part) or {})
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


@cache
def channel_create_serializer(platform: str) -> type[serializers.Serializer]:
    """The body that connects a store of ``platform`` (for the schema): its own credentials and
    settings, so a client sees exactly which fields its platform takes."""
    connector = CONNECTORS[platform]
    credentials = spec_serializer(platform, "credentials", False)
    needs_credentials = any(field.required for field in credentials().fields.values())
    fields = {
        "platform": serializers.ChoiceField(choices=[(platform, connector.label)]),
        "name": NameField(),
        "store_url": StoreUrlField(label=connector.store_url_label, help_text=connector.store_url_help),
        "credentials": credentials(required=needs_credentials),
        "settings": spec_serializer(platform, "settings", False)(required=False),
    }
    name = f"{connector.__name__.removesuffix('Connector')}ChannelCreate"
    return type(name, (serializers.Serializer,), fields)


#: POST /channels/: one of the platforms' bodies, told apart by ``platform``.
CHANNEL_CREATE_SCHEMA = PolymorphicProxySerializer(
    component_name="ChannelCreate",
    serializers={platform: channel_create_serializer(platform) for platform in CONNECTORS},
    resource_type_field_name="platform",
)


class ChannelUpdateSerializer(StrictSerializer):
    moved_fields: ClassVar[dict[str, str]] = {
        "store_url": "The store URL is changed by reauthorising (POST /api/v1/channels/{id}/reauthorise/), "
        "which tests the store first.",
        "credentials": "Credentials are changed by reauthorising (POST /api/v1/channels/{id}/reauthorise/).",
    }
    name = NameField(required=False)
    settings = SettingsField(
        required=False,
        help_text="Merged over the current settings. The shape is the channel's platform's; one that "
        "only fits another platform's is refused with 409.",
    )


class ChannelReauthoriseSerializer(StrictSerializer):
    store_url = StoreUrlField(required=False)
    credentials = CredentialsField(
        required=False,
        default=dict,
        help_text="A secret left out keeps the stored value. The shape is the channel's platform's; one "
        "that only fits another platform's is refused with 409.",
    )


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    connection_state = serializers.CharField()
    store_facts = StoreFactsSerializer()


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)
