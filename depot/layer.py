"""The depots on the live map and the readiness summary per site and category (issue #22
"Readiness"): where are our boats, and can they go now.

`GET /api/v1/layers/depots` (registered with maps.views.register_layer; maps never imports the
depot, DESIGN §2) is a GeoJSON FeatureCollection of the depot sites that have a location, each a
point with `code`, `name`, `township`, `problems` (how many categories need attention) and
`categories`: the site's readiness (the same numbers as `GET /api/v1/depot/readiness?site=`,
depot.checkouts.readiness, whose availability rule and counts this module uses) summed per
category, boats first. The map's module is
./static/depots_layer.js; the office home page's panel is ./static/readiness.js. Both refetch
on `depot` events (depot.live).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from depot import checkouts
from depot.models import CATEGORIES, Bin, Item, ItemType, Site, Stock
from dispatch.core.db import utcnow

# "Where are our boats": boats first, then the catalogue's order.
CATEGORY_ORDER = ("boat", *(c for c in CATEGORIES if c != "boat"))
COUNTS = ("serviceable", "out", "repair", "inspection_overdue", "expired", "lost", "total")
# What makes a category need attention (the panel and the popup mark the same cells):
# nothing of it can go out though the site keeps some, an inspection overdue, something expired,
# a type below its minimum.
PROBLEMS = ("none_ready", "inspection_overdue", "expired", "below_min")
MAX_SITES = 500


def by_category(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Readiness entries (one per type) summed per category, in CATEGORY_ORDER; each with the
    number of its types, how many are below their minimum, and its problems."""
    sums: dict[str, dict[str, Any]] = {}
    for entry in entries:
        row = sums.setdefault(entry["category"], {
            "category": entry["category"], "types": 0, "below_min": 0, "stock_types": 0,
            **dict.fromkeys(COUNTS, 0)})
        row["types"] += 1
        row["below_min"] += bool(entry["below_min"])
        row["stock_types"] += not entry["serialized"]
        for name in COUNTS:
            row[name] += entry[name]
    result = []
    for category in CATEGORY_ORDER:
        row = sums.get(category)
        if row is None:
            continue
        row["problems"] = [p for p in PROBLEMS if (
            row["total"] > 0 and row["serviceable"] == 0 if p == "none_ready" else row[p] > 0)]
        result.append(row)
    return result


def _per_site(session: Session, today: date) -> tuple[dict, dict]:
    """Item counts per (site, type) and stock per (site, type), in two grouped queries. An item
    counts at the site of its bin and at its home site, once at each, as in
    depot.checkouts.readiness(site=…)."""
    placed = union(
        select(Item.id.label("item_id"), Bin.site_id.label("site_id"))
        .join(Bin, Bin.id == Item.bin_id),
        select(Item.id.label("item_id"), Item.home_site_id.label("site_id"))
        .where(Item.home_site_id.is_not(None))).subquery()
    items = (select(placed.c.site_id, Item.type_id, *checkouts.readiness_columns(today))
        .join(Item, Item.id == placed.c.item_id).group_by(placed.c.site_id, Item.type_id))
    stock = (select(Bin.site_id, Stock.type_id, func.sum(Stock.quantity))
             .join(Bin, Bin.id == Stock.bin_id).group_by(Bin.site_id, Stock.type_id))
    counts = {(row.site_id, row.type_id): row for row in session.execute(items)}
    quantities = {(site, kind): qty for site, kind, qty in session.execute(stock)}
    return counts, quantities


def _entry(kind: ItemType, row, quantity) -> dict[str, Any]:
    """One type's readiness at a site, as depot.checkouts.readiness gives it."""
    entry = {"type": kind.code, "name_zh": kind.name_zh, "name_en": kind.name_en,
             "category": kind.category, "serialized": kind.serialized, "unit": kind.unit}
    for name in COUNTS:
        entry[name] = int(getattr(row, name)) if row is not None else 0
    if kind.serialized:
        entry.update(stock=None, reorder_min=checkouts.number(kind.reorder_min),
                     below_min=entry["serviceable"] < kind.reorder_min)
    else:
        have = quantity if quantity is not None else Decimal(0)
        entry.update(stock=checkouts.number(have), reorder_min=checkouts.number(kind.reorder_min),
                     below_min=have < kind.reorder_min)
    return entry


def site_entries(session: Session, today: date, category: str | None = None,
                 ) -> list[tuple[Site, list[dict[str, Any]]]]:
    """Every site (by code, at most MAX_SITES) with its readiness entries, one per type it
    keeps (of `category` only, when given): the items of `GET /api/v1/depot/readiness?site=`
    for each, from two grouped queries for all sites (a prefecture has 103 depots; asking each
    in turn took 0.75 s)."""
    counts, quantities = _per_site(session, today)
    types = select(ItemType).order_by(ItemType.category, ItemType.code)
    if category is not None:
        types = types.where(ItemType.category == category)
    kinds = session.scalars(types).all()
    sites = session.scalars(select(Site).order_by(Site.code).limit(MAX_SITES)).all()
    return [(site, [_entry(kind, counts.get((site.id, kind.id)),
                           quantities.get((site.id, kind.id)))
                    for kind in kinds
                    if (site.id, kind.id) in counts or (site.id, kind.id) in quantities])
            for site in sites]


def site_summaries(session: Session) -> list[tuple[Site, list[dict[str, Any]]]]:
    """Every site with its readiness per category (site_entries summed by by_category)."""
    today = checkouts.today_of(current_app.config["SETTINGS"], utcnow())
    return [(site, by_category(entries)) for site, entries in site_entries(session, today)]


def _township_codes(session: Session) -> dict[int, str]:
    from sqlalchemy import column, table

    townships = table("townships", column("id"), column("code"))
    return dict(session.execute(select(townships.c.id, townships.c.code)).all())


def _inside(bbox, lon: float, lat: float) -> bool:
    return bbox is None or (bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3])


def depots_layer(session: Session, bbox) -> Iterator[str]:
    """The depots layer: each located site as a point with its readiness per category."""
    townships = _township_codes(session)
    features = []
    for site, categories in site_summaries(session):
        if site.location is None:
            continue  # a site without a place is in the panel, not on the map
        point = to_shape(site.location)
        if not _inside(bbox, point.x, point.y):
            continue
        features.append({
            "type": "Feature", "id": site.code,
            "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
            "properties": {
                "code": site.code, "name": site.name,
                "township": townships.get(site.township_id),
                "problems": sum(bool(c["problems"]) for c in categories),
                "categories": categories}})
    yield '{"type":"FeatureCollection","features":['
    for n, feature in enumerate(features):
        yield ("," if n else "") + json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
    yield f'],"numberReturned":{len(features)},"truncated":false}}'
