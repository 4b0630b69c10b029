"""The error answers every API operation shares, documented once (a drf-spectacular
postprocessing hook) instead of in each view: the shapes are made by
`leadcrm.api.exception_handler`, so the schema says which codes an operation can answer
and with which body."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, with the values a read-only model field really returns: DRF
    drops `allow_blank` from read-only fields, so a blank choice (a lead with no `grade`
    yet answers `""`) would be missing from the enum."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if isinstance(field, serializers.ChoiceField) and field.read_only and not field.allow_blank:
            model = getattr(getattr(field.parent, "Meta", None), "model", None)
            try:
                model_field = model._meta.get_field(field.source) if model is not None else None
            except Exception:
                model_field = None
            if model_field is not None and getattr(model_field, "blank", False):
                field.allow_blank = True
        return super()._map_serializer_field(field, direction, bypass_extensions)


# DRF renders times as "09:00:00"; JSON Schema's `time` format demands an offset.
TIME_PATTERN = r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"

FIELD_ERRORS = {
    "type": "object",
    "description": (
        "Field errors: each invalid field (or `non_field_errors`, or `detail` for a body that "
        "cannot be parsed) with its messages; nested objects for nested fields."
    ),
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {}},
            {"type": "object", "additionalProperties": {}},
            {"type": "string"},
        ]
    },
    "example": {"email": ["Enter a valid email address."]},
}

SCHEMAS = {
    "ValidationError": {
        "description": "A 400 answer: field errors, or one per item when the body is a list.",
        "anyOf": [
            {"$ref": "#/components/schemas/FieldErrors"},
            {"type": "array", "items": {"$ref": "#/components/schemas/FieldErrors"}},
        ],
    },
    "FieldErrors": FIELD_ERRORS,
    "Conflict": {
        "type": "object",
        "description": "A 409 answer: a guard refused the change.",
        "properties": {
            "detail": {"type": "string"},
            "guard": {"type": "string", "description": "The rule that refused, e.g. `bant_complete`."},
            "from": {"type": "string", "description": "The lead's stage (refused moves only)."},
            "to": {"type": "string", "description": "The stage asked for (refused moves only)."},
            "details": {"type": "object", "additionalProperties": {}},
        },
        "required": ["detail", "guard"],
        "example": {
            "detail": "BANT must be complete to reach SQL.",
            "guard": "bant_complete",
            "from": "SAL",
            "to": "SQL",
        },
    },
    "Error": {
        "type": "object",
        "description": "Any other error answer: one message.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
        "example": {"detail": "Not found."},
    },
}

WRITE_METHODS = {"post", "put", "patch", "delete"}

# code -> (description, schema component, applies(method, operation))
ERRORS: dict[str, tuple[str, str, object]] = {
    "400": (
        "Invalid input: field errors.",
        "ValidationError",
        lambda method, op: (
            "requestBody" in op
            or any(p["in"] == "query" or p.get("schema", {}).get("type") != "integer" for p in op.get("parameters", []))
        ),
    ),
    "401": ("No credentials, or an invalid token.", "Error", lambda method, op: op.get("security") != [{}]),
    "403": ("The caller's role does not allow this.", "Error", lambda method, op: op.get("security") != [{}]),
    "404": (
        "No such object, or one the caller may not see.",
        "Error",
        lambda method, op: any(p["in"] == "path" or p["name"] == "cursor" for p in op.get("parameters", [])),
    ),
    "409": ("A guard refused the change.", "Conflict", lambda method, op: method in WRITE_METHODS),
    "413": ("The body (or the batch) is too large.", "Error", lambda method, op: "requestBody" in op),
    "415": ("The body's media type is not supported.", "Error", lambda method, op: "requestBody" in op),
    "429": ("Too many requests: throttled; retry later.", "Error", lambda method, op: True),
}


def _times(node) -> None:
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            del node["format"]
            node["pattern"] = TIME_PATTERN
            node.setdefault("example", "09:00:00")
        for value in node.values():
            _times(value)
    elif isinstance(node, list):
        for value in node:
            _times(value)


def add_error_responses(result: dict, generator, request, public) -> dict:
    """Add the shared error components and, to each operation, the error codes it can answer
    (those a view documents itself are kept)."""
    _times(result)
    result.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for path_item in result.get("paths", {}).values():
        for method, op in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = op.setdefault("responses", {})
            for code, (description, component, applies) in ERRORS.items():
                if code in responses and responses[code].get("content"):
                    continue
                if not applies(method, op):
                    continue
                documented = responses.get(code, {}).get("description")
                responses[code] = {
                    "description": documented or description,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                }
    return result
