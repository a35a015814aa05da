"""Printable QR labels for serialized items (DESIGN §5 "Depot (contract)": `GET
/api/v1/depot/labels?items=CODE,CODE…&layout=a4-3x8|62mm`, or `?type=`, `?bin=`, `?site=` for
every item of one, capped at MAX_LABELS).

The answer is a print-ready HTML page: each label holds a QR code of the item's code (an inline
SVG drawn here by segno, so the office needs no network and no JavaScript to print), the code in
large type, the type's Chinese name and the item's bin (its home site when it has no bin). Two
layouts (LAYOUTS): an A4 portrait sheet of 3 × 8 labels of 70 × 37 mm, the standard sheet of
24 (the sheet's own 0.5 mm top and bottom margins are the page's @page margins), and one label
of 62 × 29 mm per page for a Brother-style 62 mm label printer (continuous tape, or its 62 × 29
die-cut labels). Each layout's @page rule is in its own stylesheet (static/labels-*.css): the
page links only the one it prints.

Codes are case-insensitive and stored in upper case (depot.models): the QR holds the stored code,
which is what the scan field looks up. It is always a full QR code (not a Micro QR, which phone
cameras and browser decoders do not read), at error correction level Q or better (segno raises
the level while the version stays the same): labels get scuffed in a depot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import segno
from flask import Blueprint, Flask, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from depot import fields
from depot.choices import READERS, ItemStatus
from depot.models import Bin, Item, ItemType, Site
from dispatch.core import auth
from dispatch.core.codes import is_code
from dispatch.core.db import db
from dispatch.core.errors import BadRequest, NotFound, parameter_error

bp = Blueprint("depot_labels", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/depot-labels")

# At most this many labels at once: 20 A4 sheets (a site's items are printed bin by bin, or a
# type at a time, beyond that).
MAX_LABELS = 480
# The QR's quiet zone, in modules (ISO/IEC 18004 asks for 4).
QUIET_ZONE = 4
SELECTORS = ("type", "bin", "site")


@dataclass(frozen=True)
class Layout:
    """How labels lie on the printed page."""

    name: str
    per_page: int
    columns: int
    description: Any


LAYOUTS = {
    "a4-3x8": Layout("a4-3x8", 24, 3, _l("A4 sheet, 3 × 8 labels of 70 × 37 mm")),
    "62mm": Layout("62mm", 1, 1, _l("62 mm label printer, one 62 × 29 mm label each")),
}
DEFAULT_LAYOUT = "a4-3x8"


# The code's type size by its length (CSS classes label-code-<size>, in mm per layout), so that
# a code of typical letters stays on one line beside the QR: no style attribute may set it (CSP).
CODE_SIZES = ((9, "l"), (12, "m"), (16, "s"))


@dataclass(frozen=True)
class Label:
    """What one label shows."""

    code: str
    name_zh: str
    place: str
    qr: Markup

    @property
    def size(self) -> str:
        """The code's type size (the longest codes wrap, in the smallest)."""
        return next((size for longest, size in CODE_SIZES if len(self.code) <= longest), "xs")


def qr_svg(code: str) -> Markup:
    """The QR code of `code` as an inline SVG (a viewBox in modules, no fixed size: the
    stylesheet sizes it), with its quiet zone. Safe markup: it holds no text of the code."""
    symbol = segno.make_qr(code, error="q")
    return Markup(symbol.svg_inline(scale=1, border=QUIET_ZONE, omitsize=True, svgclass="qr",
                                    lineclass=None, dark="#000"))


# --- what to print ----------------------------------------------------------------------------

def _codes(raw: str) -> list[str]:
    """The codes of `?items=`, in the order given (a repeated code prints repeated labels)."""
    codes = [part.strip() for part in raw.split(",") if part.strip()]
    if not codes:
        raise parameter_error("items", _l("must list item codes, separated by commas"))
    if len(codes) > MAX_LABELS:
        raise too_many(len(codes))
    return codes


def too_many(count: int) -> BadRequest:
    return BadRequest(_l("%(count)d labels asked for: at most %(max)d print at once. Print a "
                         "bin, a type or a list of codes at a time.", count=count,
                         max=MAX_LABELS), code="too_many_labels",
                      details={"count": count, "max": MAX_LABELS})


def _rows(session: Session, where) -> list[tuple[str, str, str | None, str | None]]:
    """(code, type name, bin path, home site code) of the items `where` selects."""
    query = (select(Item.code, ItemType.name_zh, Bin.path, Site.code)
             .join(ItemType, ItemType.id == Item.type_id)
             .outerjoin(Bin, Bin.id == Item.bin_id)
             .outerjoin(Site, Site.id == Item.home_site_id)
             .where(where))
    # Items in no bin after the others, on both databases (NULLs sort first on SQLite only).
    query = query.order_by(Bin.path.is_(None), Bin.path, Item.code)
    return [tuple(row) for row in session.execute(query)]


def by_codes(session: Session, codes: Sequence[str]) -> list[tuple]:
    """The items of `codes` in their order (404 `not_found` naming every unknown code)."""
    wanted = {c.upper() for c in codes if is_code(c, fields.CODE_MAX)}
    found = {row[0]: row for row in _rows(session, Item.code.in_(wanted))} if wanted else {}
    unknown = list(dict.fromkeys(c for c in codes if c.upper() not in found))
    if unknown:
        raise NotFound(_l("No item has the code %(codes)s.", codes=", ".join(unknown)),
                       code="not_found", details={"codes": unknown})
    return [found[c.upper()] for c in codes]


UNKNOWN = {
    "type": lambda code: _l("There is no item type with the code %(code)s.", code=code),
    "bin": lambda code: _l("There is no bin %(path)s.", path=code),
    "site": lambda code: _l("There is no depot site with the code %(code)s.", code=code),
}


def _condition(session: Session, name: str, value: str):
    """The WHERE clause of one of `?type=`, `?bin=` (that bin and those under it) and
    `?site=` (items in its bins, or of it when in no bin); 404 when it names nothing."""
    upper = value.upper()
    if name == "type":
        found = session.scalar(select(ItemType.id).where(ItemType.code == upper))
        clause = Item.type_id == found
    elif name == "bin":
        inside = or_(Bin.path == upper, Bin.path.startswith(upper + "/", autoescape=True))
        found = session.scalar(select(func.count()).select_from(Bin).where(inside)) or None
        clause = Item.bin_id.in_(select(Bin.id).where(inside))
    else:
        found = session.scalar(select(Site.id).where(Site.code == upper))
        clause = or_(Item.bin_id.in_(select(Bin.id).where(Bin.site_id == found)),
                     and_(Item.bin_id.is_(None), Item.home_site_id == found))
    if found is None:
        raise NotFound(UNKNOWN[name](value), code="not_found",
                       details={"parameter": name, "code": value})
    return clause


def by_filters(session: Session, wanted: dict[str, str]) -> list[tuple]:
    """Every item (but retired ones) of the type, bin and site given, together; by bin, then
    by code, as a keeper walks the shelves. 400 `too_many_labels` beyond MAX_LABELS."""
    where = and_(Item.status != ItemStatus.RETIRED,
                 *[_condition(session, name, value) for name, value in wanted.items()])
    count = session.scalar(select(func.count()).select_from(Item).outerjoin(
        Bin, Bin.id == Item.bin_id).where(where))
    if count > MAX_LABELS:
        raise too_many(count)
    return _rows(session, where)


def _parameter(name: str, limit: int) -> str | None:
    value = request.args.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > limit:
        raise parameter_error(name, _l("must be at most %(max)d characters", max=limit))
    return value.strip()


def _layout() -> Layout:
    name = request.args.get("layout") or DEFAULT_LAYOUT
    if name not in LAYOUTS:
        raise parameter_error("layout", _l("must be one of %(choices)s",
                                           choices=", ".join(LAYOUTS)))
    return LAYOUTS[name]


# The longest `?items=` read (gunicorn takes a request line of at most 4,094 bytes anyway).
ITEMS_MAX = 4096


def _selection(session: Session) -> list[tuple]:
    items = _parameter("items", ITEMS_MAX)
    limits = {"type": fields.CODE_MAX, "bin": fields.PATH_MAX, "site": fields.CODE_MAX}
    wanted = {name: value for name in SELECTORS
              if (value := _parameter(name, limits[name])) is not None}
    if items is not None and wanted:
        raise parameter_error("items", _l("lists codes: leave out type, bin and site with it"))
    if items is not None:
        return by_codes(session, _codes(items))
    if not wanted:
        raise parameter_error("items", _l("is required: the item codes to print, or a type, "
                                          "a bin or a site whose items to print"))
    return by_filters(session, wanted)


def pages(labels: Sequence[Label], layout: Layout) -> list[list[Label]]:
    """The labels cut into printed pages of the layout."""
    size = layout.per_page
    return [list(labels[i:i + size]) for i in range(0, len(labels), size)]


@bp.get("/api/v1/depot/labels")
@auth.roles(*READERS)
def labels_page():
    """Print-ready QR labels (HTML) of the items listed or of a type, bin or site."""
    layout = _layout()
    rows = _selection(db.session)
    labels = [Label(code=code, name_zh=name, place=path or site or "", qr=qr_svg(code))
              for code, name, path, site in rows]
    others = {name: url_for("depot_labels.labels_page", **{**request.args.to_dict(),
                                                            "layout": name})
              for name in LAYOUTS}
    return render_template("depot/labels.html", layout=layout, pages=pages(labels, layout),
                           count=len(labels), layouts=LAYOUTS, others=others)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
