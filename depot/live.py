"""The depot's live events (DESIGN §5 Socket.IO `depot`), built in this module only and sent after
the commit of the change they announce, to every signed-in person (everyone reads readiness).

One shape for every change, the catalogue's and the keepers' alike:

    {"id", "ts",                      (stamped by dispatch.core.realtime.notify)
     "kind": "site" | "bin" | "type" | "item" | "stock" | "kit"
             | "checkout" | "inspection" | "repair",
     "action": "create" | "update" | "import"                  (site … kit)
               | "receipt" | "issue" | "return" | "adjust" | "write_off"   (stock moves)
               | "out" | "in"                                  (checkout: a check-out, a check-in)
               | "create"                                      (inspection)
               | "open" | "close",                             (repair)
     "codes": [...],      what changed: site codes, bin paths, type, item or kit codes, a stock
                          line as "TYPE@BIN"; sorted, at most LISTED of them
     "count": n,          how many codes there were (an import of 5,000 items lists 200)
     "sites": [...],      the depot sites where something changed (an item's bin's site and its
                          home site)
     "types": [...],      the catalogue types concerned
     "checkouts": [...]}  the check-out ids a check-out or check-in touched, else []

It says what changed and where, never who holds what (a viewer may read readiness, not the
check-outs): a page refetches what it shows when an event names its site or one of its types
(the office's readiness panel, ./static/readiness.js; the depots layer, ./static/depots_layer.js).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from depot.models import Bin, Item, ItemType, Site
from dispatch.core import realtime

EVENT = "depot"
# Every signed-in person (DESIGN §5 "Depot": everyone reads readiness): the office's panel and
# map, and the keepers' pages.
ROOMS = (realtime.TOWNSHIP,)
# An event lists at most this many codes (an import of 5,000 items says how many, not which).
LISTED = 200


def change(kind: str, action: str, *, codes: Iterable[str] = (), sites: Iterable[str] = (),
           types: Iterable[str] = (), checkouts: Iterable[int] = ()) -> dict[str, Any]:
    """The payload of one `depot` event: what kind of thing changed, how, which, where."""
    listed = sorted(set(codes))
    return {"kind": kind, "action": action, "codes": listed[:LISTED], "count": len(listed),
            "sites": sorted(set(sites)), "types": sorted(set(types)),
            "checkouts": sorted(set(checkouts))}


def item_change(session: Session, kind: str, action: str, items: Iterable[str], *,
                stock: Iterable[tuple[str, str]] = (),
                checkouts: Iterable[int] = ()) -> dict[str, Any]:
    """The payload for a change to items (by code) and stock lines ((type, bin path)): their
    sites and types looked up (after the commit, so where the items are now)."""
    codes = sorted(set(items))
    lines = sorted(set(stock))
    sites: set[str] = set()
    types = {type_code for type_code, _path in lines}
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        rows = session.execute(
            select(ItemType.code, Bin.site_id, Item.home_site_id)
            .join(ItemType, ItemType.id == Item.type_id)
            .outerjoin(Bin, Bin.id == Item.bin_id)
            .where(Item.code.in_(chunk))).all()
        site_ids = {i for _t, bin_site, home in rows for i in (bin_site, home) if i}
        types |= {type_code for type_code, _b, _h in rows}
        if site_ids:
            sites |= set(session.scalars(select(Site.code).where(Site.id.in_(site_ids))))
    paths = {path for _type, path in lines if path}
    if paths:
        sites |= set(session.scalars(select(Site.code).join(Bin, Bin.site_id == Site.id)
                                     .where(Bin.path.in_(paths))))
    return change(kind, action, codes=[*codes, *(f"{t}@{p}" for t, p in lines)], sites=sites,
                  types=types, checkouts=checkouts)


def send(payload: dict[str, Any]) -> str:
    """Send one `depot` event to every signed-in person (after the commit); returns its id."""
    return realtime.notify(EVENT, payload, ROOMS)
