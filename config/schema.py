"""OpenAPI post-processing that makes the document say what the API enforces.

- Request objects refuse properties they do not declare (the serializers and the bulk upsert
  answer 400 for them), so ``additionalProperties: false``.
- Request text may not hold control, bidi-override or zero-width characters (the JSON parser
  refuses them anywhere in a body), so every free-text request string carries that pattern.
- Every operation that reads a body documents the JSON 413 (too large) and 415 (not JSON) answers
  of the API's guards.
"""

from __future__ import annotations

from typing import Any

#: Text without the characters :mod:`connectors.text` refuses (JSON Schema / ECMA regex syntax).
SAFE_TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f\\u200b-\\u200d\\u2060\\ufeff\\u202a-\\u202e\\u2066-\\u2069]*$"
REQUEST_SUFFIX = "Request"
#: Objects that need more than their required fields: a bulk item is its ``sku`` plus at least
#: one field to set.
MIN_PROPERTIES = {"ProductItemRequest": 2}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _harden(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    if schema.get("type") == "string" and not ({"pattern", "format", "enum"} & set(schema)):
        schema["pattern"] = SAFE_TEXT_PATTERN
    for key in ("properties",):
        for child in (schema.get(key) or {}).values():
            _harden(child)
    for key in ("items", "additionalProperties"):
        _harden(schema.get(key))
    for key in ("allOf", "anyOf", "oneOf"):
        for child in schema.get(key) or []:
            _harden(child)


def strict_requests(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        if name.endswith(REQUEST_SUFFIX):
            _harden(component)
        if name in MIN_PROPERTIES:
            component["minProperties"] = MIN_PROPERTIES[name]
    has_error = "Error" in schemas
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            for media in operation["requestBody"].get("content", {}).values():
                _harden(media.get("schema"))
            if has_error:
                responses = operation.setdefault("responses", {})
                for code, text in (
                    ("413", "The body is larger than this endpoint accepts."),
                    ("415", "The body is not JSON."),
                ):
                    responses.setdefault(
                        code, {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
                    )
    return result
