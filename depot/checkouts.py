"""Check-out and check-in, inspections and repairs, readiness (DESIGN §5 "Depot (contract)").
Plain functions taking a session; every change is audited in the caller's transaction; the
decisions are depot.rules'.

Never given out twice: every request is checked whole first (codes, availability, stock), and
only then written, each item by one conditional UPDATE (status 'in_stock' → 'out') and each
stock line by one (quantity ≥ qty). An UPDATE that changes no row lost a race to another keeper:
the transaction is rolled back and the answer is 409 naming the item. On PostgreSQL the UPDATE
waits for the other transaction's row lock and then sees its status; on SpatiaLite the first
write of a transaction waits for the database's write lock and reads after it. The partial
UNIQUE index on open check-out lines (depot.models) holds even if this guard were bypassed.

Holders are named by code: members and teams through the kernel's directory (the roster fills
it), incidents by any well-formed code until the dispatch domain keeps them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from depot import rules
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
from dispatch.core import audit, directory
from dispatch.core.codes import code_error, is_code
from dispatch.core.errors import BadRequest, Conflict, HubError, NotFound, field_error
from dispatch.core.models import AuditEntry
from dispatch.core.settings import Settings

CODE_LEN = 32
MAX_LINES = 500
MAX_NOTE = 200
MAX_INSPECTION_NOTE = 500
MAX_CHECKLIST = 100
MAX_CHECKLIST_TEXT = 200
# A due time is at most this far ahead (a year's loan is a transfer, not a check-out).
MAX_DUE_AHEAD = timedelta(days=366)
MAX_QTY = Decimal(10) ** 12
MAX_ID = 2**31 - 1
MAX_LIST = 500
# An overdue check-out is told to the office again after this long while it stays out.
REMIND_EVERY = timedelta(days=1)
MAX_DUE_DAYS = 3650
HUB = "hub"
LANGUAGES = {"zh": "zh_Hans_CN", "en": "en"}


# --- errors ----------------------------------------------------------------------------------

class Unavailable(HubError):
    """409: items or stock that cannot go out, each with its reason; nothing was written."""

    status = 409
    code = "unavailable"
    message = _l("Some items cannot go out; nothing was checked out.")


def _unavailable(items: list[dict[str, Any]]) -> Unavailable:
    return Unavailable(details={"items": items})


def _bad_codes(problems: list[dict[str, Any]]) -> HubError:
    """422 `bad_codes`: codes that name nothing, or something of another kind."""
    return HubError(_l("Some codes name nothing, or something else than the field asks for: "
                       "%(codes)s.", codes=", ".join(p["code"] for p in problems)),
                    code="bad_codes", status=422, details={"codes": problems})


# --- small helpers ---------------------------------------------------------------------------

def today_of(settings: Settings, now: datetime) -> date:
    """The depot's calendar day at `now` (its time zone, [depot] timezone)."""
    return now.astimezone(ZoneInfo(settings.depot.timezone)).date()


def number(value: Decimal | float | None) -> int | float | None:
    """A quantity as JSON: whole numbers as integers."""
    if value is None:
        return None
    value = Decimal(str(value)) if not isinstance(value, Decimal) else value
    return int(value) if value == value.to_integral_value() else float(value)


def iso(value: datetime | date | None) -> str | None:
    """A timestamp as RFC 3339 UTC, a date as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def _code(field_name: str, value: Any) -> str:
    if not is_code(value, CODE_LEN):
        raise code_error(field_name, CODE_LEN)
    return value.upper()


def _text(body: Mapping[str, Any], name: str, most: int, prefix: str = "") -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > most:
        raise field_error(prefix + name, _l("must be text of at most %(max)d characters",
                                            max=most))
    return value


def _list(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LINES:
        raise field_error(name, _l("must be a list of at most %(max)d entries", max=MAX_LINES))
    return value


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise field_error(name, _l("must be an object"))
    return value


def _unknown_fields(body: Mapping[str, Any], allowed: set[str], prefix: str = "") -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise field_error(prefix + unknown[0], _l("is not a field here (send %(names)s)",
                                                  names=", ".join(sorted(allowed))))


def _quantity(value: Any, name: str, whole: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_error(name, _l("must be a number"))
    try:
        qty = Decimal(str(value))
    except InvalidOperation:
        raise field_error(name, _l("must be a number")) from None
    if not Decimal(0) < qty < MAX_QTY:
        raise field_error(name, _l("must be more than 0"))
    if whole and qty != qty.to_integral_value():
        raise field_error(name, _l("must be a whole number for this type"))
    if qty != qty.quantize(Decimal("0.001")):
        raise field_error(name, _l("takes at most 3 decimals"))
    return qty


def parse_time(value: Any, name: str) -> datetime:
    """An RFC 3339 timestamp with its offset (Z or ±HH:MM) as aware UTC; 400 otherwise."""
    problem = _l("must be a timestamp such as 2026-07-01T18:00:00+08:00")
    if not isinstance(value, str) or not 20 <= len(value) <= 40 or "T" not in value:
        raise field_error(name, problem)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise field_error(name, problem) from None
    if parsed.tzinfo is None:
        raise field_error(name, problem)
    return parsed.astimezone(UTC)


# What a scanned code may name in the depot, in the order it is looked for.
DEPOT_KINDS = (("item", Item.code), ("kit", Kit.code), ("type", ItemType.code),
               ("site", Site.code))
# The directory is asked about this many unknown codes of one request at most (one query each).
MAX_DIRECTORY_LOOKUPS = 50


def _kinds_of(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """What each scanned code names in the depot or the directory (codes naming nothing are
    left out)."""
    left = set(codes)
    kinds: dict[str, str] = {}
    for kind, column in DEPOT_KINDS:
        if not left:
            break
        for code in session.scalars(select(column).where(column.in_(sorted(left)))):
            kinds[code] = kind
        left -= set(kinds)
    for code in sorted(left)[:MAX_DIRECTORY_LOOKUPS]:
        kind = next((k for k in RECIPIENT_KINDS if directory.exists(session, k, code)), None)
        if kind is not None:
            kinds[code] = kind
    return kinds


def _kind_of(session: Session, code: str) -> str | None:
    """What a scanned code names in the depot or the directory (None: nothing)."""
    return _kinds_of(session, [code]).get(code)


def _problems(session: Session, entries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each (field, code) as a `bad_codes` entry: unknown, or the kind it names instead."""
    kinds = _kinds_of(session, [code for _, code in entries])
    return [{"field": name, "code": code, "problem": "wrong_kind" if code in kinds else "unknown",
             "kind": kinds.get(code)} for name, code in entries]


def _problem(session: Session, field_name: str, code: str) -> dict[str, Any]:
    return _problems(session, [(field_name, code)])[0]


# --- check-out -------------------------------------------------------------------------------

@dataclass
class _StockLine:
    type: ItemType
    bin: Bin
    stock_id: int
    qty: Decimal


@dataclass
class _Plan:
    """A check-out, checked whole, before anything is written."""

    to_kind: str
    to_code: str
    due: datetime
    note: str
    kit: Kit | None = None
    picked: bool = False
    items: list[Item] = field(default_factory=list)
    stock: list[_StockLine] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)


def _recipient(session: Session, body: Mapping[str, Any]) -> tuple[str, str]:
    to = _object(body.get("to"), "to")
    if len(to) != 1 or next(iter(to)) not in RECIPIENT_KINDS:
        raise field_error("to", _l("must name one holder: {\"member\": code}, {\"team\": code} "
                                   "or {\"incident\": code}"))
    kind, raw = next(iter(to.items()))
    code = _code(f"to.{kind}", raw)
    known = directory.exists(session, kind, code)
    if known is False:
        raise _bad_codes([_problem(session, f"to.{kind}", code)])
    if known is None and _kind_of(session, code) is not None:
        # No package keeps this kind yet: any code goes, but not one that names something else.
        raise _bad_codes([_problem(session, f"to.{kind}", code)])
    return kind, code


def _due(body: Mapping[str, Any], settings: Settings, now: datetime) -> datetime:
    if body.get("due") is None:
        return now + timedelta(hours=settings.depot.default_due_h)
    due = parse_time(body["due"], "due")
    if not now < due <= now + MAX_DUE_AHEAD:
        raise field_error("due", _l("must be in the future, within a year"))
    return due


def _item_codes(body: Mapping[str, Any]) -> list[str]:
    codes = [_code(f"items[{i}]", raw) for i, raw in enumerate(_list(body, "items"))]
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if code in seen:
            raise field_error(f"items[{i}]", _l("%(code)s is listed twice", code=code))
        seen.add(code)
    return codes


def _load_items(session: Session, codes: list[str], field_name: str = "items") -> list[Item]:
    """The items of these codes in the given order; 422 naming every code that is no item."""
    if not codes:
        return []
    found = {i.code: i for i in session.scalars(select(Item).where(Item.code.in_(codes)))}
    missing = [(f"{field_name}[{i}]", code) for i, code in enumerate(codes) if code not in found]
    if missing:
        raise _bad_codes(_problems(session, missing))
    return [found[code] for code in codes]


def _types(session: Session, ids: Iterable[int]) -> dict[int, ItemType]:
    ids = set(ids)
    if not ids:
        return {}
    return {t.id: t for t in session.scalars(select(ItemType).where(ItemType.id.in_(ids)))}


def _stock_requests(session: Session, body: Mapping[str, Any]) -> list[_StockLine]:
    """The stock lines asked for (same type and bin added up), each checked for its codes."""
    lines: dict[tuple[int, int], _StockLine] = {}
    problems = []
    for i, raw in enumerate(_list(body, "stock")):
        entry = _object(raw, f"stock[{i}]")
        _unknown_fields(entry, {"type", "qty", "bin"}, f"stock[{i}].")
        type_code = _code(f"stock[{i}].type", entry.get("type"))
        path = entry.get("bin")
        if not isinstance(path, str) or not 0 < len(path) <= 128:
            raise field_error(f"stock[{i}].bin", _l("must be a bin path such as "
                                                    "DEPOT1/A/2/3"))
        kind = session.scalar(select(ItemType).where(ItemType.code == type_code))
        where = session.scalar(select(Bin).where(func.upper(Bin.path) == path.upper()))
        if kind is None or kind.serialized:
            problems.append(_problem(session, f"stock[{i}].type", type_code)
                            if kind is None else
                            {"field": f"stock[{i}].type", "code": type_code,
                             "problem": "wrong_kind", "kind": "serialized_type"})
            continue
        if where is None:
            problems.append({"field": f"stock[{i}].bin", "code": path, "problem": "unknown",
                             "kind": None})
            continue
        qty = _quantity(entry.get("qty"), f"stock[{i}].qty", kind.whole_units)
        key = (kind.id, where.id)
        if key in lines:
            lines[key].qty += qty
        else:
            lines[key] = _StockLine(kind, where, 0, qty)
    if problems:
        raise _bad_codes(problems)
    return list(lines.values())


def _check_stock(session: Session, plan: _Plan) -> None:
    for line in plan.stock:
        stock = session.scalar(select(Stock).where(Stock.type_id == line.type.id,
                                                   Stock.bin_id == line.bin.id))
        have = stock.quantity if stock is not None else Decimal(0)
        if stock is None or have < line.qty:
            plan.unavailable.append({"code": line.type.code, "reason": "insufficient_stock",
                                     "bin": line.bin.path, "available": number(have)})
        else:
            line.stock_id = stock.id


def _check_items(plan: _Plan, today: date) -> None:
    for item in plan.items:
        reason = rules.unavailable_reason(
            rules.ItemState(item.status, item.inspection_due, item.expires), today)
        if reason is not None:
            plan.unavailable.append({"code": item.code, "reason": reason})


def serviceable(today: date):
    """The SQL condition of an item that may go out today (in stock, inspected, not expired)."""
    return and_(Item.status == "in_stock",
                or_(Item.inspection_due.is_(None), Item.inspection_due >= today),
                or_(Item.expires.is_(None), Item.expires >= today))


def _site_of_items(site_id: int):
    return or_(Item.home_site_id == site_id,
               Item.bin_id.in_(select(Bin.id).where(Bin.site_id == site_id)))


def _pick(session: Session, plan: _Plan, kit_types: dict[str, ItemType],
          needed: dict[str, Decimal], today: date, site: Site | None) -> None:
    """Fill a kit from the depot: serviceable items of each serialized type (by code), stock of
    each bulk type from the fullest bins; a type the depot cannot cover is `insufficient_stock`."""
    for code, count in needed.items():
        kind = kit_types[code]
        if kind.serialized:
            query = select(Item).where(Item.type_id == kind.id, serviceable(today))
            if site is not None:
                query = query.where(_site_of_items(site.id))
            found = session.scalars(query.order_by(Item.code).limit(int(count))).all()
            plan.items += found
            if len(found) < count:
                plan.unavailable.append({"code": code, "reason": "insufficient_stock",
                                         "needed": number(count), "available": len(found)})
            continue
        query = select(Stock, Bin).join(Bin, Bin.id == Stock.bin_id).where(
            Stock.type_id == kind.id, Stock.quantity > 0)
        if site is not None:
            query = query.where(Bin.site_id == site.id)
        left = count
        for stock, where in session.execute(query.order_by(Stock.quantity.desc(), Bin.path)):
            if left <= 0:
                break
            take = min(left, stock.quantity)
            plan.stock.append(_StockLine(kind, where, stock.id, take))
            left -= take
        if left > 0:
            plan.unavailable.append({"code": code, "reason": "insufficient_stock",
                                     "needed": number(count), "available": number(count - left)})


def _kit(session: Session, body: Mapping[str, Any], plan: _Plan, today: date) -> None:
    code = _code("kit", body["kit"])
    kit = session.scalar(select(Kit).where(Kit.code == code))
    if kit is None:
        raise _bad_codes([_problem(session, "kit", code)])
    plan.kit = kit
    needed: dict[str, Decimal] = defaultdict(Decimal)
    for line in kit.lines:
        needed[str(line["type"]).upper()] += Decimal(str(line["count"]))
    kit_types = {t.code: t for t in session.scalars(
        select(ItemType).where(ItemType.code.in_(list(needed))))}
    if plan.items or plan.stock:
        given: dict[str, Decimal] = defaultdict(Decimal)
        types = _types(session, {i.type_id for i in plan.items})
        for item in plan.items:
            given[types[item.type_id].code] += 1
        for line in plan.stock:
            given[line.type.code] += line.qty
        short = rules.kit_shortfall(kit.lines, given)
        if short:
            raise HubError(_l("The kit %(kit)s is not complete: %(types)s.", kit=kit.code,
                              types=", ".join(f"{s.type} {number(s.given)}/{number(s.needed)}"
                                              for s in short)),
                           code="kit_short", status=422, details={"short": [
                               {"type": s.type, "needed": number(s.needed),
                                "given": number(s.given)} for s in short]})
        return
    missing = [c for c in needed if c not in kit_types]
    if missing:
        raise _bad_codes([{"field": "kit", "code": c, "problem": "unknown", "kind": None}
                          for c in missing])
    site = None
    if body.get("site") is not None:
        site_code = _code("site", body["site"])
        site = session.scalar(select(Site).where(Site.code == site_code))
        if site is None:
            raise _bad_codes([_problem(session, "site", site_code)])
    plan.picked = True
    _pick(session, plan, kit_types, needed, today, site)


CHECKOUT_FIELDS = {"items", "stock", "kit", "to", "due", "note", "site"}


def plan_checkout(session: Session, body: Mapping[str, Any], settings: Settings,
                  now: datetime) -> _Plan:
    """The check-out asked for, checked whole (400/422 for bad input; `unavailable` filled)."""
    _unknown_fields(body, CHECKOUT_FIELDS)
    kind, code = _recipient(session, body)
    plan = _Plan(kind, code, _due(body, settings, now), _text(body, "note", MAX_NOTE))
    plan.items = _load_items(session, _item_codes(body))
    plan.stock = _stock_requests(session, body)
    today = today_of(settings, now)
    if body.get("kit") is not None:
        _kit(session, body, plan, today)
    if body.get("site") is not None and not plan.picked:
        raise field_error("site", _l("is taken with a kit alone (to pick from that site)"))
    if not plan.items and not plan.stock:
        raise BadRequest(_l("Name what goes out: items, stock or a kit."), code="nothing_out")
    if not plan.picked:
        _check_items(plan, today)
        _check_stock(session, plan)
    return plan


def checkout(session: Session, body: Mapping[str, Any], *, actor: str, settings: Settings,
             now: datetime) -> dict[str, Any]:
    """Check items and stock out to a member, team or incident (audited); 409 `unavailable`
    with nothing written when any cannot go, including one a racing keeper took first."""
    plan = plan_checkout(session, body, settings, now)
    if plan.unavailable:
        raise _unavailable(plan.unavailable)
    record = Checkout(to_kind=plan.to_kind, to_code=plan.to_code, due=plan.due, by=actor,
                      at=now, note=plan.note, kit_code=plan.kit.code if plan.kit else None)
    session.add(record)
    session.flush()
    raced = _take_items(session, plan.items, record.id, now)
    raced += _take_stock(session, plan, record, actor, now)
    if raced:
        session.rollback()
        raise _unavailable(raced)
    answer = describe(session, record, now)
    answer["picked"] = plan.picked
    audit.record(session, actor=actor, action="depot.checkout", entity_type="checkout",
                 entity_id=record.id, after=answer)
    return answer


def _take_items(session: Session, items: list[Item], checkout_id: int,
                now: datetime) -> list[dict[str, Any]]:
    """Each item out by one conditional UPDATE, in id order (two keepers taking the same items
    in another order must not deadlock); the items a racing keeper took first."""
    raced = []
    for item in sorted(items, key=lambda i: i.id):
        taken = session.execute(
            update(Item).where(Item.id == item.id, Item.status == "in_stock")
            .values(status="out", checkout_id=checkout_id, updated_at=now)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            raced.append({"code": item.code, "reason": "out"})
            continue
        code = item.code
        session.add(CheckoutLine(checkout_id=checkout_id, item_id=item.id, bin_id=item.bin_id,
                                 qty=Decimal(1)))
        try:
            session.flush()
        except IntegrityError:  # the one-open-line index: the item is out though marked in stock
            session.rollback()
            raise _unavailable([{"code": code, "reason": "out"}]) from None
    return raced


def _take_stock(session: Session, plan: _Plan, record: Checkout, actor: str,
                now: datetime) -> list[dict[str, Any]]:
    raced = []
    for line in sorted(plan.stock, key=lambda s: s.stock_id):
        taken = session.execute(
            update(Stock).where(Stock.id == line.stock_id, Stock.quantity >= line.qty)
            .values(quantity=Stock.quantity - line.qty)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:
            raced.append({"code": line.type.code, "reason": "insufficient_stock",
                          "bin": line.bin.path})
            continue
        session.add(CheckoutLine(checkout_id=record.id, type_id=line.type.id,
                                 bin_id=line.bin.id, qty=line.qty))
        session.add(StockMove(type_id=line.type.id, bin_id=line.bin.id, kind="issue",
                              qty=-line.qty, reason="checkout", to_kind=record.to_kind,
                              to_code=record.to_code, checkout_id=record.id, by=actor, at=now))
    return raced


# --- describing check-outs -------------------------------------------------------------------

def _lines_of(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each check-out's lines as JSON, in one query."""
    result: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        select(CheckoutLine, Item.code, Item.status, ItemType.code, Bin.path)
        .outerjoin(Item, Item.id == CheckoutLine.item_id)
        .join(ItemType, ItemType.id == func.coalesce(CheckoutLine.type_id, Item.type_id))
        .outerjoin(Bin, Bin.id == CheckoutLine.bin_id)
        .where(CheckoutLine.checkout_id.in_(ids)).order_by(CheckoutLine.id))
    for line, item_code, status, type_code, path in rows:
        result[line.checkout_id].append({
            "item": item_code, "type": type_code, "bin": path, "qty": number(line.qty),
            "returned_qty": number(line.returned_qty), "returned_at": iso(line.returned_at),
            "condition": line.condition, "note": line.note,
            "status": status})
    return result


def _checkout_json(record: Checkout, lines: list[dict[str, Any]],
                   now: datetime) -> dict[str, Any]:
    return {"id": record.id, "to": {"kind": record.to_kind, "code": record.to_code},
            "kit": record.kit_code, "due": iso(record.due), "at": iso(record.at),
            "by": record.by, "note": record.note, "closed_at": iso(record.closed_at),
            "open": record.closed_at is None,
            "overdue": rules.is_overdue(record.due, record.closed_at, now),
            "reminded_at": iso(record.reminded_at), "lines": lines}


def describe(session: Session, record: Checkout, now: datetime) -> dict[str, Any]:
    """One check-out with its lines."""
    session.flush()
    return _checkout_json(record, _lines_of(session, [record.id])[record.id], now)


def checkouts(session: Session, *, open_only: bool | None, overdue: bool,
              now: datetime) -> list[dict[str, Any]]:
    """Check-outs, newest first (overdue ones: most overdue first), with their lines."""
    query = select(Checkout)
    if open_only is True or overdue:
        query = query.where(Checkout.closed_at.is_(None))
    elif open_only is False:
        query = query.where(Checkout.closed_at.is_not(None))
    if overdue:
        query = query.where(Checkout.due < now).order_by(Checkout.due, Checkout.id)
    else:
        query = query.order_by(Checkout.at.desc(), Checkout.id.desc())
    records = session.scalars(query.limit(MAX_LIST)).all()
    lines = _lines_of(session, [r.id for r in records])
    return [_checkout_json(r, lines[r.id], now) for r in records]


# --- check-in --------------------------------------------------------------------------------

@dataclass
class _ItemReturn:
    item: Item
    condition: str
    note: str


@dataclass
class _StockReturn:
    type: ItemType
    qty: Decimal
    bin: Bin | None
    checkout_id: int | None


def _item_returns(session: Session, body: Mapping[str, Any]) -> list[_ItemReturn]:
    entries = []
    for i, raw in enumerate(_list(body, "items")):
        entry = _object(raw, f"items[{i}]")
        _unknown_fields(entry, {"code", "condition", "note"}, f"items[{i}].")
        code = _code(f"items[{i}].code", entry.get("code"))
        condition = entry.get("condition", "ok")
        if condition not in rules.CONDITIONS:
            raise field_error(f"items[{i}].condition", _l("must be ok, damaged or lost"))
        entries.append((code, condition, _text(entry, "note", MAX_NOTE, f"items[{i}].")))
    codes = [code for code, _, _ in entries]
    for i, code in enumerate(codes):
        if code in codes[:i]:
            raise field_error(f"items[{i}].code", _l("%(code)s is listed twice", code=code))
    found = {item.code: item for item in _load_items(session, codes)}
    return [_ItemReturn(found[code], condition, note) for code, condition, note in entries]


def _stock_returns(session: Session, body: Mapping[str, Any]) -> list[_StockReturn]:
    returns, problems = [], []
    for i, raw in enumerate(_list(body, "stock")):
        entry = _object(raw, f"stock[{i}]")
        _unknown_fields(entry, {"type", "qty", "bin", "checkout"}, f"stock[{i}].")
        type_code = _code(f"stock[{i}].type", entry.get("type"))
        kind = session.scalar(select(ItemType).where(ItemType.code == type_code))
        if kind is None or kind.serialized:
            problems.append(_problem(session, f"stock[{i}].type", type_code) if kind is None
                            else {"field": f"stock[{i}].type", "code": type_code,
                                  "problem": "wrong_kind", "kind": "serialized_type"})
            continue
        where = None
        if entry.get("bin") is not None:
            path = entry["bin"]
            if not isinstance(path, str) or not 0 < len(path) <= 128:
                raise field_error(f"stock[{i}].bin", _l("must be a bin path such as "
                                                        "DEPOT1/A/2/3"))
            where = session.scalar(select(Bin).where(func.upper(Bin.path) == path.upper()))
            if where is None:
                problems.append({"field": f"stock[{i}].bin", "code": path,
                                 "problem": "unknown", "kind": None})
                continue
        checkout_id = entry.get("checkout")
        if checkout_id is not None and (isinstance(checkout_id, bool) or not isinstance(
                checkout_id, int) or not 0 < checkout_id <= MAX_ID):
            raise field_error(f"stock[{i}].checkout", _l("must be a check-out id"))
        qty = _quantity(entry.get("qty"), f"stock[{i}].qty", kind.whole_units)
        returns.append(_StockReturn(kind, qty, where, checkout_id))
    if problems:
        raise _bad_codes(problems)
    return returns


def _not_out(items: list[dict[str, Any]]) -> Conflict:
    return Conflict(_l("Some of these are not out: %(codes)s. Nothing was checked in.",
                       codes=", ".join(i["code"] for i in items)),
                    code="not_out", details={"items": items})


def _return_items(session: Session, returns: list[_ItemReturn], actor: str,
                  now: datetime) -> tuple[set[int], list[dict[str, Any]]]:
    """Each item back by one conditional UPDATE (status 'out' → its new status)."""
    touched: set[int] = set()
    done, refused = [], []
    for entry in sorted(returns, key=lambda r: r.item.id):
        item = entry.item
        outcome = rules.returned(entry.condition)
        checkout_id = item.checkout_id
        back = session.execute(
            update(Item).where(Item.id == item.id, Item.status == "out")
            .values(status=outcome.status, checkout_id=None, updated_at=now)
            .execution_options(synchronize_session=False))
        if back.rowcount != 1:
            refused.append({"code": item.code, "status": item.status})
            continue
        session.execute(
            update(CheckoutLine).where(CheckoutLine.item_id == item.id,
                                       CheckoutLine.returned_at.is_(None))
            .values(returned_at=now, returned_qty=1, condition=entry.condition,
                    note=entry.note).execution_options(synchronize_session=False))
        repair = None
        if outcome.opens_repair:
            repair = Repair(item_id=item.id, opened_by=actor, opened_at=now,
                            reason=entry.note or "damaged on return")
            session.add(repair)
            session.flush()
        if checkout_id is not None:
            touched.add(checkout_id)
        done.append({"code": item.code, "condition": entry.condition, "status": outcome.status,
                     "repair": repair.id if repair is not None else None})
    if refused:
        raise _not_out(refused)
    return touched, done


def _open_stock_lines(session: Session, entry: _StockReturn) -> list[CheckoutLine]:
    query = select(CheckoutLine).join(Checkout, Checkout.id == CheckoutLine.checkout_id).where(
        CheckoutLine.type_id == entry.type.id, CheckoutLine.returned_at.is_(None),
        Checkout.closed_at.is_(None))
    if entry.checkout_id is not None:
        query = query.where(CheckoutLine.checkout_id == entry.checkout_id)
    return list(session.scalars(query.order_by(CheckoutLine.id)))


def _add_to_bin(session: Session, type_id: int, bin_id: int, qty: Decimal) -> None:
    added = session.execute(
        update(Stock).where(Stock.type_id == type_id, Stock.bin_id == bin_id)
        .values(quantity=Stock.quantity + qty).execution_options(synchronize_session=False))
    if added.rowcount != 1:
        session.add(Stock(type_id=type_id, bin_id=bin_id, quantity=qty))
        session.flush()


def _return_stock(session: Session, returns: list[_StockReturn], actor: str,
                  now: datetime) -> tuple[set[int], list[dict[str, Any]]]:
    touched: set[int] = set()
    done, refused = [], []
    for i, entry in enumerate(returns):
        lines = _open_stock_lines(session, entry)
        holders = {line.checkout_id for line in lines}
        if len(holders) > 1:
            raise field_error(f"stock[{i}].checkout", _l(
                "%(type)s is out on several check-outs (%(ids)s): name the one it comes back "
                "from", type=entry.type.code, ids=", ".join(str(h) for h in sorted(holders))))
        out = sum((line.qty - line.returned_qty for line in lines), Decimal(0))
        if out < entry.qty:
            refused.append({"code": entry.type.code, "status": "not_out" if not lines
                            else "more_than_out", "out": number(out)})
            continue
        left = entry.qty
        for line in lines:
            part = min(left, line.qty - line.returned_qty)
            if part <= 0:
                continue
            back = session.execute(
                update(CheckoutLine).where(CheckoutLine.id == line.id,
                                           CheckoutLine.qty - CheckoutLine.returned_qty >= part)
                .values(returned_qty=CheckoutLine.returned_qty + part,
                        returned_at=case((CheckoutLine.qty - CheckoutLine.returned_qty == part,
                                          now), else_=None))
                .execution_options(synchronize_session=False))
            if back.rowcount != 1:  # another keeper returned it meanwhile
                refused.append({"code": entry.type.code, "status": "more_than_out"})
                break
            bin_id = entry.bin.id if entry.bin is not None else line.bin_id
            _add_to_bin(session, entry.type.id, bin_id, part)
            session.add(StockMove(type_id=entry.type.id, bin_id=bin_id, kind="return", qty=part,
                                  reason="checkin", checkout_id=line.checkout_id, by=actor,
                                  at=now))
            touched.add(line.checkout_id)
            left -= part
        done.append({"type": entry.type.code, "qty": number(entry.qty)})
    if refused:
        raise _not_out(refused)
    return touched, done


def checkin(session: Session, body: Mapping[str, Any], *, actor: str,
            now: datetime) -> dict[str, Any]:
    """Items and stock back (audited per check-out): ok → in stock, damaged → repair with an
    open repair record, lost → lost; a check-out closes when every line is back. 409 `not_out`
    with nothing written when any is not out."""
    _unknown_fields(body, {"items", "stock"})
    item_returns = _item_returns(session, body)
    stock_returns = _stock_returns(session, body)
    if not item_returns and not stock_returns:
        raise BadRequest(_l("Name what comes back: items or stock."), code="nothing_back")
    not_out = [{"code": r.item.code, "status": r.item.status} for r in item_returns
               if r.item.status != "out"]
    if not_out:
        raise _not_out(not_out)
    touched, items = _return_items(session, item_returns, actor, now)
    more, stock = _return_stock(session, stock_returns, actor, now)
    touched |= more
    session.flush()
    answers = []
    for checkout_id in sorted(touched):
        record = session.get(Checkout, checkout_id)
        still_out = session.scalar(select(func.count()).select_from(CheckoutLine).where(
            CheckoutLine.checkout_id == checkout_id, CheckoutLine.returned_at.is_(None)))
        if not still_out:
            record.closed_at = now
        answer = describe(session, record, now)
        audit.record(session, actor=actor, action="depot.checkin", entity_type="checkout",
                     entity_id=checkout_id, after={
                         "items": [i for i in items if any(
                             line["item"] == i["code"] for line in answer["lines"])],
                         "stock": stock, "closed": not still_out})
        answers.append(answer)
    return {"items": items, "stock": stock, "checkouts": answers}


# --- inspections and repairs -----------------------------------------------------------------

def find_item(session: Session, code: str) -> Item:
    """An item by code (404 otherwise; codes are case-insensitive)."""
    item = session.scalar(select(Item).where(Item.code == code.upper())) \
        if is_code(code, CODE_LEN) else None
    if item is None:
        raise NotFound(_l("There is no item with the code %(code)s.", code=code),
                       code="not_found")
    return item


def _checklist(body: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("checklist", {})
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_CHECKLIST:
        raise field_error("checklist", _l("must be an object of at most %(max)d checks",
                                          max=MAX_CHECKLIST))
    for key, answer in value.items():
        if len(key) > MAX_CHECKLIST_TEXT or not (
                answer is None or isinstance(answer, bool)
                or (isinstance(answer, str) and len(answer) <= MAX_CHECKLIST_TEXT)):
            raise field_error("checklist", _l("each check takes true, false, null or a short "
                                              "text"))
    return value


def _open_repair(session: Session, item_id: int) -> Repair | None:
    return session.scalar(select(Repair).where(Repair.item_id == item_id,
                                               Repair.closed_at.is_(None)).limit(1))


def _set_status(session: Session, item: Item, status: str, now: datetime,
                **values: Any) -> None:
    """The item's new status, by a conditional UPDATE on the status it was read with (409 when
    someone changed it meanwhile)."""
    changed = session.execute(
        update(Item).where(Item.id == item.id, Item.status == item.status)
        .values(status=status, updated_at=now, **values)
        .execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        raise Conflict(_l("The item %(code)s changed meanwhile; reload and try again.",
                          code=item.code), code="conflict")
    session.expire(item)


def _refused(item: Item, reason: str) -> Conflict:
    messages = {
        "out": _l("The item %(code)s is out: check it in first."),
        "retired": _l("The item %(code)s is retired."),
        "lost": _l("The item %(code)s is lost."),
    }
    return Conflict(messages[reason] % {"code": item.code}, code=f"item_{reason}",
                    details={"status": reason})


def inspect(session: Session, code: str, body: Mapping[str, Any], *, actor: str,
            settings: Settings, now: datetime) -> dict[str, Any]:
    """Record an inspection (audited): a pass sets the next due date, a failure takes the item
    out of service with a repair record, `lost` marks it lost."""
    item = find_item(session, code)
    _unknown_fields(body, {"result", "checklist", "note"})
    result = body.get("result")
    if result not in rules.RESULTS:
        raise field_error("result", _l("must be one of %(choices)s",
                                       choices=", ".join(rules.RESULTS)))
    checklist = _checklist(body)
    note = _text(body, "note", MAX_INSPECTION_NOTE)
    kind = session.get(ItemType, item.type_id)
    outcome = rules.inspected(item.status, result, today_of(settings, now),
                              kind.inspection_every_days)
    if outcome.refused is not None:
        raise _refused(item, outcome.refused)
    before = {"status": item.status, "inspection_due": iso(item.inspection_due)}
    values = {"inspection_due": outcome.inspection_due} if result in ("operational",
                                                                      "monitor") else {}
    item_id, item_code = item.id, item.code
    _set_status(session, item, outcome.status, now, **values)
    record = Inspection(item_id=item_id, at=now, by=actor, result=result, checklist=checklist,
                        note=note)
    session.add(record)
    repair = _open_repair(session, item_id) if outcome.opens_repair else None
    if outcome.opens_repair and repair is None:
        repair = Repair(item_id=item_id, opened_by=actor, opened_at=now,
                        reason=note or f"inspection: {result}")
        session.add(repair)
    session.flush()
    answer = {"id": record.id, "item": item_code, "at": iso(now), "by": actor, "result": result,
              "checklist": checklist, "note": note, "item_status": outcome.status,
              "inspection_due": iso(item.inspection_due),
              "repair": repair.id if repair is not None else None}
    audit.record(session, actor=actor, action="depot.inspect", entity_type="depot_item",
                 entity_id=item_code, before=before, after=answer)
    return answer


def _repair_json(repair: Repair, item: Item) -> dict[str, Any]:
    return {"id": repair.id, "item": item.code, "opened_at": iso(repair.opened_at),
            "opened_by": repair.opened_by, "reason": repair.reason,
            "closed_at": iso(repair.closed_at), "closed_by": repair.closed_by,
            "outcome": repair.outcome, "note": repair.note, "item_status": item.status}


def repair(session: Session, code: str, body: Mapping[str, Any], *, actor: str,
           now: datetime) -> tuple[dict[str, Any], bool]:
    """Open a repair (`reason`), or close the open one (`outcome`: repaired → in stock,
    written_off → retired); audited. Returns the repair and whether it was opened."""
    item = find_item(session, code)
    _unknown_fields(body, {"reason", "outcome", "note"})
    current = _open_repair(session, item.id)
    before = {"status": item.status}
    if body.get("outcome") is None:
        reason = _text(body, "reason", MAX_INSPECTION_NOTE)
        refused = rules.may_open_repair(item.status)
        if refused is not None:
            raise _refused(item, refused)
        if current is not None:
            raise Conflict(_l("The item %(code)s has an open repair (%(id)s): close it first.",
                              code=item.code, id=current.id), code="repair_open")
        current = Repair(item_id=item.id, opened_by=actor, opened_at=now, reason=reason)
        session.add(current)
        _set_status(session, item, "repair", now)
        opened = True
    else:
        outcome = body["outcome"]
        if outcome not in rules.OUTCOMES:
            raise field_error("outcome", _l("must be repaired or written_off"))
        if current is None:
            raise Conflict(_l("The item %(code)s has no open repair.", code=item.code),
                           code="no_open_repair")
        current.closed_at, current.closed_by, current.outcome = now, actor, outcome
        current.note = _text(body, "note", MAX_INSPECTION_NOTE)
        _set_status(session, item, rules.repair_closed(outcome).status, now)
        opened = False
    session.flush()
    answer = _repair_json(current, item)
    audit.record(session, actor=actor, action="depot.repair_open" if opened else
                 "depot.repair_close", entity_type="depot_item", entity_id=item.code, before=before,
                 after=answer)
    return answer, opened


def inspections_due(session: Session, days: int, settings: Settings,
                    now: datetime) -> list[dict[str, Any]]:
    """Items whose inspection is due within `days` (or overdue), soonest first."""
    today = today_of(settings, now)
    rows = session.execute(
        select(Item.code, Item.status, Item.inspection_due, ItemType.code, ItemType.name_zh,
               ItemType.name_en, Bin.path)
        .join(ItemType, ItemType.id == Item.type_id).outerjoin(Bin, Bin.id == Item.bin_id)
        .where(Item.inspection_due <= today + timedelta(days=days),
               Item.status.not_in(("lost", "retired")))
        .order_by(Item.inspection_due, Item.code).limit(MAX_LIST))
    return [{"code": code, "status": status, "inspection_due": iso(due),
             "days_left": (due - today).days, "overdue": due < today, "type": type_code,
             "name_zh": name_zh, "name_en": name_en, "bin": path}
            for code, status, due, type_code, name_zh, name_en, path in rows]


# --- readiness -------------------------------------------------------------------------------

def _count(condition) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def readiness_columns(today: date) -> tuple[Any, ...]:
    """The item counts of readiness as labelled SQL aggregates (serviceable, out, repair,
    inspection_overdue, expired, lost, total), for a query grouped as its caller needs (per
    type here, per site and type on the depots layer)."""
    active = Item.status.not_in(("lost", "retired"))
    return (_count(serviceable(today)).label("serviceable"),
            _count(Item.status == "out").label("out"),
            _count(Item.status.in_(("repair", "unserviceable"))).label("repair"),
            _count(and_(active, Item.inspection_due < today)).label("inspection_overdue"),
            _count(and_(active, Item.expires < today)).label("expired"),
            _count(Item.status == "lost").label("lost"),
            _count(active).label("total"))


def readiness(session: Session, *, site: str | None, category: str | None, settings: Settings,
              now: datetime) -> dict[str, Any]:
    """Per type: serviceable in stock, out, in repair or unserviceable, inspection overdue,
    expired, lost, bulk stock and whether it is below its minimum (SQL aggregates)."""
    today = today_of(settings, now)
    site_row = None
    if site is not None:
        site_row = session.scalar(select(Site).where(Site.code == site.upper()))
        if site_row is None:
            raise NotFound(_l("There is no depot site %(code)s.", code=site), code="not_found")
    items = select(Item.type_id, *readiness_columns(today)).group_by(Item.type_id)
    stock = select(Stock.type_id, func.sum(Stock.quantity).label("quantity")).group_by(
        Stock.type_id)
    if site_row is not None:
        items = items.where(_site_of_items(site_row.id))
        stock = stock.where(Stock.bin_id.in_(select(Bin.id).where(Bin.site_id == site_row.id)))
    types = select(ItemType).order_by(ItemType.category, ItemType.code)
    if category is not None:
        types = types.where(ItemType.category == category)
    counts = {row.type_id: row for row in session.execute(items)}
    quantities = {row.type_id: row.quantity for row in session.execute(stock)}
    result = []
    for kind in session.scalars(types):
        row = counts.get(kind.id)
        quantity = quantities.get(kind.id)
        if row is None and quantity is None and site_row is not None:
            continue  # a type this site keeps none of
        entry = {"type": kind.code, "name_zh": kind.name_zh, "name_en": kind.name_en,
                 "category": kind.category, "serialized": kind.serialized, "unit": kind.unit}
        for name in ("serviceable", "out", "repair", "inspection_overdue", "expired", "lost",
                     "total"):
            entry[name] = int(getattr(row, name)) if row is not None else 0
        if kind.serialized:
            # The minimum of a serialized type counts what could go out now.
            entry.update(stock=None, reorder_min=number(kind.reorder_min),
                         below_min=entry["serviceable"] < kind.reorder_min)
        else:
            have = quantity if quantity is not None else Decimal(0)
            entry.update(stock=number(have), reorder_min=number(kind.reorder_min),
                         below_min=have < kind.reorder_min)
        result.append(entry)
    return {"site": site_row.code if site_row is not None else None, "category": category,
            "date": today.isoformat(), "items": result}


# --- jobs' notices ---------------------------------------------------------------------------

OVERDUE_TEXT = _l("Check-out %(id)s to %(holder)s was due back at %(due)s; %(lines)d lines are "
                  "still out.")
HOLDER_TEXT = {"member": _l("member %(code)s"), "team": _l("team %(code)s"),
               "incident": _l("incident %(code)s")}
EXPIRING_TEXT = _l("%(name)s %(code)s expires on %(expires)s, in %(days)d days.")
EXPIRED_TEXT = _l("%(name)s %(code)s expired on %(expires)s; it cannot go out.")


def _both(message, **values: Any) -> dict[str, str]:
    text = {}
    for short, locale in LANGUAGES.items():
        with force_locale(locale):
            text[short] = str(message) % {k: v[short] if isinstance(v, dict) else v
                                          for k, v in values.items()}
    return text


def overdue_notices(session: Session, settings: Settings, now: datetime,
                    most: int) -> list[dict[str, Any]]:
    """A notice for each open check-out past its due time and not reminded within REMIND_EVERY
    (a daily reminder while it stays out; at most `most`), each marked reminded by a conditional
    UPDATE on the time it was last reminded (two job runs never send one twice)."""
    records = session.scalars(
        select(Checkout).where(Checkout.closed_at.is_(None), Checkout.due < now,
                               or_(Checkout.reminded_at.is_(None),
                                   Checkout.reminded_at <= now - REMIND_EVERY))
        .order_by(Checkout.due, Checkout.id).limit(most)).all()
    lines = _lines_of(session, [r.id for r in records])
    zone = ZoneInfo(settings.depot.timezone)
    fresh = []
    for record in records:
        last = (Checkout.reminded_at.is_(None) if record.reminded_at is None
                else Checkout.reminded_at == record.reminded_at)
        marked = session.execute(
            update(Checkout).where(Checkout.id == record.id, last)
            .values(reminded_at=now).execution_options(synchronize_session=False))
        if marked.rowcount != 1:
            continue
        open_lines = [line for line in lines[record.id] if line["returned_at"] is None]
        holder = _both(HOLDER_TEXT[record.to_kind], code=record.to_code)
        local_due = record.due.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        fresh.append({
            "kind": "checkout_overdue", "key": f"checkout:{record.id}",
            "text": _both(OVERDUE_TEXT, id=record.id, holder=holder, due=local_due,
                          lines=len(open_lines)),
            "checkout": record.id, "to": {"kind": record.to_kind, "code": record.to_code},
            "due": iso(record.due),
            "items": [line["item"] or line["type"] for line in open_lines]})
        audit.record(session, actor=HUB, action="depot.overdue_notice", entity_type="checkout",
                     entity_id=record.id, after={"due": iso(record.due)})
    return fresh


def expiry_notices(session: Session, settings: Settings, now: datetime,
                   most: int) -> list[dict[str, Any]]:
    """A notice for each item of an expiry-watched type expiring within expiry_warn_days (or
    expired), once per item and expiry date: the audit entry of the notice is the mark (the
    depot's tables keep none)."""
    today = today_of(settings, now)
    horizon = today + timedelta(days=settings.depot.expiry_warn_days)
    rows = session.execute(
        select(Item.code, Item.expires, ItemType.code, ItemType.name_zh, ItemType.name_en)
        .join(ItemType, ItemType.id == Item.type_id)
        .where(ItemType.expiry_watch.is_(True), Item.expires <= horizon,
               Item.status.not_in(("lost", "retired")))
        .order_by(Item.expires, Item.code)).all()
    if not rows:
        return []
    sent = {(entity, after) for entity, after in session.execute(
        select(AuditEntry.entity_id, AuditEntry.after).where(
            AuditEntry.entity_type == "depot_item", AuditEntry.action == "depot.expiry_notice",
            AuditEntry.entity_id.in_([r[0] for r in rows])))}
    fresh = []
    for code, expires, type_code, name_zh, name_en in rows:
        mark = audit.canonical({"expires": expires.isoformat()})
        if (code, mark) in sent:
            continue
        days = (expires - today).days
        message = EXPIRED_TEXT if days < 0 else EXPIRING_TEXT
        fresh.append({
            "kind": "item_expired" if days < 0 else "item_expiring",
            "key": f"expiry:{code}:{expires.isoformat()}",
            "text": _both(message, name={"zh": name_zh, "en": name_en or name_zh}, code=code,
                          expires=expires.isoformat(), days=days),
            "item": code, "type": type_code, "expires": expires.isoformat(), "days_left": days})
        audit.record(session, actor=HUB, action="depot.expiry_notice", entity_type="depot_item",
                     entity_id=code, after={"expires": expires.isoformat()})
        if len(fresh) >= most:
            break
    return fresh
