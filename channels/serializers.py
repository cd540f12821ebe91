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
from connectors.registry import CONNECTORS, PLATFORM_CHOICES


def _field_for(spec: FieldSpec, *, for_update: bool = False) -> serializers.Field:
    common: dict[str, Any] = {
        "label": spec.label,
        "help_text": spec.help_text,
        "required": spec.required and spec.default is None and not for_update and spec.kind != "bool",
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


@cache
def spec_serializer(platform: str, part: str) -> type[serializers.Serializer]:
    """A serializer class for one platform's ``credentials`` or ``settings`` (for the schema)."""
    connector = CONNECTORS[platform]
    specs = connector.credential_fields if part == "credentials" else connector.settings_fields
    name = f"{connector.__name__.removesuffix('Connector')}{part.title()}"
    fields = {spec.name: _field_for(spec) for spec in specs}
    return type(name, (serializers.Serializer,), fields)


def _polymorphic(part: str) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(
        component_name=f"Platform{part.title()}",
        serializers=[spec_serializer(platform, part) for platform in CONNECTORS],
        resource_type_field_name=None,
    )


@extend_schema_field(_polymorphic("credentials"))
class CredentialsField(serializers.DictField):
    """Write-only credentials; the shape depends on ``platform`` (see the schema's oneOf)."""

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


@extend_schema_field({"type": "string", "pattern": STORE_URL_PATTERN, "maxLength": 500})
class StoreUrlField(serializers.CharField):
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
    platform = serializers.ChoiceField(choices=PLATFORM_CHOICES)
    name = serializers.CharField(max_length=100)
    store_url = StoreUrlField(help_text="The store's address, https://…")
    credentials = CredentialsField(required=False, default=dict)
    settings = SettingsField(required=False, default=dict)


class ChannelUpdateSerializer(StrictSerializer):
    moved_fields: ClassVar[dict[str, str]] = {
        "store_url": "The store URL is changed by reauthorising (POST /api/v1/channels/{id}/reauthorise/), "
        "which tests the store first.",
        "credentials": "Credentials are changed by reauthorising (POST /api/v1/channels/{id}/reauthorise/).",
    }
    name = serializers.CharField(max_length=100, required=False)
    settings = SettingsField(required=False, help_text="Merged over the current settings.")


class ChannelReauthoriseSerializer(StrictSerializer):
    store_url = StoreUrlField(required=False)
    credentials = CredentialsField(
        required=False, default=dict, help_text="A secret left out keeps the stored value."
    )


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    connection_state = serializers.CharField()
    store_facts = StoreFactsSerializer()


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)
