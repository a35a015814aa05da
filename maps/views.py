"""Map endpoints: GeoJSON layers, CRUD for villages, shelters and hazard zones, road state,
imports, and the live map page. Thin adapters over maps.service."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.body import json_body
from dispatch.core.choices import EDITORS, PERSON_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import BadRequest, NotFound
from dispatch.core.events import FeatureChanged, WarningChanged, feature_changed
from dispatch.core.realtime import notify
from dispatch.core.tabular import decode_text
from dispatch.core.web import static_url
from maps import geo, imports, service
from maps.choices import COLOURS, LABELS
from maps.service import GEOMETRY_MESSAGES, FeatureKind

bp = Blueprint("maps", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/maps")

LAYER_NAMES = ("villages", "shelters", "sensors", "hazards", "roads", "rivers", "members",
               "depots")
# Layers other packages provide (telemetry registers `sensors`, positions `members`, the office
# `depots` from the depot):
# name -> (session, bbox) -> chunks.
LayerProvider = Callable[..., Iterator[str]]


def register_layer(app: Flask, name: str, provider: LayerProvider) -> None:
    """Let a package downstream of maps serve one of the layers (DESIGN §2: no upward import)."""
    app.extensions.setdefault("rescuehub.layers", {})[name] = provider


def register_map_extension(app: Flask, name: str, *, script: tuple[str, str],
                           words: Callable[[], dict]) -> None:
    """Let a package downstream of maps add a layer to the live map page (DESIGN §2: no upward
    import): `script` (a static endpoint and file) is an ES module whose `attach(api)` adds it
    (maps/static/map.js), and `words()` its labels in the page's language."""
    app.extensions.setdefault("rescuehub.map_extensions", {})[name] = (script, words)


def _map_extensions() -> list[dict]:
    found = current_app.extensions.get("rescuehub.map_extensions", {})
    return [{"name": name, "script": static_url(*script), "words": words()}
            for name, (script, words) in found.items()]


def _bbox():
    raw = request.args.get("bbox")
    if raw is None:
        return None
    try:
        return geo.bbox_param(raw)
    except geo.GeometryError:
        raise BadRequest(GEOMETRY_MESSAGES["bad_bbox"], code="bad_bbox") from None


def _empty_layer(_session, _bbox) -> Iterator[str]:
    yield '{"type":"FeatureCollection","features":[],"numberReturned":0,"truncated":false}'


@bp.get("/api/v1/layers/<name>")
@auth.roles(*PERSON_ROLES)
def layer(name: str):
    """A map layer as a GeoJSON FeatureCollection (`?bbox=minlon,minlat,maxlon,maxlat`)."""
    if name not in LAYER_NAMES:
        raise NotFound(_("There is no layer %(name)s; the layers are %(layers)s.", name=name,
                         layers=", ".join(LAYER_NAMES)), code="not_found")
    bbox = _bbox()
    session = db.session
    provided = current_app.extensions.get("rescuehub.layers", {}).get(name)
    if provided is not None:
        chunks = provided(session, bbox)
    elif name in service.KINDS:
        chunks = service.layer_features(session, service.KINDS[name], bbox)
    else:
        chunks = _empty_layer(session, bbox)
    # Built in full before answering: the session belongs to this request.
    body = "".join(chunks)
    return Response(body, mimetype="application/geo+json")


@bp.get("/api/v1/townships")
@auth.roles(*PERSON_ROLES)
def townships():
    """The townships with their metric CRS and bounds."""
    from geoalchemy2.shape import to_shape

    items = []
    for t in service.townships(db.session):
        items.append({"code": t.code, "name": t.name_zh, "name_pinyin": t.name_pinyin,
                      "epsg": t.epsg, "bounds": list(to_shape(t.boundary).bounds)})
    return jsonify(items=items)


@bp.get("/api/v1/map/legend")
@auth.roles(*PERSON_ROLES)
def legend():
    """Labels and colours for the map's legend, in the page's language."""
    return jsonify({str(k): {"label": str(LABELS[k]), "colour": COLOURS.get(k)} for k in LABELS})


def _changed(kind: FeatureKind, action: str, code: str, row=None) -> None:
    """After the commit: the `layer` event for open maps, `feature_changed` for other packages."""
    payload = {"layer": kind.layer, "action": action, "code": code}
    if row is not None:
        payload["feature"] = service.feature(kind, row)
    notify("layer", payload)
    feature_changed.send(FeatureChanged(kind.layer, action, code))


def _crud_views(kind: FeatureKind) -> None:
    """Register list/get/create/update/delete (and import) routes for one feature kind."""
    base = f"/api/v1/{kind.layer}"

    def list_items():
        rows = db.session.scalars(select(kind.model).order_by(kind.model.code)).all()
        return jsonify(items=[kind.properties(r) for r in rows])

    def get_item(code: str):
        return jsonify(service.feature(kind, service.find(db.session, kind, code)))

    def create_item():
        s = db.session
        row = service.create(s, kind, json_body(),
                             actor=auth.current_principal().actor)
        s.commit()
        _changed(kind, "create", row.code, row)
        return jsonify(service.feature(kind, row)), 201

    def update_item(code: str):
        s = db.session
        row = service.update(s, kind, code, json_body(),
                             actor=auth.current_principal().actor)
        s.commit()
        _changed(kind, "update", code, row)
        return jsonify(service.feature(kind, row))

    def delete_item(code: str):
        s = db.session
        service.delete(s, kind, code, actor=auth.current_principal().actor)
        s.commit()
        _changed(kind, "delete", code)
        return "", 204

    readers, name = auth.roles(*PERSON_ROLES), kind.layer
    list_items.__doc__ = f"List {name} (properties only)."
    get_item.__doc__ = f"One of the {name} as a GeoJSON Feature."
    create_item.__doc__ = f"Create one of the {name} from a GeoJSON Feature (audited)."
    update_item.__doc__ = f"Change properties and/or geometry of one of the {name} (audited)."
    delete_item.__doc__ = f"Delete one of the {name} (audited)."
    bp.add_url_rule(base, f"list_{name}", readers(list_items), methods=["GET"])
    bp.add_url_rule(f"{base}/<code>", f"get_{name}", readers(get_item), methods=["GET"])
    bp.add_url_rule(base, f"create_{name}", auth.roles(*EDITORS)(create_item),
                    methods=["POST"])
    bp.add_url_rule(f"{base}/<code>", f"update_{name}", auth.roles(*EDITORS)(update_item),
                    methods=["PATCH"])
    bp.add_url_rule(f"{base}/<code>", f"delete_{name}", auth.roles(*EDITORS)(delete_item),
                    methods=["DELETE"])


for _kind in (service.VILLAGES, service.SHELTERS, service.HAZARDS):
    _crud_views(_kind)


@bp.patch("/api/v1/roads/<code>")
@auth.roles(*EDITORS)
def update_road(code: str):
    """Open or close a road segment (`{"is_open": false, "closed_reason": "…"}`; audited)."""
    s = db.session
    row = service.update(s, service.ROADS, code, json_body(),
                         actor=auth.current_principal().actor)
    s.commit()
    _changed(service.ROADS, "update", code, row)
    return jsonify(service.feature(service.ROADS, row))


@bp.post("/api/v1/shelters/<code>/occupancy")
@auth.roles(*EDITORS, Role.KEEPER)
def count_shelter_occupancy(code: str):
    """People in or out (`{"delta": n}`) or a head count (`{"occupancy": n}`); audited, live."""
    s = db.session
    row = service.count_occupancy(s, code, json_body(), actor=auth.current_principal().actor)
    s.commit()
    _changed(service.SHELTERS, "update", code, row)
    return jsonify(service.feature(service.SHELTERS, row))


def _import(kind: FeatureKind):
    upload = request.files.get("file")
    raw = upload.read() if upload is not None else request.get_data()
    text = decode_text(raw)
    name = (upload.filename or "") if upload is not None else ""
    fmt = "csv" if (request.mimetype == "text/csv" or name.lower().endswith(".csv")) \
        else "geojson"
    s = db.session
    counts = imports.import_features(s, kind, text, fmt=fmt,
                                     actor=auth.current_principal().actor,
                                     upsert=request.args.get("mode") == "upsert")
    s.commit()
    notify("layer", {"layer": kind.layer, "action": "import", **counts})
    feature_changed.send(FeatureChanged(kind.layer, "import", None))
    return jsonify(counts)


@bp.post("/api/v1/villages/import")
@auth.roles(*EDITORS)
def import_villages():
    """Import villages from GeoJSON or CSV (columns per field, boundary as `wkt`); all or none."""
    return _import(service.VILLAGES)


@bp.post("/api/v1/shelters/import")
@auth.roles(*EDITORS)
def import_shelters():
    """Import shelters from GeoJSON or CSV (columns per field, `lon`, `lat`); all or none."""
    return _import(service.SHELTERS)


@bp.get("/map")
@auth.signed_in
def map_page():
    """The live map of the township."""
    settings = current_app.config["SETTINGS"]
    return render_template("map.html", tile_url=settings.map.tile_url,
                           tile_attribution=settings.map.tile_attribution,
                           extensions=_map_extensions())


def on_warning_changed(payload: WarningChanged) -> None:
    """`warning_changed` receiver: open maps get the villages and zones whose warning level
    moved as `layer` updates (their rows were committed before the signal)."""
    from sqlalchemy.orm import Session

    changed = ((service.VILLAGES, payload.villages), (service.HAZARDS, payload.hazards))
    with Session(db.engine) as s:
        for kind, codes in changed:
            if not codes:
                continue
            for row in s.scalars(select(kind.model).where(kind.model.code.in_(codes))):
                notify("layer", {"layer": kind.layer, "action": "update", "code": row.code,
                                 "feature": service.feature(kind, row)})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
