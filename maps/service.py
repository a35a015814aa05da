"""Map features as services: layers as GeoJSON, create/update/delete with audit, imports.

Geometry is shapely here and a GeoAlchemy2 element in the models. Spatial filters use the index
on both backends: PostGIS by itself, SpatiaLite only through its `SpatialIndex` virtual table
(its planner never picks the R*Tree on its own, NOTES.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import shapely
from flask_babel import lazy_gettext as _l
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from sqlalchemy import ColumnElement, and_, func, insert, literal_column, select, text
from sqlalchemy.orm import Session

from dispatch.core import audit
from dispatch.core.codes import check_code
from dispatch.core.db import utcnow
from dispatch.core.errors import BadRequest, Conflict, NotFound, field_error
from maps import geo
from maps.choices import HazardKind, RoadClass, RoadStructure, ShelterKind, ShelterStatus
from maps.models import SRID, HazardZone, River, RoadSegment, Shelter, Township, Village

MAX_FEATURES = 50_000


# --- field validation -------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One property of a feature: its type and limits (also used to parse CSV cells)."""

    kind: type
    required: bool = False
    max_len: int = 200
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    code: bool = False  # an identifier: dispatch.core.codes' rule

    def parse(self, name: str, value: Any, *, from_text: bool = False) -> Any:
        if from_text and isinstance(value, str):
            value = _from_text(self.kind, value.strip())
        if value is None:
            return None
        if self.kind is bool and not isinstance(value, bool):
            raise field_error(name, _l("must be true or false"))
        if self.kind in (int, float):
            return self._number(name, value)
        if self.kind is str:
            return self._text(name, value)
        return value

    def _number(self, name: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise field_error(name, _l("must be a number"))
        if not math.isfinite(value):  # "nan" in a CSV cell; NaN would reach every open map
            raise field_error(name, _l("must be a finite number"))
        if self.kind is int and value != int(value):
            raise field_error(name, _l("must be a whole number"))
        value = self.kind(value)
        if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum):
            raise field_error(name, _l("must be between %(lo)s and %(hi)s",
                                       lo=self.minimum, hi=self.maximum))
        return value

    def _text(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise field_error(name, _l("must be text"))
        value = value.strip()
        if len(value) > self.max_len:
            raise field_error(name, _l("is longer than %(max)d characters", max=self.max_len))
        if self.code:
            check_code(name, value, self.max_len)
        if self.choices and value not in self.choices:
            raise field_error(name, _l("must be one of %(choices)s",
                                       choices=", ".join(self.choices)))
        return value

def _from_text(kind: type, value: str) -> Any:
    if value == "":
        return None
    if kind is bool:
        lowered = value.lower()
        return True if lowered in {"1", "true", "yes", "是"} else (
            False if lowered in {"0", "false", "no", "否"} else value)
    if kind in (int, float):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if kind is int and number.is_integer() else number
    return value


def parse_fields(spec: dict[str, Field], props: dict[str, Any], *, partial: bool = False,
                 from_text: bool = False) -> dict[str, Any]:
    """Validate properties against a spec; unknown keys are ignored (forward compatibility)."""
    values = {}
    for name, rule in spec.items():
        if name not in props or props[name] is None:
            if rule.required and not partial:
                raise field_error(name, _l("is required"))
            continue
        parsed = rule.parse(name, props[name], from_text=from_text)
        if parsed is None and rule.required and not partial:
            raise field_error(name, _l("is required"))
        if parsed is not None:
            values[name] = parsed
    return values


CODE = Field(str, required=True, max_len=32, code=True)
COUNT = Field(int, minimum=0, maximum=10_000_000)

VILLAGE_FIELDS = {
    "code": CODE, "name_zh": Field(str, required=True, max_len=64),
    "name_pinyin": Field(str, max_len=128), "community_code": Field(str, max_len=32, code=True),
    "community_name": Field(str, max_len=64), "population": COUNT, "households": COUNT,
    "vulnerable": COUNT, "moved": COUNT, "contact_name": Field(str, max_len=64),
    "contact_phone": Field(str, max_len=32), "riverside": Field(bool),
    "elevation_m": Field(float, minimum=-500, maximum=9000),
}
SHELTER_FIELDS = {
    "code": CODE, "name_zh": Field(str, required=True, max_len=64),
    "name_pinyin": Field(str, max_len=128),
    "kind": Field(str, required=True, choices=tuple(ShelterKind)),
    "capacity_day": COUNT, "capacity_night": COUNT, "occupancy": COUNT,
    "status": Field(str, choices=tuple(ShelterStatus)),
    "contact_name": Field(str, max_len=64), "contact_phone": Field(str, max_len=32),
}
HAZARD_FIELDS = {
    "code": CODE, "kind": Field(str, required=True, choices=tuple(HazardKind)),
    "name_zh": Field(str, max_len=64), "households": COUNT, "people": COUNT,
}
ROAD_FIELDS = {
    "is_open": Field(bool), "closed_reason": Field(str, max_len=200),
    "road_class": Field(str, choices=tuple(RoadClass)),
    "structure": Field(str, choices=tuple(RoadStructure)),
    "speed_kmh": Field(float, minimum=1, maximum=200), "oneway": Field(bool),
}


# --- feature kinds ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureKind:
    """How one kind of map feature is stored, validated and shown."""

    layer: str
    entity: str
    model: type
    geometry: str
    geometry_types: tuple[str, ...]
    fields: dict[str, Field]
    properties: Callable[[Any], dict[str, Any]]


def _village_props(v) -> dict[str, Any]:
    return {"code": v.code, "name": v.name_zh, "name_pinyin": v.name_pinyin,
            "community": v.community_name, "community_code": v.community_code,
            "population": v.population, "households": v.households, "vulnerable": v.vulnerable,
            "moved": v.moved or 0,
            "contact_name": v.contact_name, "contact_phone": v.contact_phone,
            "riverside": v.riverside, "elevation_m": v.elevation_m,
            # Written onto the row by the warnings package (alerts), DESIGN §5.
            "warning_level": v.warning_level or "none"}


def _shelter_props(s) -> dict[str, Any]:
    capacity = max(s.capacity_day, s.capacity_night)
    return {"code": s.code, "name": s.name_zh, "name_pinyin": s.name_pinyin, "kind": s.kind,
            "capacity_day": s.capacity_day, "capacity_night": s.capacity_night,
            "occupancy": s.occupancy, "status": s.status,
            "fill": round(s.occupancy / capacity, 3) if capacity else None,
            "contact_name": s.contact_name, "contact_phone": s.contact_phone}


def _hazard_props(h) -> dict[str, Any]:
    return {"code": h.code, "kind": h.kind, "name": h.name_zh, "households": h.households,
            "people": h.people, "warning_level": h.warning_level or "none"}


def _road_props(r) -> dict[str, Any]:
    # source, target, length_m, speed_kmh, oneway and open are the evacuation plan's public
    # input (DESIGN §5): anyone can check a plan's routes from this layer.
    return {"code": r.code, "road_class": r.road_class, "length_m": round(r.length_m, 1),
            "speed_kmh": r.speed_kmh, "oneway": r.oneway, "structure": r.structure,
            "source": r.source, "target": r.target,
            "open": r.is_open, "closed_reason": r.closed_reason}


def _river_props(r) -> dict[str, Any]:
    return {"code": r.code, "name": r.name_zh}


POLYGONAL = ("Polygon", "MultiPolygon")
VILLAGES = FeatureKind("villages", "village", Village, "boundary", POLYGONAL, VILLAGE_FIELDS,
                       _village_props)
SHELTERS = FeatureKind("shelters", "shelter", Shelter, "location", ("Point",), SHELTER_FIELDS,
                       _shelter_props)
HAZARDS = FeatureKind("hazards", "hazard_zone", HazardZone, "geometry", POLYGONAL,
                      HAZARD_FIELDS, _hazard_props)
ROADS = FeatureKind("roads", "road_segment", RoadSegment, "geometry", ("LineString",),
                    ROAD_FIELDS, _road_props)
RIVERS = FeatureKind("rivers", "river", River, "geometry", ("LineString",), {}, _river_props)
KINDS = {k.layer: k for k in (VILLAGES, SHELTERS, HAZARDS, ROADS, RIVERS)}


# --- spatial filter and layers ----------------------------------------------------------------

def bbox_clause(session: Session, kind: FeatureKind,
                bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """A WHERE clause selecting features that intersect bbox, using the spatial index."""
    column = getattr(kind.model, kind.geometry)
    envelope = func.ST_MakeEnvelope(*bbox, SRID) if session.bind.dialect.name == "postgresql" \
        else func.BuildMbr(*bbox, SRID)
    exact = func.ST_Intersects(column, envelope)
    if session.bind.dialect.name == "postgresql":
        return exact
    table = kind.model.__tablename__
    # SpatiaLite ignores its R*Tree unless asked through SpatialIndex (NOTES.md).
    indexed = literal_column("ROWID").in_(text(
        "SELECT ROWID FROM SpatialIndex WHERE f_table_name = :t AND f_geometry_column = :c "
        "AND search_frame = BuildMbr(:x1, :y1, :x2, :y2, 4326)"
    ).bindparams(t=table, c=kind.geometry, x1=bbox[0], y1=bbox[1], x2=bbox[2], y2=bbox[3]))
    return and_(indexed, func.ST_Intersects(column, envelope) == 1)


def layer_features(session: Session, kind: FeatureKind,
                   bbox: tuple[float, float, float, float] | None = None,
                   limit: int = MAX_FEATURES,
                   where: ColumnElement[bool] | None = None) -> Iterator[str]:
    """Yield the layer's GeoJSON FeatureCollection as text chunks (geometry made by the DB)."""
    column = getattr(kind.model, kind.geometry)
    query = select(kind.model, func.ST_AsGeoJSON(column, 6)).order_by(kind.model.id)
    if where is not None:
        query = query.where(where)
    if bbox is not None:
        query = query.where(bbox_clause(session, kind, bbox))
    query = query.limit(limit + 1)
    yield '{"type":"FeatureCollection","features":['
    count, truncated = 0, "false"
    for row, geometry in session.execute(query):
        if count == limit:  # the query asked for one more row than the limit
            truncated = "true"
            break
        props = json.dumps(kind.properties(row), ensure_ascii=False, separators=(",", ":"))
        yield ("," if count else "") + (
            f'{{"type":"Feature","id":{json.dumps(row.code)},"geometry":{geometry},'
            f'"properties":{props}}}')
        count += 1
    yield f'],"numberReturned":{count},"truncated":{truncated}}}'


# What a person calls each kind of feature, for messages (FeatureKind.entity names it in the
# audit log).
ENTITY_LABELS = {"village": _l("village"), "shelter": _l("shelter"),
                 "hazard_zone": _l("hazard zone"), "road_segment": _l("road segment"),
                 "river": _l("river")}

# maps.geo is pure and speaks English to its callers; people get these, by GeometryError.code.
GEOMETRY_MESSAGES = {
    "empty": _l("The geometry is empty."),
    "not_polygon": _l("The geometry must be a polygon."),
    "out_of_range": _l("Longitude must be within -180..180 and latitude within -90..90, as "
                       "finite numbers."),
    "swapped_axes": _l("The coordinates look like lat,lon: send lon,lat (GeoJSON order)."),
    "too_small": _l("The polygon has (almost) no area."),
    "bad_bbox": _l("bbox must be minlon,minlat,maxlon,maxlat: four plain finite numbers, "
                   "longitudes within -180..180, latitudes within -90..90, each minimum not "
                   "above its maximum."),
}


def geometry_error(exc: geo.GeometryError) -> BadRequest:
    """A 400 for a geometry maps.geo refused (`geometry_<code>`), in the request's language."""
    return BadRequest(GEOMETRY_MESSAGES.get(exc.code, str(exc)), code=f"geometry_{exc.code}")


# --- one feature --------------------------------------------------------------------------------

def find(session: Session, kind: FeatureKind, code: str):
    """The feature with this code, or NotFound."""
    row = session.scalar(select(kind.model).where(kind.model.code == code))
    if row is None:
        raise NotFound(_l("There is no %(entity)s with the code %(code)s.",
                          entity=ENTITY_LABELS[kind.entity], code=code), code="not_found")
    return row


def feature(kind: FeatureKind, row) -> dict[str, Any]:
    """One row as a GeoJSON Feature (dict)."""
    return {"type": "Feature", "id": row.code,
            "geometry": mapping(to_shape(getattr(row, kind.geometry))),
            "properties": kind.properties(row)}


def _geometry(kind: FeatureKind, raw: Any):
    if not isinstance(raw, dict):
        raise BadRequest(_l("geometry must be a GeoJSON geometry object."),
                         code="bad_geometry")
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise BadRequest(_l("geometry is not valid GeoJSON (%(problem)s).", problem=str(exc)),
                         code="bad_geometry") from None
    # RFC 7946 §3.1.1 lets a position carry an altitude; the hub keeps lon/lat (DESIGN §4),
    # and SpatiaLite refuses an XYZ value in an XY column.
    geom = shapely.force_2d(geom)
    if geom.geom_type not in kind.geometry_types:
        raise BadRequest(_l("geometry must be a %(types)s.",
                            types=" / ".join(kind.geometry_types)), code="bad_geometry")
    try:
        geo.check_lonlat(geom)
        if kind.geometry_types == POLYGONAL:
            geom = geo.clean_polygon(geom)
            if isinstance(geom, Polygon):
                geom = MultiPolygon([geom])
    except geo.GeometryError as exc:
        raise geometry_error(exc) from None
    return geom


def _apply(kind: FeatureKind, row, values: dict[str, Any], geom) -> None:
    for name, value in values.items():
        setattr(row, name, value)
    if geom is not None:
        setattr(row, kind.geometry, from_shape(geom, srid=SRID))
        if kind is VILLAGES:
            row.centre = from_shape(geom.representative_point(), srid=SRID)


def snapshot(kind: FeatureKind, row) -> dict[str, Any]:
    """What the audit log records of a feature: its properties and geometry as WKT."""
    data = kind.properties(row)
    data["geometry"] = to_shape(getattr(row, kind.geometry)).wkt
    return data


def prepare(kind: FeatureKind, body: Any) -> tuple[dict[str, Any], Any]:
    """Validate a new feature (a GeoJSON Feature) without touching the database."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise BadRequest(_l("Send a GeoJSON Feature with properties."), code="bad_feature")
    return parse_fields(kind.fields, body["properties"]), _geometry(kind, body.get("geometry"))


def prepare_update(kind: FeatureKind, body: Any) -> tuple[dict[str, Any], Any]:
    """Validate a change (properties and/or geometry) without touching the database."""
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_feature")
    props = body.get("properties", body)
    if not isinstance(props, dict):
        raise BadRequest(_l("properties must be an object."), code="bad_feature")
    values = parse_fields(kind.fields, props, partial=True)
    values.pop("code", None)  # the code names the feature; it is not changed here
    return values, _geometry(kind, body["geometry"]) if "geometry" in body else None


def create(session: Session, kind: FeatureKind, body: Any, *, actor: str):
    """Create a feature from a GeoJSON Feature; audited."""
    values, geom = prepare(kind, body)
    if session.scalar(select(kind.model.id).where(kind.model.code == values["code"])):
        raise Conflict(_l("The %(entity)s %(code)s exists already.",
                          entity=ENTITY_LABELS[kind.entity], code=values["code"]),
                       code="exists")
    row = kind.model()
    _apply(kind, row, values, geom)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action=f"{kind.entity}.create", entity_type=kind.entity,
                 entity_id=row.code, after=snapshot(kind, row))
    return row


def update(session: Session, kind: FeatureKind, code: str, body: Any, *, actor: str):
    """Change properties and/or geometry of a feature; audited with before and after."""
    values, geom = prepare_update(kind, body)
    row = find(session, kind, code)
    before = snapshot(kind, row)
    _apply(kind, row, values, geom)
    session.flush()
    after = snapshot(kind, row)
    if after != before:
        audit.record(session, actor=actor, action=f"{kind.entity}.update",
                     entity_type=kind.entity, entity_id=code, before=before, after=after)
    return row


MAX_PEOPLE = 10_000_000


def _whole(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PEOPLE:
        raise field_error(name, _l("must be a whole number of people"))
    return value


def count_occupancy(session: Session, code: str, body: Any, *, actor: str) -> Shelter:
    """People in or out of a shelter: `{"delta": n}` (n ≠ 0, + in, − out) or `{"occupancy": n}`
    (a head count). One UPDATE, so two counters at one door never lose a count; audited."""
    if not isinstance(body, dict) or len(set(body) & {"delta", "occupancy"}) != 1:
        raise BadRequest(_l("Send either delta (people in, or out when negative) or occupancy "
                            "(a head count)."), code="bad_occupancy")
    shelter = find(session, SHELTERS, code)
    before = shelter.occupancy
    if "delta" in body:
        delta = _whole(body, "delta")
        if delta == 0:
            raise field_error("delta", _l("must not be 0"))
        value = Shelter.occupancy + delta
    else:
        count = _whole(body, "occupancy")
        if count < 0:
            raise field_error("occupancy", _l("must be 0 or more"))
        value = count
    changed = session.execute(
        Shelter.__table__.update().where(Shelter.id == shelter.id, value >= 0,
                                         value <= MAX_PEOPLE)
        .values(occupancy=value, updated_at=utcnow()).returning(Shelter.occupancy)).first()
    if changed is None:
        raise Conflict(_l("The shelter holds %(count)s people: fewer cannot leave than are "
                          "there. Count again and send the head count as occupancy.",
                          count=before), code="occupancy_below_zero")
    session.refresh(shelter)
    audit.record(session, actor=actor, action="shelter.occupancy", entity_type="shelter",
                 entity_id=code, before={"occupancy": before},
                 after={"occupancy": shelter.occupancy})
    return shelter


def delete(session: Session, kind: FeatureKind, code: str, *, actor: str) -> None:
    """Delete a feature; audited with what it was."""
    row = find(session, kind, code)
    before = snapshot(kind, row)
    session.delete(row)
    session.flush()
    audit.record(session, actor=actor, action=f"{kind.entity}.delete", entity_type=kind.entity,
                 entity_id=code, before=before)


def townships(session: Session) -> list[Township]:
    return list(session.scalars(select(Township).order_by(Township.code)))


# --- demo township --------------------------------------------------------------------------------

def _multi(geom) -> MultiPolygon:
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def _wkb(geom):
    return from_shape(geom, srid=SRID)


def load_demo_township(session: Session, demo, *, actor: str) -> bool:
    """Store one generated township (maps.demo) unless its code is there already; audited once."""
    if session.scalar(select(Township.id).where(Township.code == demo.code)):
        return False
    township = Township(code=demo.code, name_zh=demo.name_zh, name_pinyin=demo.name_pinyin,
                        boundary=_wkb(_multi(demo.boundary)), epsg=demo.epsg)
    session.add(township)
    session.flush()
    tid = township.id
    conn = session.connection()
    conn.execute(insert(Village), [dict(
        code=v.code, township_id=tid, name_zh=v.name_zh, name_pinyin=v.name_pinyin,
        community_code=v.community_code, community_name=v.community_name_zh,
        boundary=_wkb(_multi(v.boundary)), centre=_wkb(v.centre), population=v.population,
        households=v.households, vulnerable=v.vulnerable, contact_name=v.contact_name,
        contact_phone=v.contact_phone, riverside=v.riverside, elevation_m=v.elevation_m,
    ) for v in demo.villages])
    village_ids = dict(session.execute(
        select(Village.code, Village.id).where(Village.township_id == tid)).all())
    if demo.shelters:
        conn.execute(insert(Shelter), [dict(
            code=s.code, township_id=tid, village_id=village_ids.get(s.village_code),
            name_zh=s.name_zh, name_pinyin=s.name_pinyin, kind=s.kind, location=_wkb(s.location),
            capacity_day=s.capacity_day, capacity_night=s.capacity_night,
            contact_name=s.contact_name, contact_phone=s.contact_phone,
        ) for s in demo.shelters])
    if demo.roads:
        conn.execute(insert(RoadSegment), [dict(
            code=r.code, township_id=tid, geometry=_wkb(r.geometry), road_class=r.road_class,
            length_m=r.length_m, speed_kmh=r.speed_kmh, oneway=r.oneway, structure=r.structure,
            source=r.source, target=r.target,
        ) for r in demo.roads])
    if demo.hazards:
        conn.execute(insert(HazardZone), [dict(
            code=h.code, township_id=tid, village_id=village_ids.get(h.village_code),
            kind=h.kind, name_zh=h.name_zh, geometry=_wkb(_multi(h.geometry)),
            households=h.households, people=h.people,
        ) for h in demo.hazards])
    if demo.rivers:
        conn.execute(insert(River), [dict(
            code=r.code, township_id=tid, name_zh=r.name_zh, geometry=_wkb(r.geometry),
        ) for r in demo.rivers])
    audit.record(session, actor=actor, action="demo.load", entity_type="township",
                 entity_id=demo.code, after={
                     "villages": len(demo.villages), "shelters": len(demo.shelters),
                     "roads": len(demo.roads), "hazards": len(demo.hazards),
                     "rivers": len(demo.rivers)})
    return True
