"""Scanning (DESIGN §5 "Depot (contract)": "a code resolves to an item, a member, a team or a
kit; a code of the wrong kind for the step is refused with the reason"). Plain functions taking a
session: what a code typed, sent by a USB wedge scanner or decoded from a label's QR code names,
with what the keeper's pages need to show it.

A scanned code arrives with the scanner's trailing CR/LF and whatever whitespace a person typed;
codes are case-insensitive (stored in upper case). One code may name things of several kinds (an
item and a team need not avoid each other's codes): the step says which kinds it wants, and the
first wanted kind the code names is the answer. Depot kinds are looked up first, then the
kernel's code directory (members and teams, which the roster fills: the depot never imports it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from depot import checkouts, rules, service
from depot.models import Bin, Checkout, Item, ItemType, Kit, Site, Stock
from dispatch.core import directory
from dispatch.core.codes import is_code
from dispatch.core.errors import HubError, parameter_error
from dispatch.core.settings import Settings

# What a step may ask for, in the order a code is looked up. `stock` is a bulk type's code (a
# stock line with a quantity); `type` (a serialized type: its items carry their own labels) and
# `site` are only ever found, never wanted.
WANTED = ("item", "kit", "stock", "member", "team", "incident")
HOLDERS = ("member", "team", "incident")
# A scan longer than this is no code (a label's QR code holds the code alone).
MAX_SCAN = 200
# A holder's open check-outs shown on the check-in page; a stock type's bins.
MAX_OPEN = 20
MAX_BINS = 20

KIND_WORDS = {
    "item": _l("an item"),
    "kit": _l("a kit"),
    "stock": _l("bulk stock"),
    "type": _l("an equipment type (scan the item's own label)"),
    "site": _l("a depot site"),
    "member": _l("a member"),
    "team": _l("a team"),
    "incident": _l("an incident"),
}


class UnknownCode(HubError):
    """404: the code names nothing the hub knows."""

    status = 404
    code = "unknown_code"


class WrongKind(HubError):
    """409: the code names something, but not what this step takes."""

    status = 409
    code = "wrong_kind"


def clean(raw: str) -> str:
    """The code in a scan: surrounding whitespace and the scanner's CR/LF trimmed, upper case."""
    return raw.strip().upper()


def wanted_kinds(raw: str | None) -> tuple[str, ...]:
    """The kinds a step asks for (`want=member,team`), in lookup order; all when absent."""
    if raw is None or raw.strip() == "":
        return WANTED
    asked = [part.strip() for part in raw.split(",")]
    unknown = [part for part in asked if part not in WANTED]
    if unknown or len(asked) > len(WANTED):
        raise parameter_error("want", _l("must be one or more of %(kinds)s, separated by commas",
                                         kinds=", ".join(WANTED)))
    return tuple(kind for kind in WANTED if kind in asked)


def _name(name_zh: str, name_en: str) -> str:
    """A type's name in the request's language (Chinese first)."""
    locale = get_locale()
    if locale is not None and locale.language != "zh" and name_en:
        return name_en
    return name_zh


def _or(kinds: Iterable[str]) -> str:
    words = [str(KIND_WORDS[k]) for k in kinds]
    return str(_l(" or ")).join(words)


# --- what a code names, kind by kind ------------------------------------------------------------

class _Scan:
    """One scan being resolved: the session, the code, the clock, an optional site."""

    def __init__(self, session: Session, code: str, settings: Settings, now: datetime,
                 site: Site | None):
        self.session, self.code, self.settings, self.now, self.site = (
            session, code, settings, now, site)
        self.today = checkouts.today_of(settings, now)
        self._type: ItemType | None | bool = False  # False: not looked up yet

    def type(self) -> ItemType | None:
        if self._type is False:
            self._type = self.session.scalar(select(ItemType).where(ItemType.code == self.code))
        return self._type

    # Each finder answers the scan's JSON for its kind, or None when the code is no such thing.

    def item(self) -> dict[str, Any] | None:
        found = self.session.scalar(select(Item).where(Item.code == self.code))
        if found is None:
            return None
        answer = service.describe_item(self.session, found)
        reason = rules.unavailable_reason(
            rules.ItemState(found.status, found.inspection_due, found.expires), self.today)
        kind = answer["type"]
        return {**answer, "name": _name(kind["name_zh"], kind["name_en"]),
                "available": reason is None, "reason": reason}

    def kit(self) -> dict[str, Any] | None:
        found = self.session.scalar(select(Kit).where(Kit.code == self.code))
        if found is None:
            return None
        codes = [str(line["type"]).upper() for line in found.lines]
        types = {t.code: t for t in self.session.scalars(
            select(ItemType).where(ItemType.code.in_(codes)))} if codes else {}
        lines = []
        for line in found.lines:
            kind = types.get(str(line["type"]).upper())
            ready = self._ready(kind) if kind is not None else Decimal(0)
            count = Decimal(str(line["count"]))
            lines.append({
                "type": line["type"], "count": line["count"],
                "name": _name(kind.name_zh, kind.name_en) if kind else line["type"],
                "name_zh": kind.name_zh if kind else "", "name_en": kind.name_en if kind else "",
                "serialized": kind.serialized if kind else True,
                "unit": kind.unit if kind else "", "ready": checkouts.number(ready),
                "short": ready < count})
        return {"code": found.code, "name": found.name, "lines": lines,
                "short": any(line["short"] for line in lines),
                "site": self.site.code if self.site else None}

    def _ready(self, kind: ItemType) -> Decimal:
        """What the depot (or the scan's site) could give of a type now: serviceable items, or
        the stock in its bins."""
        if kind.serialized:
            # The SQL form of rules.unavailable_reason() being None (as check-out picks a kit).
            query = select(func.count()).select_from(Item).where(
                Item.type_id == kind.id, Item.status == "in_stock",
                or_(Item.inspection_due.is_(None), Item.inspection_due >= self.today),
                or_(Item.expires.is_(None), Item.expires >= self.today))
            if self.site is not None:
                query = query.where(or_(
                    Item.home_site_id == self.site.id,
                    Item.bin_id.in_(select(Bin.id).where(Bin.site_id == self.site.id))))
            return Decimal(self.session.scalar(query) or 0)
        query = select(func.coalesce(func.sum(Stock.quantity), 0)).join(
            Bin, Bin.id == Stock.bin_id).where(Stock.type_id == kind.id)
        if self.site is not None:
            query = query.where(Bin.site_id == self.site.id)
        return Decimal(str(self.session.scalar(query) or 0))

    def stock(self) -> dict[str, Any] | None:
        kind = self.type()
        if kind is None or kind.serialized:
            return None
        query = (select(Bin.path, Site.code, Stock.quantity)
                 .join(Bin, Bin.id == Stock.bin_id).join(Site, Site.id == Bin.site_id)
                 .where(Stock.type_id == kind.id, Stock.quantity > 0))
        if self.site is not None:
            query = query.where(Bin.site_id == self.site.id)
        bins = [{"bin": path, "site": site, "quantity": checkouts.number(qty)}
                for path, site, qty in self.session.execute(
                    query.order_by(Stock.quantity.desc(), Bin.path).limit(MAX_BINS))]
        return {"code": kind.code, "name": _name(kind.name_zh, kind.name_en),
                "name_zh": kind.name_zh, "name_en": kind.name_en, "category": kind.category,
                "unit": kind.unit, "whole_units": kind.whole_units, "bins": bins,
                "available": bool(bins), "reason": None if bins else "insufficient_stock"}

    def type_of_items(self) -> dict[str, Any] | None:
        kind = self.type()
        if kind is None or not kind.serialized:
            return None
        return {"code": kind.code, "name": _name(kind.name_zh, kind.name_en)}

    def site_named(self) -> dict[str, Any] | None:
        found = self.session.scalar(select(Site).where(Site.code == self.code))
        return None if found is None else {"code": found.code, "name": found.name}

    def holder(self, kind: str) -> dict[str, Any] | None:
        entry = directory.describe(self.session, kind, self.code)
        if entry is None:
            if not directory.exists(self.session, kind, self.code):
                return None  # not there, or no package keeps this kind (incidents for now)
            entry = directory.Entry(self.code, self.code)
        return {"code": entry.code, "name": entry.name, "part_of": entry.part_of,
                "checkouts": self._open_checkouts(kind, entry.code.upper())}

    def _open_checkouts(self, kind: str, code: str) -> list[dict[str, Any]]:
        """The holder's open check-outs, oldest first, each line with its type's name."""
        records = self.session.scalars(
            select(Checkout).where(Checkout.to_kind == kind, Checkout.to_code == code,
                                   Checkout.closed_at.is_(None))
            .order_by(Checkout.at, Checkout.id).limit(MAX_OPEN)).all()
        described = [checkouts.describe(self.session, r, self.now) for r in records]
        codes = {line["type"] for c in described for line in c["lines"]}
        names = {t.code: _name(t.name_zh, t.name_en) for t in self.session.scalars(
            select(ItemType).where(ItemType.code.in_(codes)))} if codes else {}
        for record in described:
            for line in record["lines"]:
                line["name"] = names.get(line["type"], line["type"])
        return described

    def finders(self) -> list[tuple[str, Callable[[], dict[str, Any] | None]]]:
        """(kind, finder) in lookup order: the depot's own kinds, then the directory's."""
        return [("item", self.item), ("kit", self.kit), ("stock", self.stock),
                ("type", self.type_of_items), ("site", self.site_named),
                *[(kind, lambda kind=kind: self.holder(kind)) for kind in HOLDERS]]


def resolve(session: Session, raw: str, want: tuple[str, ...], *, settings: Settings,
            now: datetime, site: Site | None = None) -> dict[str, Any]:
    """What the scanned `raw` names among the kinds `want`ed: `{"kind", "code", "name", …}`.
    404 `unknown_code` when it names nothing; 409 `wrong_kind` (with the `kind` it is) when it
    names only things of other kinds."""
    code = clean(raw)
    if not is_code(code, checkouts.CODE_LEN):
        raise UnknownCode(_l("%(code)s is not a code the hub knows: check the label, or type "
                             "the code again.", code=code[:40]), details={"code": code[:40]})
    scan = _Scan(session, code, settings, now, site)
    other = None
    for kind, finder in scan.finders():
        if kind not in want and other is not None:
            continue  # already known to be of another kind: look only for wanted kinds
        found = finder()
        if found is None:
            continue
        if kind in want:
            return {"kind": kind, **found}
        other = other or kind
    if other is not None:
        raise WrongKind(_l("%(code)s is %(found)s, %(expected)s is expected.", code=code,
                           found=KIND_WORDS[other], expected=_or(want)),
                        details={"code": code, "kind": other, "expected": list(want)})
    raise UnknownCode(_l("The hub knows no %(expected)s with the code %(code)s: check the label, "
                         "or type the code again.", code=code, expected=_or(want)),
                      details={"code": code})


def find_site(session: Session, raw: str | None) -> Site | None:
    """The site a scan is limited to (`?site=`), None when not given; 400 when there is none."""
    if raw is None or raw == "":
        return None
    code = raw.strip().upper()
    found = session.scalar(select(Site).where(Site.code == code)) \
        if is_code(code, checkouts.CODE_LEN) else None
    if found is None:
        raise parameter_error("site", _l("must be the code of a depot site"))
    return found
