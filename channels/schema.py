"""OpenAPI post-processing for shapes drf-spectacular cannot express directly."""

from __future__ import annotations

from typing import Any

#: Components listing each platform's credentials/settings shape where the body does not say the
#: platform (PATCH and reauthorise: the channel's platform decides). A dict may fit several
#: platforms' shapes at once (they share keys such as ``currency``), so "one of" would be false: it
#: is "any of". The server checks the channel's platform's shape and answers 409 for one that fits
#: only another platform's. Creating a channel uses a "one of" keyed by ``platform`` instead.
PLATFORM_SHAPE_COMPONENTS = ("PlatformCredentialsUpdate", "PlatformSettings")
#: The body that connects a store: "one of" the platforms' bodies (see channels.serializers).
CREATE_COMPONENT = "ChannelCreateRequest"
#: With COMPONENT_SPLIT_REQUEST the request side of a component carries this suffix.
REQUEST_SUFFIX = "Request"


def platform_shapes_any_of(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    names = [name + suffix for name in PLATFORM_SHAPE_COMPONENTS for suffix in ("", REQUEST_SUFFIX)]
    for name in names:
        component = schemas.get(name)
        if component and "oneOf" in component:
            component["anyOf"] = component.pop("oneOf")
    # A body that is "one of" the platforms' shapes is required: the generator cannot see the
    # required fields of a proxy, and a request without a body connects nothing.
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            for media in (body or {}).get("content", {}).values():
                if media.get("schema", {}).get("$ref", "").endswith(f"/{CREATE_COMPONENT}"):
                    body["required"] = True
    return result
