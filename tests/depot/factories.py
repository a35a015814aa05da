"""A small depot made directly through the models (the catalogue API is another slice's): one
site with two bins, boats, pumps, life jackets, extinguishers (expiry watched), sandbags and rope
in stock, a boat-team kit, and a team with a member in the roster for holders."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from depot.models import Bin, Item, ItemType, Kit, Site, Stock
from dispatch.core.db import db
from dispatch.roster.models import Member, Team

# `f.TODAY` is today in the depot's zone ([depot] timezone), read at each use (PEP 562): the
# service takes "now" from the clock, so dates are set relative to the real today, and a run
# that crosses midnight in Shanghai (16:00 UTC) must not keep yesterday's.
ZONE = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(ZONE).date()


def __getattr__(name: str):
    if name == "TODAY":
        return today()
    raise AttributeError(name)
SITE = "D1"
BIN_A = "D1/A/1/1"
BIN_B = "D1/B/1/1"

TYPES = [
    # code, name_zh, category, serialized, whole_units, every_days, expiry_watch, reorder_min
    ("BOAT", "冲锋舟", "boat", True, True, 90, False, 2),
    ("PUMP", "排水泵", "flood", True, True, 30, False, 0),
    ("JACKET", "救生衣", "flood", True, True, 180, False, 0),
    ("EXT", "灭火器", "fire", True, True, 30, True, 0),
    ("SANDBAG", "沙袋", "consumable", False, True, None, False, 500),
    ("ROPE", "救援绳", "rescue", False, False, None, False, 100),
]


def depot(items_per_type: int = 4) -> dict[str, int]:
    """The site, bins, types, items (`BOAT-1`…), stock and the kit; returns type ids by code."""
    with db.transaction() as s:
        site = Site(code=SITE, name="镇应急物资库", keeper="王")
        s.add(site)
        s.flush()
        bins = [Bin(path=BIN_A, site_id=site.id), Bin(path=BIN_B, site_id=site.id)]
        s.add_all(bins)
        s.flush()
        ids = {}
        for code, name, category, serialized, whole, every, watch, minimum in TYPES:
            kind = ItemType(code=code, name_zh=name, name_en=code.title(), category=category,
                            serialized=serialized, whole_units=whole,
                            inspection_every_days=every, expiry_watch=watch,
                            reorder_min=Decimal(minimum), checklist=["hull", "engine"]
                            if code == "BOAT" else [])
            s.add(kind)
            s.flush()
            ids[code] = kind.id
            if serialized:
                for n in range(1, items_per_type + 1):
                    s.add(Item(code=f"{code}-{n}", type_id=kind.id, serial=f"SN{code}{n}",
                               bin_id=bins[0].id, home_site_id=site.id,
                               inspection_due=today() + timedelta(days=20),
                               expires=today() + timedelta(days=400) if watch else None))
        s.add(Stock(type_id=ids["SANDBAG"], bin_id=bins[0].id, quantity=Decimal(1000)))
        s.add(Stock(type_id=ids["SANDBAG"], bin_id=bins[1].id, quantity=Decimal(300)))
        s.add(Stock(type_id=ids["ROPE"], bin_id=bins[0].id, quantity=Decimal("250.5")))
        s.add(Kit(code="KIT-BOAT", name="冲锋舟组套装", lines=[
            {"type": "BOAT", "count": 1}, {"type": "JACKET", "count": 2},
            {"type": "SANDBAG", "count": 50}]))
        team = Team(code="ZH", name="综合应急救援队")
        s.add(team)
        s.flush()
        s.add(Member(code="M001", name="李强", team_id=team.id))
        s.add(Member(code="M002", name="张伟", team_id=team.id, active=False))
    return ids


def item(code: str) -> Item:
    """The item as stored now (a fresh read)."""
    db.session.rollback()
    return db.session.scalar(select(Item).where(Item.code == code))


def set_item(code: str, **values) -> None:
    with db.transaction() as s:
        found = s.scalar(select(Item).where(Item.code == code))
        for name, value in values.items():
            setattr(found, name, value)


def stock(path: str, type_code: str) -> Decimal:
    db.session.rollback()
    return db.session.scalar(
        select(Stock.quantity).join(Bin, Bin.id == Stock.bin_id)
        .join(ItemType, ItemType.id == Stock.type_id)
        .where(Bin.path == path, ItemType.code == type_code))
