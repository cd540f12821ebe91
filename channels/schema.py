"""OpenAPI post-processing for shapes drf-spectacular cannot express directly."""

from __future__ import annotations

from typing import Any

#: Components listing each platform's credentials/settings shape. A dict may fit several platforms'
#: shapes at once (they share keys such as ``currency``), so "one of" would be false: it is "any of",
#: and the server validates against the shape of the channel's ``platform``.
PLATFORM_SHAPE_COMPONENTS = ("PlatformCredentials", "PlatformSettings")
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
    return result
