"""Bodies, query parameters and answers of the map endpoints, for the OpenAPI document.

The property schemas are made from the same `Field` tables the service validates with
(maps.service), so the document cannot promise what the server refuses.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from dispatch.core import openapi
from dispatch.core.api_schemas import (
    GEOJSON,
    IMPORT_MEDIA,
    JSON,
    LAT,
    LON,
    items_of,
    obj,
    ok,
    query,
)
from maps import service
from maps.service import FeatureKind, Field

_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def field_schema(field: Field, *, nullable: bool) -> dict[str, Any]:
    """The JSON Schema of one property (`nullable`: null counts as absent, DESIGN §5)."""
    kind = _TYPES[field.kind]
    schema: dict[str, Any] = {"type": [kind, "null"] if nullable else kind}
    if field.kind is str:
        schema["maxLength"] = field.max_len
        if field.choices:
            schema["enum"] = [*field.choices, *([None] if nullable else [])]
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    return schema


def properties_schema(fields: dict[str, Field], *, partial: bool = False) -> dict[str, Any]:
    """A feature's properties: required ones as the service requires them (none when partial)."""
    props = {name: field_schema(f, nullable=partial or not f.required)
             for name, f in fields.items()}
    required = [] if partial else [name for name, f in fields.items() if f.required]
    return obj(props, *required)


POSITION = {"type": "array", "prefixItems": [LON, LAT], "minItems": 2, "maxItems": 3,
            "items": {"type": "number"}}
RING = {"type": "array", "items": POSITION, "minItems": 4}
GEOMETRIES = {
    "Point": POSITION,
    "LineString": {"type": "array", "items": POSITION, "minItems": 2},
    "Polygon": {"type": "array", "items": RING, "minItems": 1},
    "MultiPolygon": {"type": "array", "items": {"type": "array", "items": RING, "minItems": 1},
                     "minItems": 1},
}


def geometry_schema(kind: FeatureKind) -> dict[str, Any]:
    """The GeoJSON geometries (RFC 7946) a kind of feature takes, longitudes and latitudes in
    range."""
    options = [obj({"type": {"const": name}, "coordinates": GEOMETRIES[name]},
                   "type", "coordinates") for name in kind.geometry_types]
    return options[0] if len(options) == 1 else {"oneOf": options}


def new_feature(kind: FeatureKind) -> dict[str, Any]:
    """A GeoJSON Feature that creates one of the kind."""
    return obj({"type": {"const": "Feature"}, "properties": properties_schema(kind.fields),
                "geometry": geometry_schema(kind)}, "properties", "geometry")


def change(kind: FeatureKind, *, geometry: bool = True) -> dict[str, Any]:
    """A change: `{"properties": {...}, "geometry": {...}}`, or the properties at the top."""
    partial = properties_schema(kind.fields, partial=True)
    members = {**partial["properties"], "properties": partial}
    if geometry:
        members["geometry"] = geometry_schema(kind)
    return obj(members)


FEATURE = obj({"type": {"const": "Feature"}, "id": {"type": "string"},
               "geometry": obj({"type": {"type": "string"}}, "type"),
               "properties": {"type": "object"}}, "type", "geometry", "properties")
COLLECTION = obj({"type": {"const": "FeatureCollection"},
                  "features": {"type": "array", "items": FEATURE},
                  "numberReturned": {"type": "integer", "minimum": 0},
                  "truncated": {"type": "boolean"}}, "type", "features")
# Four plain numbers (maps.geo.bbox_param; the ranges and min <= max are checked there, 400).
_NUMBER = r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*"
BBOX = query("bbox", {"type": "string", "pattern": f"^{_NUMBER}(,{_NUMBER}){{3}}$"},
             "minlon,minlat,maxlon,maxlat (WGS 84, GeoJSON order)")
IMPORTED = obj({"created": {"type": "integer", "minimum": 0},
                "updated": {"type": "integer", "minimum": 0}}, "created", "updated")


def _crud(kind: FeatureKind) -> dict[str, dict[str, Any]]:
    name = kind.layer
    return {
        f"maps.list_{name}": {"ok": ok(schema=items_of({"type": "object"}))},
        f"maps.get_{name}": {"ok": ok(schema=FEATURE)},
        f"maps.create_{name}": {"body": new_feature(kind), "ok": ok(schema=FEATURE, status=201),
                                "errors": (409,)},
        f"maps.update_{name}": {"body": change(kind), "ok": ok(schema=FEATURE)},
        f"maps.delete_{name}": {"ok": ok(None, status=204)},
    }


ENDPOINTS: dict[str, dict[str, Any]] = {
    **_crud(service.VILLAGES), **_crud(service.SHELTERS), **_crud(service.HAZARDS),
    "maps.layer": {"query": [BBOX], "ok": ok(GEOJSON, COLLECTION)},
    "maps.townships": {"ok": ok(schema=items_of(obj({
        "code": {"type": "string"}, "epsg": {"type": "integer"},
        "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4,
                   "maxItems": 4}}, "code", "epsg", "bounds")))},
    "maps.legend": {"ok": ok(schema={"type": "object", "additionalProperties": obj(
        {"label": {"type": "string"}, "colour": {"type": ["string", "null"]}}, "label")})},
    "maps.count_shelter_occupancy": {
        "body": {"oneOf": [obj({"delta": {"type": "integer", "not": {"const": 0}}}, "delta"),
                           obj({"occupancy": {"type": "integer", "minimum": 0}}, "occupancy")]},
        "ok": ok(schema=FEATURE), "errors": (409,)},
    "maps.update_road": {"body": change(service.ROADS, geometry=False), "ok": ok(schema=FEATURE)},
    **{f"maps.import_{name}": {
        "media": IMPORT_MEDIA,
        "query": [query("mode", {"enum": ["upsert"]},
                        "upsert: update features whose code exists (else they are refused)")],
        "ok": ok(JSON, IMPORTED), "errors": (422,)} for name in ("villages", "shelters")},
}


def init_app(app: Flask) -> None:
    """Describe the map endpoints in the OpenAPI document."""
    from maps.views import LAYER_NAMES  # here: the views may register these schemas one day

    layer = {**ENDPOINTS["maps.layer"], "path": {"name": {"enum": list(LAYER_NAMES)}}}
    openapi.register(app, {**ENDPOINTS, "maps.layer": layer})
