"""Places, catalogue, items, stock and kit endpoints (DESIGN §5 "Depot (contract)"): thin adapters
over depot.service and depot.imports. Keepers and commanders write; dispatchers read; gateways
never. Each committed change is announced as a `depot` event (depot.live)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import lazy_gettext as _l

from depot import imports, labels, live, service
from depot.choices import READERS, WRITERS, Category, ItemStatus
from dispatch.core import auth
from dispatch.core.body import json_object
from dispatch.core.db import db
from dispatch.core.errors import parameter_error
from dispatch.core.tabular import decode_text

bp = Blueprint("depot", __name__)

# The longest text a list filter takes (`q`, codes, paths).
MAX_QUERY = 128


def today() -> date:
    """Today on the township's calendar (inspections fall due by the local date)."""
    zone = ZoneInfo(current_app.config["SETTINGS"].depot.timezone)
    return datetime.now(zone).date()


def _actor() -> str:
    return auth.current_principal().actor


def _text(name: str) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_QUERY:
        raise parameter_error(name, _l("must be at most %(max)d characters", max=MAX_QUERY))
    return value


def _choice(name: str, choices) -> str | None:
    value = _text(name)
    if value is not None and value not in tuple(choices):
        raise parameter_error(name, _l("must be one of %(choices)s",
                                       choices=", ".join(choices)))
    return value


def _whole(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 10 or not low <= int(raw) <= high:
        raise parameter_error(name, _l("must be a whole number from %(low)d to %(high)d",
                                       low=low, high=high))
    return int(raw)


def _boolean(name: str) -> bool | None:
    raw = _text(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise parameter_error(name, _l("must be true or false"))
    return raw == "true"


def _upload() -> str:
    upload = request.files.get("file")
    return decode_text(upload.read() if upload is not None else request.get_data())


# --- places ---------------------------------------------------------------------------------

@bp.get("/api/v1/depot/sites")
@auth.roles(*READERS)
def list_sites():
    """The depot sites."""
    return jsonify(items=service.sites(db.session))


@bp.post("/api/v1/depot/sites")
@auth.roles(*WRITERS)
def create_site():
    """Add a depot site (audited)."""
    s = db.session
    site = service.create_site(s, json_object(), actor=_actor())
    s.commit()
    live.send(live.change("site", "create", codes=[site["code"]], sites=[site["code"]]))
    return jsonify(site), 201


@bp.get("/api/v1/depot/bins")
@auth.roles(*READERS)
def list_bins():
    """The bins (`?site=`)."""
    return jsonify(items=service.bins(db.session, site=_text("site")))


@bp.post("/api/v1/depot/bins")
@auth.roles(*WRITERS)
def create_bin():
    """Add a bin `SITE/room/rack/shelf` (audited)."""
    s = db.session
    made = service.create_bin(s, json_object(), actor=_actor())
    s.commit()
    live.send(live.change("bin", "create", codes=[made["path"]], sites=[made["site"]]))
    return jsonify(made), 201


# --- the catalogue --------------------------------------------------------------------------

@bp.get("/api/v1/depot/types")
@auth.roles(*READERS)
def list_types():
    """The catalogue (`?category=`)."""
    return jsonify(items=service.types(db.session, category=_choice("category", Category)))


@bp.post("/api/v1/depot/types")
@auth.roles(*WRITERS)
def create_type():
    """Add a type to the catalogue (audited)."""
    s = db.session
    made = service.create_type(s, json_object(), actor=_actor())
    s.commit()
    live.send(live.change("type", "create", codes=[made["code"]], types=[made["code"]]))
    return jsonify(made), 201


# --- items ----------------------------------------------------------------------------------

@bp.get("/api/v1/depot/items")
@auth.roles(*READERS)
def list_items():
    """Items, a page at a time: `?q=` (part of the code, serial, name or bin), `?type=`,
    `?status=`, `?site=`, `?category=`, `?limit=`, `?offset=`."""
    wanted = service.ItemFilter(
        q=_text("q"), type=_text("type"), status=_choice("status", ItemStatus),
        site=_text("site"), category=_choice("category", Category),
        limit=_whole("limit", service.DEFAULT_LIMIT, 1, service.MAX_LIMIT),
        offset=_whole("offset", 0, 0, service.MAX_OFFSET))
    return jsonify(service.listing(db.session, wanted))


def _announce_items(s, items, action: str) -> None:
    live.send(live.change("item", action, codes=[i.code for i in items],
                          sites=service.site_codes_of_items(s, items),
                          types=service.type_codes(s, [i.type_id for i in items])))


@bp.post("/api/v1/depot/items")
@auth.roles(*WRITERS)
def create_item():
    """Register a serialized item (audited)."""
    s = db.session
    item = service.create_item(s, json_object(), actor=_actor(), today=today())
    s.commit()
    _announce_items(s, [item], "create")
    return jsonify(service.describe_item(s, item)), 201


@bp.get("/api/v1/depot/items/<code>")
@auth.roles(*READERS)
def get_item(code: str):
    """One item (any case) with its `history`, newest first."""
    s = db.session
    item = service.find_item(s, code)
    return jsonify({**service.describe_item(s, item), "history": service.history(s, item)})


@bp.patch("/api/v1/depot/items/<code>")
@auth.roles(*WRITERS)
def update_item(code: str):
    """Change an item's serial, condition, bin, home site, dates, or write it off (audited)."""
    s = db.session
    item = service.update_item(s, code, json_object(), actor=_actor())
    s.commit()
    _announce_items(s, [item], "update")
    return jsonify(service.describe_item(s, item))


@bp.post("/api/v1/depot/items/import")
@auth.roles(*WRITERS)
def import_items():
    """Items from CSV (columns: the item's fields): all rows or none, each bad row named."""
    s = db.session
    items = imports.import_items(s, _upload(), actor=_actor(), today=today())
    s.commit()
    _announce_items(s, items, "import")
    return jsonify(created=len(items))


# --- stock ----------------------------------------------------------------------------------

@bp.get("/api/v1/depot/stock")
@auth.roles(*READERS)
def list_stock():
    """Stock per type and bin: `?type=&bin=&site=&category=&below_min=`."""
    wanted = service.StockFilter(type=_text("type"), bin=_text("bin"), site=_text("site"),
                                 category=_choice("category", Category),
                                 below_min=_boolean("below_min"))
    return jsonify(items=service.stock(db.session, wanted))


@bp.get("/api/v1/depot/stock/moves")
@auth.roles(*READERS)
def list_moves():
    """The stock ledger, newest first: `?type=&bin=&limit=`."""
    return jsonify(items=service.moves(
        db.session, type_code=_text("type"), bin_path=_text("bin"),
        limit=_whole("limit", service.DEFAULT_LIMIT, 1, service.MAX_LIMIT)))


@bp.post("/api/v1/depot/stock/moves")
@auth.roles(*WRITERS)
def create_move():
    """A receipt, issue, return, adjustment or write-off (audited): 409 `insufficient_stock`
    when the bin holds too little."""
    s = db.session
    move = service.read_move(s, json_object())
    answer = service.move_stock(s, move, actor=_actor())
    site = move.bin.path.split("/")[0]
    s.commit()
    live.send(live.change("stock", move.move, codes=[f"{move.kind.code}@{move.bin.path}"],
                          sites=[site], types=[move.kind.code]))
    return jsonify(answer), 201


@bp.post("/api/v1/depot/stock/import")
@auth.roles(*WRITERS)
def import_stock():
    """Stock received from CSV (`type`, `bin`, `qty`, `reason`): all rows or none."""
    s = db.session
    lines = imports.import_stock(s, _upload(), actor=_actor())
    s.commit()
    live.send(live.change("stock", "import", codes=[f"{t}@{b}" for t, b in lines],
                          sites=[b.split("/")[0] for _t, b in lines],
                          types=[t for t, _b in lines]))
    return jsonify(moves=len(lines))


# --- kits -----------------------------------------------------------------------------------

@bp.get("/api/v1/depot/kits")
@auth.roles(*READERS)
def list_kits():
    """The kit templates."""
    return jsonify(items=service.kits(db.session))


@bp.post("/api/v1/depot/kits")
@auth.roles(*WRITERS)
def create_kit():
    """Add a kit template (audited)."""
    s = db.session
    kit = service.create_kit(s, json_object(), actor=_actor())
    s.commit()
    live.send(live.change("kit", "create", codes=[kit["code"]],
                          types=[line["type"] for line in kit["lines"]]))
    return jsonify(kit), 201


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    labels.init_app(app)  # printable QR labels: their own blueprint, templates and static
