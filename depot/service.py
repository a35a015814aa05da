"""The depot's places, catalogue, serialized items, bulk stock and kits as services (DESIGN §5
"Depot (contract)"): plain functions taking a session, every change audited (before and after) in
the caller's transaction. Check-outs, check-ins, inspections and repairs are depot.checkouts'.

Codes are case-insensitive (depot.models): what is typed or scanned is read in upper case.
A stock move is one ledger row and one conditional UPDATE of the bin's quantity, so a bin never
goes below zero even with two keepers issuing from it at once (the UPDATE's WHERE is the guard,
the table's CHECK the backstop).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import and_, column, func, insert, literal, or_, select, table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from depot import fields
from depot.choices import MOVE_SIGN, NEEDS_REASON, Category, ItemStatus, MoveKind
from depot.models import (
    RECIPIENT_KINDS,
    Bin,
    Checkout,
    CheckoutLine,
    Inspection,
    Item,
    ItemType,
    Kit,
    Repair,
    Site,
    Stock,
    StockMove,
)
from dispatch.core import audit
from dispatch.core.db import utcnow
from dispatch.core.errors import BadRequest, Conflict, NotFound, field_error, parameter_error
from dispatch.core.models import AuditEntry

SRID = 4326
# The townships table (maps.models): a site may name its township by code. Read as a plain
# table, since the depot does not import maps (DESIGN §2).
_TOWNSHIPS = table("townships", column("id"), column("code"))
# Item lists come in pages of at most this many.
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_OFFSET = 2**31 - 1
# An item's history lists at most this many entries, newest first.
HISTORY_MAX = 500
# A kit holds at most this many lines, each of at most this many pieces.
KIT_LINES = 50
KIT_COUNT = 1000
CHECKLIST_MAX = 50
SPECS_MAX = 30
INSPECTION_DAYS = 3660
# Statuses an item may be registered with (out: only a check-out gives an item out).
NEW_STATUSES = (ItemStatus.IN_STOCK, ItemStatus.REPAIR, ItemStatus.UNSERVICEABLE,
                ItemStatus.LOST, ItemStatus.RETIRED)
# Taken out of service: a repair record is opened with the item and closes it (depot.checkouts).
NEEDS_REPAIR = (ItemStatus.REPAIR, ItemStatus.UNSERVICEABLE)


def _not_found(what: Any, code: str) -> NotFound:
    return NotFound(what, code="not_found", details={"code": code})


def _lookup_code(value: str) -> str | None:
    """A code from an address or a query, upper case; None when it cannot be a code."""
    try:
        return fields.code("code", value)
    except BadRequest:
        return None


# --- places ---------------------------------------------------------------------------------

def site_json(site: Site, township: str | None) -> dict[str, Any]:
    """A site as the API writes it."""
    point = to_shape(site.location) if site.location is not None else None
    return {"code": site.code, "name": site.name, "lon": point.x if point else None,
            "lat": point.y if point else None, "keeper": site.keeper, "phone": site.phone,
            "township": township}


def sites(session: Session) -> list[dict[str, Any]]:
    """Every site, by code."""
    townships = dict(session.execute(select(_TOWNSHIPS.c.id, _TOWNSHIPS.c.code)).all())
    return [site_json(s, townships.get(s.township_id))
            for s in session.scalars(select(Site).order_by(Site.code))]


def find_site(session: Session, code: str) -> Site:
    """A site by code, any case (404 otherwise)."""
    wanted = _lookup_code(code)
    site = session.scalar(select(Site).where(Site.code == wanted)) if wanted else None
    if site is None:
        raise _not_found(_l("There is no depot site with the code %(code)s.", code=code), code)
    return site


def _township_id(session: Session, value: Any) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    given = fields.text("township", value, fields.CODE_MAX, required=True)
    found = session.execute(select(_TOWNSHIPS.c.id, _TOWNSHIPS.c.code).where(
        func.upper(_TOWNSHIPS.c.code) == given.upper())).first()
    if found is None:
        raise field_error("township", _l("names no township (%(code)s)", code=given))
    return found[0], found[1]


def create_site(session: Session, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """A new depot site (`code`, `name`, `lon`, `lat`, `keeper`, `phone`, `township`?); audited.
    409 `exists` for a code taken."""
    code = fields.code("code", body.get("code"))
    name = fields.text("name", body.get("name"), fields.NAME_MAX, required=True)
    where = fields.lon_lat(body)
    keeper = fields.optional_text("keeper", body.get("keeper"), fields.NAME_MAX)
    phone = fields.optional_text("phone", body.get("phone"), fields.PHONE_MAX)
    township_id, township = _township_id(session, body.get("township"))
    if session.scalar(select(Site.id).where(Site.code == code)):
        raise Conflict(_l("Depot site %(code)s exists already.", code=code), code="exists",
                       details={"field": "code"})
    site = Site(code=code, name=name, keeper=keeper, phone=phone, township_id=township_id,
                location=from_shape(Point(*where), srid=SRID) if where else None)
    session.add(site)
    _flush_or_conflict(session)
    after = site_json(site, township)
    audit.record(session, actor=actor, action="depot_site.create", entity_type="depot_site",
                 entity_id=code, after=after)
    return after


def _flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:  # the same code taken at the same moment by another request
        raise Conflict(_l("That code was taken at the same moment; reload and try again."),
                       code="exists") from None


def bin_json(row: Bin, site_code: str) -> dict[str, Any]:
    """A bin as the API writes it."""
    return {"path": row.path, "site": site_code}


def bins(session: Session, *, site: str | None = None) -> list[dict[str, Any]]:
    """Every bin (of one site), by path."""
    query = select(Bin, Site.code).join(Site, Site.id == Bin.site_id).order_by(Bin.path)
    if site is not None:
        query = query.where(Site.id == find_site(session, site).id)
    return [bin_json(b, s) for b, s in session.execute(query).all()]


@dataclass(frozen=True)
class Known:
    """Types, bins and sites by code, loaded once for the many rows of an import."""

    types: dict[str, ItemType]
    bins: dict[str, Bin]
    sites: dict[str, int]

    @classmethod
    def load(cls, session: Session) -> Known:
        return cls(types={t.code: t for t in session.scalars(select(ItemType))},
                   bins={b.path: b for b in session.scalars(select(Bin))},
                   sites=dict(session.execute(select(Site.code, Site.id)).all()))


def find_bin(session: Session, field: str, value: Any, known: Known | None = None) -> Bin:
    """The bin a body's field names by path, any case (400 naming the field otherwise)."""
    wanted = fields.path(field, value)
    found = known.bins.get(wanted) if known else session.scalar(
        select(Bin).where(Bin.path == wanted))
    if found is None:
        raise field_error(field, _l("names no bin (%(path)s)", path=wanted))
    return found


def create_bin(session: Session, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """A new bin `SITE/room/rack/shelf` of an existing site; audited. 409 `exists`."""
    wanted = fields.path("path", body.get("path"))
    site_code = wanted.split("/")[0]
    site = session.scalar(select(Site).where(Site.code == site_code))
    if site is None:
        raise field_error("path", _l("must start with a site's code: there is no depot site "
                                     "%(code)s", code=site_code))
    if session.scalar(select(Bin.id).where(Bin.path == wanted)):
        raise Conflict(_l("Bin %(path)s exists already.", path=wanted), code="exists",
                       details={"field": "path"})
    row = Bin(path=wanted, site_id=site.id)
    session.add(row)
    _flush_or_conflict(session)
    after = bin_json(row, site.code)
    audit.record(session, actor=actor, action="depot_bin.create", entity_type="depot_bin",
                 entity_id=wanted, after=after)
    return after


# --- the catalogue --------------------------------------------------------------------------

def type_brief(kind: ItemType) -> dict[str, Any]:
    """The few fields of a type that items and stock lines carry."""
    return {"code": kind.code, "name_zh": kind.name_zh, "name_en": kind.name_en,
            "category": kind.category}


def type_json(kind: ItemType) -> dict[str, Any]:
    """A catalogue entry as the API writes it."""
    return {**type_brief(kind), "serialized": kind.serialized, "unit": kind.unit,
            "whole_units": kind.whole_units, "specs": kind.specs or {},
            "inspection": {"every_days": kind.inspection_every_days,
                           "checklist": list(kind.checklist or [])},
            "expiry_watch": kind.expiry_watch,
            "reorder_min": fields.amount_json(kind.reorder_min)}


def types(session: Session, *, category: str | None = None) -> list[dict[str, Any]]:
    """The catalogue (of one category), by code."""
    query = select(ItemType).order_by(ItemType.code)
    if category is not None:
        query = query.where(ItemType.category == category)
    return [type_json(t) for t in session.scalars(query)]


def find_type(session: Session, field: str, value: Any, known: Known | None = None) -> ItemType:
    """The type a body's field names by code, any case (400 naming the field otherwise)."""
    wanted = fields.code(field, value)
    found = known.types.get(wanted) if known else session.scalar(
        select(ItemType).where(ItemType.code == wanted))
    if found is None:
        raise field_error(field, _l("names no type of the catalogue (%(code)s)", code=wanted))
    return found


def _inspection(value: Any) -> tuple[int | None, list[str]]:
    if value is None:
        return None, []
    if not isinstance(value, Mapping):
        raise field_error("inspection", _l("must be an object {\"every_days\", \"checklist\"}"))
    every = value.get("every_days")
    every = None if every is None else fields.integer("inspection.every_days", every, 1,
                                                      INSPECTION_DAYS)
    checklist = value.get("checklist")
    if checklist is None:
        return every, []
    if not isinstance(checklist, list) or len(checklist) > CHECKLIST_MAX:
        raise field_error("inspection.checklist", _l("must be a list of at most %(max)d checks",
                                                     max=CHECKLIST_MAX))
    steps = [fields.text("inspection.checklist", step, fields.REASON_MAX, required=True)
             for step in checklist]
    if len(set(steps)) != len(steps):
        raise field_error("inspection.checklist", _l("lists a check twice"))
    return every, steps


def _specs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > SPECS_MAX:
        raise field_error("specs", _l("must be an object of at most %(max)d entries",
                                      max=SPECS_MAX))
    specs: dict[str, Any] = {}
    for key, item in value.items():
        fields.text("specs", key, fields.NAME_MAX, required=True)
        if isinstance(item, str):
            item = fields.text(f"specs.{key}", item, fields.REASON_MAX)
        elif not (item is None or isinstance(item, bool | int)
                  or isinstance(item, float) and item == item and abs(item) != float("inf")):
            raise field_error(f"specs.{key}", _l("must be text, a number, true or false"))
        specs[key] = item
    return specs


def _flag(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    return default if value is None else fields.flag(name, value)


def create_type(session: Session, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """A new catalogue entry (DESIGN §5 body, plus `whole_units` and `specs`); audited."""
    code = fields.code("code", body.get("code"))
    serialized = _flag(body, "serialized", True)
    whole = _flag(body, "whole_units", True)
    every, checklist = _inspection(body.get("inspection"))
    reorder = body.get("reorder_min")
    reorder_min = Decimal(0) if reorder is None else fields.number("reorder_min", reorder)
    if reorder_min < 0 or (whole and reorder_min != reorder_min.to_integral_value()):
        raise field_error("reorder_min", _l("must be zero or more (whole for a type counted in "
                                            "whole units)"))
    if serialized and not whole:
        raise field_error("whole_units", _l("must be true for a serialized type: each item is "
                                            "one piece"))
    kind = ItemType(
        code=code, name_zh=fields.text("name_zh", body.get("name_zh"), fields.NAME_MAX,
                                       required=True),
        name_en=fields.optional_text("name_en", body.get("name_en"), fields.NAME_EN_MAX),
        category=fields.choice("category", body.get("category"), tuple(Category)),
        serialized=serialized,
        unit=fields.text("unit", body.get("unit") or "pcs", fields.UNIT_MAX, required=True),
        whole_units=whole, specs=_specs(body.get("specs")), inspection_every_days=every,
        checklist=checklist, expiry_watch=_flag(body, "expiry_watch", False),
        reorder_min=reorder_min)
    if session.scalar(select(ItemType.id).where(ItemType.code == code)):
        raise Conflict(_l("Type %(code)s is in the catalogue already.", code=code),
                       code="exists", details={"field": "code"})
    session.add(kind)
    _flush_or_conflict(session)
    after = type_json(kind)
    audit.record(session, actor=actor, action="depot_type.create", entity_type="depot_type",
                 entity_id=code, after=after)
    return after


# --- serialized items -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Context:
    """What describing many items needs, loaded once: types, bins, sites, open check-outs."""

    types: dict[int, ItemType]
    bins: dict[int, str]
    sites: dict[int, str]
    checkouts: dict[int, Checkout]


def _context(session: Session, items: Sequence[Item]) -> _Context:
    type_ids = {i.type_id for i in items}
    bin_ids = {i.bin_id for i in items if i.bin_id}
    site_ids = {i.home_site_id for i in items if i.home_site_id}
    checkout_ids = {i.checkout_id for i in items if i.checkout_id}
    return _Context(
        types={t.id: t for t in session.scalars(select(ItemType).where(
            ItemType.id.in_(type_ids)))} if type_ids else {},
        bins=dict(session.execute(select(Bin.id, Bin.path).where(Bin.id.in_(bin_ids))).all())
        if bin_ids else {},
        sites=dict(session.execute(select(Site.id, Site.code).where(
            Site.id.in_(site_ids))).all()) if site_ids else {},
        checkouts={c.id: c for c in session.scalars(select(Checkout).where(
            Checkout.id.in_(checkout_ids)))} if checkout_ids else {})


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _holder(checkout: Checkout | None) -> dict[str, Any] | None:
    """Who has an item that is out, since when and until when (its open check-out)."""
    if checkout is None:
        return None
    return {"to": {"kind": checkout.to_kind, "code": checkout.to_code},
            "since": _iso(checkout.at), "due": _iso(checkout.due), "checkout": checkout.id}


def _item_json(item: Item, ctx: _Context) -> dict[str, Any]:
    return {"code": item.code, "type": type_brief(ctx.types[item.type_id]),
            "serial": item.serial, "status": item.status, "condition": item.condition,
            "bin": ctx.bins.get(item.bin_id) if item.bin_id else None,
            "home_site": ctx.sites.get(item.home_site_id) if item.home_site_id else None,
            "purchased": _iso(item.purchased), "expires": _iso(item.expires),
            "inspection_due": _iso(item.inspection_due),
            "holder": _holder(ctx.checkouts.get(item.checkout_id) if item.checkout_id
                              else None)}


def describe_items(session: Session, items: Sequence[Item]) -> list[dict[str, Any]]:
    """Items as the API writes them (a few queries for any number of items)."""
    ctx = _context(session, items)
    return [_item_json(i, ctx) for i in items]


def describe_item(session: Session, item: Item) -> dict[str, Any]:
    """One item as the API writes it (without its history): one query, where a list takes a
    few (a scan runs this for every code)."""
    kind, path, site, checkout = session.execute(
        select(ItemType, Bin.path, Site.code, Checkout).select_from(Item)
        .join(ItemType, ItemType.id == Item.type_id)
        .outerjoin(Bin, Bin.id == Item.bin_id)
        .outerjoin(Site, Site.id == Item.home_site_id)
        .outerjoin(Checkout, Checkout.id == Item.checkout_id)
        .where(Item.id == item.id)).one()
    return _item_json(item, _Context(
        types={kind.id: kind}, bins={item.bin_id: path} if item.bin_id else {},
        sites={item.home_site_id: site} if item.home_site_id else {},
        checkouts={checkout.id: checkout} if checkout is not None else {}))


def find_item(session: Session, code: str) -> Item:
    """An item by code, any case (404 otherwise)."""
    wanted = _lookup_code(code)
    item = session.scalar(select(Item).where(Item.code == wanted)) if wanted else None
    if item is None:
        raise _not_found(_l("There is no item with the code %(code)s.", code=code), code)
    return item


@dataclass(frozen=True)
class ItemFilter:
    """What GET /api/v1/depot/items narrows the list to (None: no filter)."""

    q: str | None = None
    type: str | None = None
    status: str | None = None
    site: str | None = None
    category: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _filtered(session: Session, wanted: ItemFilter):
    query = select(Item).join(ItemType, ItemType.id == Item.type_id).outerjoin(
        Bin, Bin.id == Item.bin_id)
    if wanted.type:
        code = _lookup_code(wanted.type)
        kind = session.scalar(select(ItemType.id).where(ItemType.code == code)) if code else None
        if kind is None:
            raise parameter_error("type", _l("names no type of the catalogue (%(code)s)",
                                             code=wanted.type))
        query = query.where(Item.type_id == kind)
    if wanted.site:
        site = find_site(session, wanted.site).id
        query = query.where(or_(Bin.site_id == site,
                                and_(Item.bin_id.is_(None), Item.home_site_id == site)))
    if wanted.status:
        query = query.where(Item.status == wanted.status)
    if wanted.category:
        query = query.where(ItemType.category == wanted.category)
    if wanted.q:
        text = wanted.q.strip()
        upper = text.upper()
        query = query.where(or_(Item.code.contains(upper, autoescape=True),
                                func.upper(Item.serial).contains(upper, autoescape=True),
                                ItemType.name_zh.contains(text, autoescape=True),
                                func.upper(ItemType.name_en).contains(upper, autoescape=True),
                                Bin.path.contains(upper, autoescape=True)))
    return query


def listing(session: Session, wanted: ItemFilter) -> dict[str, Any]:
    """A page of items, by code, narrowed by `wanted`, with how many match in all (counted by
    a second query only when the first page does not hold them all: a search scans every item,
    and a typed search mostly finds a few)."""
    query = _filtered(session, wanted)
    page = session.scalars(query.order_by(Item.code).limit(wanted.limit)
                           .offset(wanted.offset)).all()
    if wanted.offset == 0 and len(page) < wanted.limit:
        total = len(page)
    else:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
    return {"items": describe_items(session, page), "total": total, "limit": wanted.limit,
            "offset": wanted.offset}


def _place(session: Session, body: Mapping[str, Any], *, bin_id: int | None,
           site_id: int | None, known: Known | None = None) -> tuple[int | None, int | None]:
    """The bin and home site a body gives (each kept when absent); the home site defaults to
    the bin's site."""
    if "bin" in body:
        found = None if body["bin"] is None else find_bin(session, "bin", body["bin"], known)
        bin_id = found.id if found else None
        if "home_site" not in body and found is not None:
            site_id = found.site_id
    if "home_site" in body:
        site_id = None if body["home_site"] is None else _site_field(session, body["home_site"],
                                                                     known)
    return bin_id, site_id


def _site_field(session: Session, value: Any, known: Known | None) -> int:
    wanted = fields.code("home_site", value)
    found = known.sites.get(wanted) if known else session.scalar(
        select(Site.id).where(Site.code == wanted))
    if found is None:
        raise field_error("home_site", _l("names no depot site (%(code)s)", code=wanted))
    return found


def _dates(body: Mapping[str, Any], item: Item) -> None:
    for name in ("purchased", "expires", "inspection_due"):
        if name in body:
            setattr(item, name, fields.day(name, body[name]))


def new_item(session: Session, body: Mapping[str, Any], *, today: date,
             known: Known | None = None) -> Item:
    """An item read from a body, checked, not yet added (400 naming the first bad field)."""
    code = fields.code("code", body.get("code"))
    kind = find_type(session, "type", body.get("type"), known)
    if not kind.serialized:
        raise field_error("type", _l("%(code)s is counted as stock, not as single items: use "
                                     "stock moves", code=kind.code))
    status = body.get("status")
    status = ItemStatus.IN_STOCK.value if status is None else fields.choice(
        "status", status, tuple(NEW_STATUSES))
    item = Item(code=code, type_id=kind.id, status=status,
                serial=fields.optional_text("serial", body.get("serial"), fields.SERIAL_MAX),
                condition=fields.optional_text("condition", body.get("condition"),
                                               fields.CONDITION_MAX))
    item.bin_id, item.home_site_id = _place(session, body, bin_id=None, site_id=None,
                                            known=known)
    _dates(body, item)
    if "inspection_due" not in body and kind.inspection_every_days:
        # Registered now: its first inspection falls one interval from today.
        item.inspection_due = today + timedelta(days=kind.inspection_every_days)
    return item


def _repair(item: Item, *, actor: str, reason: str) -> Repair:
    return Repair(item_id=item.id, opened_by=actor, reason=reason[:500])


def add_items(session: Session, items: Iterable[Item], *, actor: str) -> list[Item]:
    """Store new items (409 `exists` for a code taken); each audited; an item registered in
    repair or unserviceable gets an open repair record (its way back into service)."""
    added = list(items)
    codes = [i.code for i in added]
    taken = session.scalars(select(Item.code).where(Item.code.in_(codes))).all() if codes else []
    if taken:
        raise Conflict(_l("Item %(code)s exists already.", code=taken[0]), code="exists",
                       details={"field": "code", "codes": sorted(taken)})
    session.add_all(added)
    _flush_or_conflict(session)
    repairs = [_repair(i, actor=actor, reason=i.condition or str(_l("registered out of "
                                                                     "service")))
               for i in added if i.status in NEEDS_REPAIR]
    session.add_all(repairs)
    session.flush()
    ctx = _context(session, added)
    afters = [(item.code, _item_json(item, ctx)) for item in added]
    # Stored: out of the session, since each audit entry's UPDATE synchronises the session's
    # objects (with 5,000 new items in it, an import spent minutes scanning them).
    for row in [*added, *repairs]:
        session.expunge(row)
    for code, after in afters:
        audit.record(session, actor=actor, action="depot_item.create",
                     entity_type="depot_item", entity_id=code, after=after)
    return added


def create_item(session: Session, body: Mapping[str, Any], *, actor: str,
                today: date) -> Item:
    """A new serialized item; audited."""
    item = new_item(session, body, today=today)
    add_items(session, [item], actor=actor)
    return item


# What PATCH may do to an item's status (the rest is check-out, check-in, inspection and
# repair): write it off or report it lost from the depot, and find a lost one again.
STATUS_CHANGES = {
    ItemStatus.LOST: {ItemStatus.IN_STOCK, ItemStatus.REPAIR, ItemStatus.UNSERVICEABLE,
                      ItemStatus.RETIRED},
    ItemStatus.RETIRED: {ItemStatus.IN_STOCK, ItemStatus.REPAIR, ItemStatus.UNSERVICEABLE,
                         ItemStatus.LOST},
    ItemStatus.IN_STOCK: {ItemStatus.LOST},
}
CHANGEABLE = ("serial", "condition", "bin", "home_site", "purchased", "expires",
              "inspection_due", "status")


def _new_status(session: Session, item: Item, value: Any, *, actor: str) -> None:
    status = fields.choice("status", value, tuple(ItemStatus))
    if status == item.status:
        return
    if item.status == ItemStatus.OUT:
        raise Conflict(_l("Item %(code)s is checked out: check it in first (as lost, if it "
                          "is).", code=item.code), code="item_out", details={"field": "status"})
    if item.status not in STATUS_CHANGES.get(status, ()):
        raise Conflict(_l("An item does not go from %(old)s to %(new)s by an edit: check-outs, "
                          "check-ins, inspections and repairs change its status.",
                          old=item.status, new=status), code="status_change",
                       details={"field": "status"})
    if status == ItemStatus.RETIRED:
        session.execute(update(Repair).where(Repair.item_id == item.id,
                                             Repair.closed_at.is_(None)).values(
            closed_at=utcnow(), closed_by=actor, outcome="written_off",
            note=str(_l("retired"))))
    item.status = status


def update_item(session: Session, code: str, body: Mapping[str, Any], *, actor: str) -> Item:
    """Change an item's fields (those given; null clears a date, the bin or the home site);
    audited. The code and type do not change; the status changes only as STATUS_CHANGES
    allows (409)."""
    item = find_item(session, code)
    before = describe_item(session, item)
    if "code" in body and (not isinstance(body["code"], str)
                           or body["code"].upper() != item.code):
        raise field_error("code", _l("cannot change: register a new item instead"))
    if "type" in body and (not isinstance(body["type"], str)
                           or body["type"].upper() != before["type"]["code"]):
        raise field_error("type", _l("cannot change: register a new item instead"))
    if "serial" in body:
        item.serial = fields.optional_text("serial", body["serial"], fields.SERIAL_MAX)
    if "condition" in body:
        item.condition = fields.optional_text("condition", body["condition"],
                                              fields.CONDITION_MAX)
    item.bin_id, item.home_site_id = _place(session, body, bin_id=item.bin_id,
                                            site_id=item.home_site_id)
    _dates(body, item)
    if "status" in body:
        _new_status(session, item, body["status"], actor=actor)
    session.flush()
    after = describe_item(session, item)
    if after != before:
        audit.record(session, actor=actor, action="depot_item.update", entity_type="depot_item",
                     entity_id=item.code, before=before, after=after)
    return item


# Audited about an item, but in its history from their own tables (with their checklists).
_OWN_TABLES = ("depot.inspect", "depot.repair_open", "depot.repair_close")


def _audit_history(session: Session, item: Item) -> list[dict[str, Any]]:
    # Columns, not entries: an item's page is opened often and only these are shown.
    rows = session.execute(select(
        AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.before,
        AuditEntry.after).where(
        AuditEntry.entity_type == "depot_item", AuditEntry.entity_id == item.code,
        AuditEntry.action.not_in(_OWN_TABLES))
        .order_by(AuditEntry.seq.desc()).limit(HISTORY_MAX))
    return [{"kind": "audit", "at": at, "by": actor, "action": action,
             "before": json.loads(before), "after": json.loads(after)}
            for at, actor, action, before, after in rows]


def _movement_history(session: Session, item: Item) -> list[dict[str, Any]]:
    entries = []
    for (out_id, at, by, to_kind, to_code, due, kit, returned_at, condition,
         note) in session.execute(select(
            Checkout.id, Checkout.at, Checkout.by, Checkout.to_kind, Checkout.to_code,
            Checkout.due, Checkout.kit_code, CheckoutLine.returned_at, CheckoutLine.condition,
            CheckoutLine.note).join(Checkout, Checkout.id == CheckoutLine.checkout_id).where(
            CheckoutLine.item_id == item.id).order_by(Checkout.at.desc()).limit(HISTORY_MAX)):
        to = {"kind": to_kind, "code": to_code}
        entries.append({"kind": "checkout", "at": at, "by": by, "checkout": out_id,
                        "to": to, "due": _iso(due), "kit": kit})
        if returned_at is not None:
            entries.append({"kind": "checkin", "at": returned_at, "checkout": out_id,
                            "to": to, "condition": condition, "note": note})
    return entries


def _care_history(session: Session, item: Item) -> list[dict[str, Any]]:
    entries = [{"kind": "inspection", "at": at, "by": by, "result": result,
                "checklist": checklist or {}, "note": note}
               for at, by, result, checklist, note in session.execute(select(
                   Inspection.at, Inspection.by, Inspection.result, Inspection.checklist,
                   Inspection.note).where(Inspection.item_id == item.id)
                   .order_by(Inspection.at.desc()).limit(HISTORY_MAX))]
    for (repair, opened_at, opened_by, reason, closed_at, closed_by, outcome,
         note) in session.execute(select(
            Repair.id, Repair.opened_at, Repair.opened_by, Repair.reason, Repair.closed_at,
            Repair.closed_by, Repair.outcome, Repair.note).where(Repair.item_id == item.id)
            .order_by(Repair.opened_at.desc()).limit(HISTORY_MAX)):
        entries.append({"kind": "repair_opened", "at": opened_at, "by": opened_by,
                        "repair": repair, "reason": reason})
        if closed_at is not None:
            entries.append({"kind": "repair_closed", "at": closed_at, "by": closed_by,
                            "repair": repair, "outcome": outcome, "note": note})
    return entries


def history(session: Session, item: Item) -> list[dict[str, Any]]:
    """Everything that happened to an item, newest first (at most HISTORY_MAX entries): its
    check-outs and returns, inspections, repairs, and the audit log's entries about it."""
    entries = [*_movement_history(session, item), *_care_history(session, item),
               *_audit_history(session, item)]
    entries.sort(key=lambda e: e["at"], reverse=True)
    return [{**e, "at": _iso(e["at"])} for e in entries[:HISTORY_MAX]]


# --- bulk stock -----------------------------------------------------------------------------

@dataclass(frozen=True)
class StockFilter:
    """What GET /api/v1/depot/stock narrows the list to (None: no filter)."""

    type: str | None = None
    bin: str | None = None
    site: str | None = None
    category: str | None = None
    below_min: bool | None = None


def _site_totals(session: Session) -> dict[tuple[int, int], Decimal]:
    rows = session.execute(select(Stock.type_id, Bin.site_id, func.sum(Stock.quantity)).join(
        Bin, Bin.id == Stock.bin_id).group_by(Stock.type_id, Bin.site_id)).all()
    return {(t, s): Decimal(q or 0) for t, s, q in rows}


def _stock_json(row: Stock, kind: ItemType, path: str, site: str,
                site_total: Decimal) -> dict[str, Any]:
    return {"type": type_brief(kind), "unit": kind.unit, "bin": path, "site": site,
            "quantity": fields.amount_json(row.quantity),
            "site_quantity": fields.amount_json(site_total),
            "reorder_min": fields.amount_json(kind.reorder_min),
            "below_min": site_total < Decimal(kind.reorder_min or 0)}


def stock(session: Session, wanted: StockFilter) -> list[dict[str, Any]]:
    """Stock lines per type and bin, by type and path. `below_min` compares what the bin's
    site holds of the type in all its bins with the type's reorder minimum (a depot keeps its
    minimum, wherever on its shelves)."""
    query = select(Stock, ItemType, Bin.path, Bin.site_id, Site.code).join(
        ItemType, ItemType.id == Stock.type_id).join(Bin, Bin.id == Stock.bin_id).join(
        Site, Site.id == Bin.site_id).order_by(ItemType.code, Bin.path)
    if wanted.type:
        query = query.where(ItemType.id == find_type(session, "type", wanted.type).id)
    if wanted.bin:
        query = query.where(Bin.id == find_bin(session, "bin", wanted.bin).id)
    if wanted.site:
        query = query.where(Site.id == find_site(session, wanted.site).id)
    if wanted.category:
        query = query.where(ItemType.category == wanted.category)
    totals = _site_totals(session)
    lines = [_stock_json(row, kind, path, site, totals.get((kind.id, site_id), Decimal(0)))
             for row, kind, path, site_id, site in session.execute(query).all()]
    if wanted.below_min is not None:
        lines = [line for line in lines if line["below_min"] == wanted.below_min]
    return lines


@dataclass(frozen=True)
class MoveFields:
    """A stock move as read from its body, checked."""

    kind: ItemType
    bin: Bin
    move: str
    delta: Decimal
    reason: str
    to: tuple[str, str] | None


def read_move(session: Session, body: Mapping[str, Any], known: Known | None = None
              ) -> MoveFields:
    """A stock move's body checked (400 naming the first bad field)."""
    kind = find_type(session, "type", body.get("type"), known)
    if kind.serialized:
        raise field_error("type", _l("%(code)s is a serialized type: its items go out and come "
                                     "back by check-out and check-in", code=kind.code))
    where = find_bin(session, "bin", body.get("bin"), known)
    move = fields.choice("kind", body.get("kind"), tuple(MoveKind))
    if "qty" not in body:
        raise field_error("qty", _l("is required"))
    signed = move == MoveKind.ADJUST
    qty = fields.quantity("qty", body.get("qty"), whole=kind.whole_units, signed=signed)
    reason = fields.optional_text("reason", body.get("reason"), fields.REASON_MAX)
    if move in NEEDS_REASON and not reason:
        raise field_error("reason", _l("is required for an adjustment or a write-off: say why "
                                       "the count changes"))
    to = fields.recipient("to", body.get("to"), RECIPIENT_KINDS)
    return MoveFields(kind, where, move, qty if signed else qty * MOVE_SIGN[MoveKind(move)],
                      reason, to)


def _insert(session: Session):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def apply_delta(session: Session, type_id: int, bin_id: int, delta: Decimal) -> Decimal | None:
    """Add `delta` to a bin's quantity in one statement; the new quantity, or None when the bin
    holds less than `-delta` (nothing changed). Rounded to the column's places, since SQLite
    keeps numbers as binary floats."""
    new = func.round(Stock.quantity + literal(delta, Stock.quantity.type), fields.QTY_PLACES)
    if delta < 0:
        return session.execute(update(Stock).where(
            Stock.type_id == type_id, Stock.bin_id == bin_id, new >= 0).values(quantity=new)
            .returning(Stock.quantity).execution_options(synchronize_session=False)).scalar()
    statement = _insert(session)(Stock).values(type_id=type_id, bin_id=bin_id, quantity=delta)
    statement = statement.on_conflict_do_update(
        index_elements=["type_id", "bin_id"],
        set_={"quantity": func.round(Stock.quantity + statement.excluded.quantity,
                                     fields.QTY_PLACES)})
    return session.execute(statement.returning(Stock.quantity)).scalar()


def insufficient(kind: ItemType, where: Bin, wanted: Decimal, have: Decimal) -> Conflict:
    """The 409 for taking more than a bin holds."""
    return Conflict(_l("Bin %(bin)s holds %(have)s %(unit)s of %(type)s, less than "
                       "%(wanted)s.", bin=where.path, have=fields.amount_json(have),
                       unit=kind.unit, type=kind.code, wanted=fields.amount_json(wanted)),
                    code="insufficient_stock",
                    details={"type": kind.code, "bin": where.path,
                             "available": fields.amount_json(have)})


def _held(session: Session, type_id: int, bin_id: int) -> Decimal:
    return Decimal(session.scalar(select(Stock.quantity).where(
        Stock.type_id == type_id, Stock.bin_id == bin_id)) or 0)


def move_stock(session: Session, move: MoveFields, *, actor: str,
               audited: bool = True) -> dict[str, Any]:
    """One ledger line and the bin's new quantity, in the caller's transaction; audited (unless
    the caller audits the line itself). 409 `insufficient_stock` (nothing written) when the bin
    holds too little."""
    quantity = apply_delta(session, move.kind.id, move.bin.id, move.delta)
    if quantity is None:
        raise insufficient(move.kind, move.bin, -move.delta, _held(session, move.kind.id,
                                                                   move.bin.id))
    values = {"type_id": move.kind.id, "bin_id": move.bin.id, "kind": move.move,
              "qty": move.delta, "reason": move.reason,
              "to_kind": move.to[0] if move.to else None,
              "to_code": move.to[1] if move.to else None, "by": actor, "at": utcnow()}
    move_id = session.execute(insert(StockMove).values(**values).returning(
        StockMove.id)).scalar_one()
    answer = move_json(StockMove(id=move_id, **values), move.kind, move.bin.path)
    answer["quantity"] = fields.amount_json(quantity)
    if audited:
        audit.record(session, actor=actor, action=f"depot_stock.{move.move}",
                     entity_type="depot_stock", entity_id=f"{move.kind.code}@{move.bin.path}",
                     before={"quantity": fields.amount_json(Decimal(quantity) - move.delta)},
                     after={"quantity": answer["quantity"], "move": move_id,
                            "qty": answer["qty"], "reason": move.reason, "to": answer["to"]})
    return answer


def move_json(row: StockMove, kind: ItemType, path: str) -> dict[str, Any]:
    """A ledger line as the API writes it (`qty` signed: what it did to the bin)."""
    return {"id": row.id, "type": kind.code, "bin": path, "kind": row.kind,
            "qty": fields.amount_json(row.qty), "reason": row.reason,
            "to": {"kind": row.to_kind, "code": row.to_code} if row.to_kind else None,
            "by": row.by, "at": _iso(row.at)}


def moves(session: Session, *, type_code: str | None = None, bin_path: str | None = None,
          limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """The ledger, newest first (of one type, one bin)."""
    query = select(StockMove, ItemType, Bin.path).join(
        ItemType, ItemType.id == StockMove.type_id).join(Bin, Bin.id == StockMove.bin_id)
    if type_code:
        query = query.where(StockMove.type_id == find_type(session, "type", type_code).id)
    if bin_path:
        query = query.where(StockMove.bin_id == find_bin(session, "bin", bin_path).id)
    rows = session.execute(query.order_by(StockMove.at.desc(), StockMove.id.desc())
                           .limit(limit)).all()
    return [move_json(row, kind, path) for row, kind, path in rows]


# --- kits -----------------------------------------------------------------------------------

def kit_json(kit: Kit, names: Mapping[str, ItemType]) -> dict[str, Any]:
    """A kit template as the API writes it."""
    return {"code": kit.code, "name": kit.name, "lines": [
        {"type": line["type"], "count": line["count"],
         **({"name_zh": names[line["type"]].name_zh, "name_en": names[line["type"]].name_en}
            if line["type"] in names else {})} for line in kit.lines]}


def kits(session: Session) -> list[dict[str, Any]]:
    """Every kit template, by code."""
    names = {t.code: t for t in session.scalars(select(ItemType))}
    return [kit_json(k, names) for k in session.scalars(select(Kit).order_by(Kit.code))]


def find_kit(session: Session, code: str) -> Kit:
    """A kit by code, any case (404 otherwise)."""
    wanted = _lookup_code(code)
    kit = session.scalar(select(Kit).where(Kit.code == wanted)) if wanted else None
    if kit is None:
        raise _not_found(_l("There is no kit with the code %(code)s.", code=code), code)
    return kit


def _kit_lines(session: Session, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= KIT_LINES:
        raise field_error("lines", _l("must be a list of 1-%(max)d lines {\"type\", \"count\"}",
                                      max=KIT_LINES))
    lines: list[dict[str, Any]] = []
    for n, line in enumerate(value):
        where = f"lines[{n}]"
        if not isinstance(line, Mapping):
            raise field_error(where, _l("must be an object {\"type\", \"count\"}"))
        kind = find_type(session, f"{where}.type", line.get("type"))
        if any(seen["type"] == kind.code for seen in lines):
            raise field_error(f"{where}.type", _l("is listed twice"))
        count = line.get("count")
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        lines.append({"type": kind.code,
                      "count": fields.integer(f"{where}.count", count, 1, KIT_COUNT)})
    return lines


def create_kit(session: Session, body: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """A new kit template (`code`, `name`, `lines`); audited. 409 `exists`."""
    code = fields.code("code", body.get("code"))
    name = fields.text("name", body.get("name"), fields.NAME_MAX, required=True)
    lines = _kit_lines(session, body.get("lines"))
    if session.scalar(select(Kit.id).where(Kit.code == code)):
        raise Conflict(_l("Kit %(code)s exists already.", code=code), code="exists",
                       details={"field": "code"})
    kit = Kit(code=code, name=name, lines=lines)
    session.add(kit)
    _flush_or_conflict(session)
    after = kit_json(kit, {})
    audit.record(session, actor=actor, action="depot_kit.create", entity_type="depot_kit",
                 entity_id=code, after=after)
    return kit_json(kit, {t.code: t for t in session.scalars(select(ItemType).where(
        ItemType.code.in_([line["type"] for line in lines])))})


def site_codes_of_items(session: Session, items: Sequence[Item]) -> list[str]:
    """The sites the items lie in (by bin, else home site), for live events."""
    bin_ids = {i.bin_id for i in items if i.bin_id}
    site_ids = {i.home_site_id for i in items if i.home_site_id}
    if bin_ids:
        site_ids |= set(session.scalars(select(Bin.site_id).where(Bin.id.in_(bin_ids))))
    if not site_ids:
        return []
    return list(session.scalars(select(Site.code).where(Site.id.in_(site_ids))))


def type_codes(session: Session, type_ids: Iterable[int]) -> list[str]:
    """Type codes by id (live events)."""
    ids = set(type_ids)
    return list(session.scalars(select(ItemType.code).where(ItemType.id.in_(ids)))) if ids \
        else []

