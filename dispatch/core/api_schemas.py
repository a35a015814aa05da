"""Bodies, query parameters and answers of the kernel's API endpoints (dispatch.core.openapi),
and the schema pieces the packages' own `api_schemas` modules build on.

Not the database schema: that is dispatch.core.schema.
"""

from __future__ import annotations

from typing import Any

from dispatch.core.choices import Role

JSON = "application/json"
GEOJSON = "application/geo+json"

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    # Some errors name what was wrong (`field`, `parameter`, `rows`, `retry_after_s`).
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
# A longitude and a latitude in WGS 84 (GeoJSON order: lon, lat).
LON: dict[str, Any] = {"type": "number", "minimum": -180, "maximum": 180}
LAT: dict[str, Any] = {"type": "number", "minimum": -90, "maximum": 90}


def obj(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An object schema; unknown members are allowed (the API ignores them: forward compat)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def items_of(item: dict[str, Any]) -> dict[str, Any]:
    """A list answer: `{"items": [...]}` (DESIGN §5)."""
    return obj({"items": {"type": "array", "items": item}}, "items")


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An optional query parameter."""
    param: dict[str, Any] = {"name": name, "schema": schema}
    if description:
        param["description"] = description
    return param


def ok(media: str | None = JSON, schema: dict[str, Any] | None = None,
       status: int = 200) -> dict[int, tuple[str | None, dict[str, Any] | None]]:
    """The `ok` entry of a declaration: one success status with its media type and schema."""
    return {status: (media, schema)}


USERNAME: dict[str, Any] = {"type": "string", "minLength": 1}
PASSWORD: dict[str, Any] = {"type": "string"}

ENDPOINTS: dict[str, dict[str, Any]] = {
    "core.issue_token": {
        "body": obj({"username": USERNAME, "password": PASSWORD}, "username", "password"),
        "ok": ok(schema=obj({
            "token": {"type": "string"}, "token_type": {"const": "Bearer"},
            "expires_at": TIMESTAMP, "expires_in": {"type": "integer"},
            "role": {"enum": list(Role)}}, "token", "token_type", "expires_at", "role")),
        "errors": (401, 403, 429),
    },
    "core.api_change_password": {
        "body": obj({"username": USERNAME, "password": PASSWORD,
                     "new_password": {"type": "string", "minLength": 10}},
                    "username", "password", "new_password"),
        "ok": ok(schema=obj({"ok": {"const": True}}, "ok")),
        "errors": (401, 429),
    },
    "core.me": {
        "ok": ok(schema=obj({"kind": {"enum": ["user", "gateway"]}, "name": {"type": "string"},
                             "role": {"enum": list(Role)},
                             "must_change_password": {"type": "boolean"}},
                            "kind", "name", "role")),
    },
    "core.openapi_json": {
        "ok": ok(schema=obj({"openapi": {"type": "string"}, "paths": {"type": "object"}},
                            "openapi", "paths")),
    },
}


# The bodies a tabular import takes (dispatch.core.tabular: maps' and telemetry's imports).
IMPORT_MEDIA = {
    "text/csv": {"type": "string"},
    GEOJSON: obj({"type": {"const": "FeatureCollection"},
                  "features": {"type": "array", "items": {"type": "object"}}},
                 "type", "features"),
    "multipart/form-data": obj({"file": {"type": "string", "format": "binary"}}, "file"),
}
