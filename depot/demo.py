"""The demo depots, for `rescuehub demo`: a catalogue of flood, fire and rescue equipment, the
demo township's two depots with ~600 items and a year of history, and for the prefecture one
depot per township, 11,292 items in all (DESIGN §1: the prefecture's consolidated depots).

Generating is pure and deterministic for a seed and a day (dates are relative to `today`, so
that whenever the demo is loaded a few inspections are overdue, a few items expire within the
month, a few are in repair or unserviceable, one expired extinguisher awaits its write-off, and
one check-out is overdue). Loading (`load_demo_depots`) inserts in bulk and skips a township
whose depot is there already, so the demo is idempotent.

The history: inspections at each type's interval over the past year (the latest one sets the
item's due date; a failed one left the item unserviceable with its repair open), closed
check-outs to the township's teams and members (more in the flood season, June to September;
some as the boat-team kit; a damaged return opened a repair that was closed), and the stock
ledger (sandbags received, issued to the teams in the flood season, returned, counted and
written off), whose sum is each bin's quantity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from geoalchemy2.elements import WKTElement
from sqlalchemy import column, insert, select, table
from sqlalchemy.orm import Session

from depot.models import (
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

SEED = 20210722
# The prefecture's consolidated depots hold this many items (DESIGN §1).
PREFECTURE_ITEMS = 11292
HISTORY_DAYS = 365
KEEPER = "demo:keeper"
_TOWNSHIPS = table("townships", column("id"), column("code"))


@dataclass(frozen=True)
class DemoType:
    """A catalogue entry and how many of it the demo township's depot holds."""

    code: str
    name_zh: str
    name_en: str
    category: str
    unit: str
    prefix: str          # item codes: T000-BT-001
    count: int           # serialized: items in the demo township; bulk: 0
    room: str            # the depot's room for it
    every_days: int | None = None
    checklist: tuple[str, ...] = ()
    expiry_watch: bool = False
    shelf_life_days: int | None = None
    reorder_min: int = 0
    serialized: bool = True
    whole_units: bool = True
    brand: str = "RH"


# Inspection intervals: boats, generators and extinguishers monthly (GB 50444 经常性检查 of
# extinguishers is monthly; boats and engines before the flood season and monthly in it), pumps
# and chainsaws every two months, radios, lights and first-aid kits quarterly, life jackets and
# buoys twice a year. Extinguishers (dry powder, 5 years to the hydrostatic test) and first-aid
# kits (medicines, 2 years) are watched for expiry.
CATALOGUE: tuple[DemoType, ...] = (
    DemoType("BOAT", "冲锋舟", "Assault boat", "boat", "艘", "BT", 6, "A", 30,
             ("船体无破损", "发动机试车正常", "油路无渗漏", "桨与锚齐全"), brand="HY"),
    DemoType("LIFEJACKET", "救生衣", "Life jacket", "flood", "件", "LJ", 160, "A", 180,
             ("浮力材料完好", "反光带齐全", "口哨在位"), brand="JS"),
    DemoType("LIFEBUOY", "救生圈", "Lifebuoy", "flood", "个", "LB", 30, "A", 180,
             ("无裂纹", "扶手索完好"), brand="JS"),
    DemoType("ROPE", "救援绳（30米）", "Rescue rope (30 m)", "rescue", "根", "RP", 40, "A", 90,
             ("绳皮无磨损", "无霉变"), brand="TS"),
    DemoType("PUMP", "排涝泵", "Drainage pump", "flood", "台", "PU", 16, "B", 60,
             ("试机出水正常", "管路接头完好"), brand="DL"),
    DemoType("GENSET", "发电机", "Generator", "rescue", "台", "GE", 12, "B", 30,
             ("启动正常", "油位", "输出电压"), brand="YM"),
    DemoType("CHAINSAW", "油锯", "Chainsaw", "rescue", "把", "CS", 14, "B", 60,
             ("链条张紧", "制动可靠", "试机"), brand="ST"),
    DemoType("SEARCHLIGHT", "强光搜索灯", "Searchlight", "rescue", "个", "SL", 30, "B", 90,
             ("充电正常", "亮度"), brand="HW"),
    DemoType("FIRSTAID", "急救包", "First-aid kit", "medical", "个", "FA", 60, "C", 90,
             ("药品在有效期内", "器材齐全"), expiry_watch=True, shelf_life_days=730,
             brand="HS"),
    DemoType("EXT", "干粉灭火器（4kg）", "Dry powder extinguisher (4 kg)", "fire", "具", "EX",
             152, "C", 30, ("压力指针在绿区", "铅封完好", "喷管无堵塞"), expiry_watch=True,
             shelf_life_days=1825, brand="MF"),
    DemoType("RADIO", "对讲机", "Handheld radio", "comms", "部", "RD", 80, "C", 90,
             ("开机与充电", "信道测试"), brand="HT"),
    DemoType("SANDBAG", "编织袋（防汛沙袋）", "Sandbag", "flood", "条", "", 0, "D",
             reorder_min=3000, serialized=False),
    DemoType("TARP", "防雨篷布", "Tarpaulin", "consumable", "块", "", 0, "D",
             reorder_min=50, serialized=False),
    DemoType("FUEL", "汽油", "Petrol", "consumable", "L", "", 0, "E", reorder_min=200,
             serialized=False, whole_units=False),
)
BY_CODE = {t.code: t for t in CATALOGUE}
SERIALIZED = tuple(t for t in CATALOGUE if t.serialized)
# The boat team's kit (a boat, its crew's life jackets, a pump, ropes, first aid, radios).
BOAT_KIT = ("BOAT-TEAM", "水上救援组套装", (("BOAT", 1), ("LIFEJACKET", 6), ("PUMP", 1),
                                           ("ROPE", 2), ("FIRSTAID", 1), ("RADIO", 2)))
# What goes out on a job besides the kit.
TAKEN_OUT = ("LIFEJACKET", "PUMP", "GENSET", "CHAINSAW", "SEARCHLIGHT", "RADIO", "ROPE",
             "LIFEBUOY")
ROOMS = {"A": "舟艇及水上救援", "B": "机具", "C": "消防医疗通讯", "D": "防汛物资", "E": "油料"}
SHELVES = 4
PER_RACK = 48
# The forward store by the river holds these of the township's boats, jackets, buoys, pumps.
FORWARD = {"BOAT": 2, "LIFEJACKET": 40, "LIFEBUOY": 10, "PUMP": 4}
# Share of a month's check-outs: the flood season (June to September) is busiest.
MONTH_WEIGHTS = (1, 1, 1, 2, 3, 6, 8, 8, 5, 2, 1, 1)
KEEPERS = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
FAULTS = ("发动机无法启动", "船底破损渗水", "出水量不足", "拉绳断裂", "外壳开裂", "电池不能充电")


@dataclass(frozen=True)
class DemoTown:
    """What the demo knows of a township: its code and name, where its depots stand (the first
    is the main depot; a second is a forward store), and its teams' and members' codes (the
    check-outs of the year went to them)."""

    code: str
    name_zh: str
    places: tuple[tuple[float, float], ...]
    teams: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


@dataclass
class DemoDepot:
    """A township's generated depots: rows ready to insert, keyed by codes."""

    town: str
    sites: list[dict[str, Any]] = field(default_factory=list)
    bins: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    inspections: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    checkouts: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)


def _index(code: str) -> int:
    digits = code.lstrip("T")
    return int(digits) if digits.isdigit() else 0


def _at(day: date, hour: float) -> datetime:
    """A local (UTC+8) day and hour as a UTC instant."""
    local = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hour - 8)
    return local.astimezone(UTC)


def _counts(total: int) -> dict[str, int]:
    """The demo township's mix scaled to `total` items (largest remainder: the sum is exact)."""
    base = sum(t.count for t in SERIALIZED)
    shares = {t.code: t.count * total / base for t in SERIALIZED}
    counts = {code: int(share) for code, share in shares.items()}
    for code in sorted(shares, key=lambda c: counts[c] - shares[c])[:total - sum(
            counts.values())]:
        counts[code] += 1
    return counts


class _Builder:
    """Generates one township's depots (see the module's docstring for what and why)."""

    def __init__(self, town: DemoTown, counts: dict[str, int], *, today: date, seed: int,
                 history: bool):
        self.town, self.counts, self.today = town, counts, today
        self.rng = np.random.default_rng([seed, _index(town.code), 22])
        self.depot = DemoDepot(town.code)
        self.history = history
        self.site = f"{town.code}-D1"
        self.forward = f"{town.code}-D2" if len(town.places) > 1 else None
        self.bins: set[str] = set()
        self.racks: dict[tuple[str, str], int] = defaultdict(int)
        back = np.arange(1, HISTORY_DAYS)
        weights = np.array([MONTH_WEIGHTS[(today - timedelta(days=int(d))).month - 1]
                            for d in back], dtype=float)
        self.days_back, self.day_weights = back, weights / weights.sum()

    def day_in_year(self, weighted: bool = False) -> date:
        if not weighted:
            return self.today - timedelta(days=int(self.rng.integers(1, HISTORY_DAYS)))
        return self.today - timedelta(days=int(self.rng.choice(self.days_back,
                                                               p=self.day_weights)))

    def build(self) -> DemoDepot:
        self.sites()
        for kind in SERIALIZED:
            self.items_of(kind)
        self.mark_out_of_service()
        if self.history:
            for item in self.depot.items:
                kind = BY_CODE[item["type"]]
                if item["inspection_due"] is not None and kind.every_days:
                    self.inspect(item, kind, item["inspection_due"]
                                 - timedelta(days=kind.every_days))
            self.checkouts()
            self.open_checkouts()
        self.stock()
        return self.depot

    # --- places ---------------------------------------------------------------------------

    def sites(self) -> None:
        names = ((self.site, f"{self.town.name_zh}应急物资储备库"),
                 (self.forward, f"{self.town.name_zh}沿河防汛前置点"))
        for n, ((code, name), (lon, lat)) in enumerate(zip(names, self.town.places,
                                                           strict=False), 1):
            surname = KEEPERS[int(self.rng.integers(len(KEEPERS)))]
            self.depot.sites.append({
                "code": code, "name": name, "lon": lon, "lat": lat,
                "keeper": f"{surname}{'建国' if n == 1 else '志强'}",
                "phone": f"137{_index(self.town.code) % 10000:04d}{n:04d}",
                "township": self.town.code})

    def bin_for(self, site: str, room: str, n: int) -> str:
        """The shelf of the n-th piece of a type in a room (racks filled in order)."""
        rack = 1 + n // PER_RACK + self.racks[(site, room)]
        path = f"{site}/{room}/{rack}/{1 + n % SHELVES}"
        if path not in self.bins:
            self.bins.add(path)
            self.depot.bins.append({"path": path, "site": site})
        return path

    # --- items ----------------------------------------------------------------------------

    def items_of(self, kind: DemoType) -> None:
        count = self.counts.get(kind.code, 0)
        forward = min(FORWARD.get(kind.code, 0), count // 3) if self.forward else 0
        for n in range(count):
            site = self.forward if n < forward else self.site
            where = self.bin_for(site, kind.room, n if n < forward else n - forward)
            self.depot.items.append(self.item(kind, n + 1, site, where))
        for site in {self.site, self.forward} - {None}:
            self.racks[(site, kind.room)] += 1 + (count - 1) // PER_RACK if count else 0

    def item(self, kind: DemoType, n: int, site: str, where: str) -> dict[str, Any]:
        rng, today = self.rng, self.today
        if kind.shelf_life_days:
            # Replaced as they expire: the remaining life is spread over the shelf life.
            expires = today + timedelta(days=int(rng.integers(31, kind.shelf_life_days)))
            purchased = expires - timedelta(days=kind.shelf_life_days)
        else:
            purchased, expires = today - timedelta(days=int(rng.integers(60, 8 * 365))), None
        every = kind.every_days or 0
        last = max(purchased, today - timedelta(days=int(rng.integers(0, every)))) \
            if every else None
        code = f"{self.town.code}-{kind.prefix}-{n:03d}"
        return {"code": code, "type": kind.code,
                "serial": f"{kind.brand}{purchased.year}{int(rng.integers(10000, 99999))}",
                "status": "in_stock", "condition": "", "bin": where, "home_site": site,
                "purchased": purchased, "expires": expires,
                "inspection_due": last + timedelta(days=every) if last else None,
                "checkout": None}

    def inspect(self, item: dict[str, Any], kind: DemoType, last: date) -> None:
        """The item's inspections over the past year, every interval back from the last."""
        day = last
        start = max(item["purchased"], self.today - timedelta(days=HISTORY_DAYS))
        while day >= start:
            self.depot.inspections.append({
                "item": item["code"], "at": _at(day, 9 + float(self.rng.random()) * 8),
                "by": KEEPER, "result": "operational",
                "checklist": {step: True for step in kind.checklist}, "note": ""})
            day -= timedelta(days=kind.every_days or HISTORY_DAYS)

    def mark_out_of_service(self) -> None:
        """A few overdue inspections, items in repair, unserviceable, lost, expiring soon, and
        one expired (the township's share of each, at least one of each in a large depot)."""
        items = self.depot.items
        large = len(items) >= 300
        pick = self.picker(items)
        for item in pick(max(1, len(items) // 60) if large else 1, due=True):
            # Overdue by one to twenty days: the keeper has not got round to it.
            item["inspection_due"] = self.today - timedelta(days=int(self.rng.integers(1, 21)))
        for item in pick(max(2, len(items) // 150) if large else 1, types=("PUMP", "GENSET",
                                                                          "CHAINSAW", "BOAT")):
            self.out_of_service(item, "repair")
        for item in pick(max(2, len(items) // 200) if large else 0):
            self.out_of_service(item, "unserviceable")
        for item in pick(1 if large else 0, types=("RADIO", "SEARCHLIGHT")):
            item["status"], item["condition"] = "lost", "抢险中遗失"
        watched = [i for i in items if i["expires"] is not None and i["status"] == "in_stock"]
        for item in self.picker(watched)(max(1, len(watched) // 30)):
            item["expires"] = self.today + timedelta(days=int(self.rng.integers(3, 29)))
        for item in self.picker(watched)(1 if large else 0, types=("EXT",)):
            item["expires"] = self.today - timedelta(days=5)
            item["condition"] = "已过期，待报废"

    def picker(self, items: Sequence[dict[str, Any]]):
        def pick(count: int, *, types: Iterable[str] = (), due: bool = False) -> list[dict]:
            wanted = set(types)
            pool = [i for i in items if i["status"] == "in_stock" and i["checkout"] is None
                    and (not wanted or i["type"] in wanted)
                    and (not due or i["inspection_due"] is not None)
                    and not i["condition"]]
            if not pool or count <= 0:
                return []
            chosen = self.rng.choice(len(pool), size=min(count, len(pool)), replace=False)
            return [pool[int(c)] for c in sorted(chosen)]
        return pick

    def out_of_service(self, item: dict[str, Any], status: str) -> None:
        fault = FAULTS[int(self.rng.integers(len(FAULTS)))]
        when = self.today - timedelta(days=int(self.rng.integers(2, 40)))
        item["status"], item["condition"] = status, fault
        at = _at(when, 10)
        if status == "unserviceable" and self.history:
            self.depot.inspections.append({
                "item": item["code"], "at": at, "by": KEEPER, "result": "unserviceable",
                "checklist": {}, "note": fault})
        self.depot.repairs.append({"item": item["code"], "opened_at": at, "opened_by": KEEPER,
                                   "reason": fault, "closed_at": None, "closed_by": None,
                                   "outcome": None, "note": ""})

    # --- check-outs -----------------------------------------------------------------------

    def recipients(self) -> list[tuple[str, str]]:
        return [("team", t) for t in self.town.teams] + [("member", m)
                                                         for m in self.town.members[:12]]

    def checkouts(self) -> None:
        """Closed check-outs over the year: drills and flood jobs, some as the boat kit."""
        people = self.recipients()
        if not people:
            return
        usable = defaultdict(list)
        for item in self.depot.items:
            if item["home_site"] == self.site:
                usable[item["type"]].append(item)
        busy: dict[str, datetime] = {}
        jobs = max(4, len(self.depot.items) // 15)
        starts = sorted(_at(self.day_in_year(weighted=True), 6 + float(self.rng.random()) * 14)
                        for _ in range(jobs))
        for n, start in enumerate(starts):
            kind, code = people[int(self.rng.integers(len(people)))]
            kit = n % 4 == 0 and kind == "team"
            wanted = list(BOAT_KIT[2]) if kit else [
                (TAKEN_OUT[int(i)], int(self.rng.integers(1, 4)))
                for i in self.rng.choice(len(TAKEN_OUT), size=int(self.rng.integers(1, 4)),
                                         replace=False)]
            hours = float(self.rng.choice((4, 8, 24, 48, 72)))
            back = start + timedelta(hours=hours * float(0.5 + self.rng.random() * 0.6))
            lines = []
            for type_code, count in wanted:
                free = [i for i in usable[type_code] if busy.get(i["code"], start) <= start]
                for item in free[:count]:
                    busy[item["code"]] = back
                    lines.append(self.returned(item, back))
            if lines:
                self.depot.checkouts.append({
                    "to_kind": kind, "to_code": code, "kit_code": BOAT_KIT[0] if kit else None,
                    "due": start + timedelta(hours=hours), "by": KEEPER, "at": start,
                    "closed_at": back, "note": "防汛抢险" if start.month in range(6, 10)
                    else "应急演练", "lines": lines})

    def returned(self, item: dict[str, Any], back: datetime) -> dict[str, Any]:
        damaged = self.rng.random() < 0.04 and item["type"] in ("PUMP", "GENSET", "CHAINSAW")
        if damaged:
            fixed = back + timedelta(days=int(self.rng.integers(2, 10)))
            if fixed.date() < self.today:
                self.depot.repairs.append({
                    "item": item["code"], "opened_at": back, "opened_by": KEEPER,
                    "reason": "归还时损坏", "closed_at": fixed, "closed_by": KEEPER,
                    "outcome": "repaired", "note": "更换配件"})
            else:
                damaged = False
        return {"item": item["code"], "returned_at": back,
                "condition": "damaged" if damaged else "ok", "note": "归还时损坏" if damaged
                else ""}

    def open_checkouts(self) -> None:
        """Two check-outs still open: radios and a light on patrol (due tomorrow), and a
        chainsaw with a team that is a day overdue."""
        people = self.recipients()
        if not people or len(self.depot.items) < 300:
            return
        now = _at(self.today, 8)
        member = next((c for k, c in people if k == "member"), people[0][1])
        team = next((c for k, c in people if k == "team"), people[0][1])
        for to_kind, to_code, wanted, start, due in (
                ("member", member, (("RADIO", 2), ("SEARCHLIGHT", 1)),
                 now - timedelta(hours=2), now + timedelta(days=1)),
                ("team", team, (("CHAINSAW", 1),), now - timedelta(days=3),
                 now - timedelta(days=1))):
            lines = []
            for type_code, count in wanted:
                pool = [i for i in self.depot.items if i["type"] == type_code
                        and i["status"] == "in_stock" and i["home_site"] == self.site
                        and i["inspection_due"] and i["inspection_due"] > self.today][-count:]
                for item in pool:
                    item["status"], item["checkout"] = "out", len(self.depot.checkouts)
                    lines.append({"item": item["code"], "returned_at": None,
                                  "condition": None, "note": ""})
            self.depot.checkouts.append({
                "to_kind": to_kind, "to_code": to_code, "kit_code": None, "due": due,
                "by": KEEPER, "at": start,
                "closed_at": None, "note": "巡河" if to_kind == "member" else "道路清障",
                "lines": lines})

    # --- stock ----------------------------------------------------------------------------

    def stock(self) -> None:
        """The stock ledger of the year: a receipt a year ago, issues to the teams in the
        flood season and returns, a stock-take, a write-off, a replenishment."""
        people = self.recipients() or [("team", f"{self.town.code}-ZH")]
        scale = max(1, sum(self.counts.values()) // 100)
        self.ledger("SANDBAG", self.bin_for(self.site, "D", 0), 1000 * min(scale, 8),
                    people, issues=6 if self.history else 1)
        self.ledger("TARP", self.bin_for(self.site, "D", 1), 80, people,
                    issues=3 if self.history else 1, low=True)
        self.ledger("FUEL", f"{self.site}/E", 400, people, issues=8 if self.history else 1)
        if self.forward:
            self.ledger("SANDBAG", self.bin_for(self.forward, "D", 0), 1500, people, issues=2,
                        low=True)

    def ledger(self, type_code: str, where: str, received: int, people, *, issues: int,
               low: bool = False) -> None:
        if where not in self.bins:
            self.bins.add(where)
            self.depot.bins.append({"path": where, "site": where.split("/")[0]})
        kind = BY_CODE[type_code]
        start = _at(self.today - timedelta(days=HISTORY_DAYS - 5), 10)
        have = Decimal(received)
        self.move(type_code, where, "receipt", have, "县应急管理局调拨", None, start)
        days = sorted(self.day_in_year(weighted=True) for _ in range(issues))
        # Sandbags go by the hundred; petrol by the litre (with decilitres).
        lot = 100 if type_code == "SANDBAG" else 1
        for day in days:
            share = float(self.rng.uniform(0.1, 0.25 if not low else 0.3))
            qty = Decimal(int(received * share / lot) * lot)
            if not kind.whole_units:
                qty += Decimal(int(self.rng.integers(0, 10))) / 10
            qty = min(qty, have if not kind.whole_units else have // lot * lot)
            if qty <= 0:
                continue
            to = people[int(self.rng.integers(len(people)))]
            at = _at(day, 7 + float(self.rng.random()) * 12)
            have -= qty
            self.move(type_code, where, "issue", -qty, "防汛抢险", to, at)
            if type_code == "SANDBAG" and self.rng.random() < 0.5:
                back = Decimal(int(qty * Decimal("0.2") / 10) * 10)
                if back > 0:
                    have += back
                    self.move(type_code, where, "return", back, "未用完退回", to,
                              at + timedelta(days=2))
        take = _at(self.today - timedelta(days=30), 15)
        if type_code == "SANDBAG" and have > 50:
            have -= 20
            self.move(type_code, where, "adjust", Decimal(-20), "年度盘点：实盘少20条", None,
                      take)
            spoilt = min(have, Decimal(100))
            have -= spoilt
            self.move(type_code, where, "write_off", -spoilt, "受潮霉变，报废", None,
                      take + timedelta(hours=1))
        if not low and have < kind.reorder_min:
            top_up = Decimal(kind.reorder_min) - have + Decimal(received) / 4
            top_up = (top_up / lot).to_integral_value(rounding="ROUND_CEILING") * lot
            have += top_up
            self.move(type_code, where, "receipt", top_up, "补充储备", None,
                      take + timedelta(days=2))

    def move(self, type_code: str, where: str, kind: str, qty: Decimal, reason: str,
             to: tuple[str, str] | None, at: datetime) -> None:
        self.depot.moves.append({"type": type_code, "bin": where, "kind": kind, "qty": qty,
                                 "reason": reason, "to_kind": to[0] if to else None,
                                 "to_code": to[1] if to else None, "by": KEEPER, "at": at})


def township_depot(town: DemoTown, *, today: date, seed: int = SEED) -> DemoDepot:
    """The demo township's depots: a main depot and a forward store, ~600 items, a year of
    history."""
    counts = {t.code: t.count for t in SERIALIZED}
    return _Builder(town, counts, today=today, seed=seed, history=True).build()


def prefecture_depots(towns: Sequence[DemoTown], *, today: date, seed: int = SEED,
                      total: int = PREFECTURE_ITEMS) -> list[DemoDepot]:
    """One depot per township of the prefecture, `total` items in all (the first townships
    take one more when they do not divide evenly), each with its year of history."""
    base, extra = divmod(total, max(len(towns), 1))
    return [_Builder(town, _counts(base + (n < extra)), today=today, seed=seed,
                     history=True).build() for n, town in enumerate(towns)]


# --- loading ----------------------------------------------------------------------------------

def load_demo_depots(session: Session, depots: Sequence[DemoDepot], *,
                     actor: str) -> dict[str, int]:
    """Store generated depots whose main site is not there yet, in bulk: the catalogue and the
    kit when missing, then sites, bins, items, their history and the stock. Audited once per
    site. Returns what was added."""
    added = {"types": _load_catalogue(session, actor=actor), "sites": 0, "items": 0,
             "moves": 0}
    have = set(session.scalars(select(Site.code)))
    new = [d for d in depots if d.sites and d.sites[0]["code"] not in have]
    if not new:
        return added
    conn = session.connection()
    ids = _load_places(session, new)
    type_ids = dict(session.execute(select(ItemType.code, ItemType.id)).all())
    checkout_ids = _load_checkouts(session, new)
    rows = []
    for depot in new:
        for item in depot.items:
            rows.append({
                "code": item["code"], "type_id": type_ids[item["type"]],
                "serial": item["serial"], "status": item["status"],
                "condition": item["condition"], "bin_id": ids.bins[item["bin"]],
                "home_site_id": ids.sites[item["home_site"]], "purchased": item["purchased"],
                "expires": item["expires"], "inspection_due": item["inspection_due"],
                "checkout_id": checkout_ids[(depot.town, item["checkout"])]
                if item["checkout"] is not None else None})
    _bulk(conn, Item, rows)
    codes = [r["code"] for r in rows]
    item_ids: dict[str, int] = {}
    for start in range(0, len(codes), 1000):
        item_ids.update(session.execute(select(Item.code, Item.id).where(
            Item.code.in_(codes[start:start + 1000]))).all())
    _load_history(session, new, item_ids, checkout_ids)
    added["moves"] = _load_stock(session, new, ids, type_ids)
    for depot in new:
        for site in depot.sites:
            audit.record(session, actor=actor, action="demo.load", entity_type="depot_site",
                         entity_id=site["code"], after={
                             "name": site["name"], "items": sum(
                                 1 for i in depot.items if i["home_site"] == site["code"])})
    added["sites"] = sum(len(d.sites) for d in new)
    added["items"] = len(rows)
    return added


def _bulk(conn, model, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (a plain executemany: psycopg pipelines it; a multi-row INSERT with
    RETURNING measured slower on both databases)."""
    for start in range(0, len(rows), 5000):
        conn.execute(insert(model), rows[start:start + 5000])


def _load_catalogue(session: Session, *, actor: str) -> int:
    conn = session.connection()
    have = set(session.scalars(select(ItemType.code)))
    new = [t for t in CATALOGUE if t.code not in have]
    if new:
        conn.execute(insert(ItemType), [{
            "code": t.code, "name_zh": t.name_zh, "name_en": t.name_en, "category": t.category,
            "serialized": t.serialized, "unit": t.unit, "whole_units": t.whole_units,
            "specs": {}, "inspection_every_days": t.every_days, "checklist": list(t.checklist),
            "expiry_watch": t.expiry_watch, "reorder_min": Decimal(t.reorder_min)}
            for t in new])
        audit.record(session, actor=actor, action="demo.load", entity_type="depot_type",
                     entity_id="catalogue", after={"types": [t.code for t in new]})
    code, name, lines = BOAT_KIT
    if not session.scalar(select(Kit.id).where(Kit.code == code)):
        conn.execute(insert(Kit).values(code=code, name=name, lines=[
            {"type": t, "count": c} for t, c in lines]))
        audit.record(session, actor=actor, action="demo.load", entity_type="depot_kit",
                     entity_id=code, after={"name": name, "lines": [list(x) for x in lines]})
    return len(new)


@dataclass(frozen=True)
class _Ids:
    sites: dict[str, int]
    bins: dict[str, int]


def _load_places(session: Session, depots: Sequence[DemoDepot]) -> _Ids:
    conn = session.connection()
    towns = dict(session.execute(select(_TOWNSHIPS.c.code, _TOWNSHIPS.c.id)).all())
    conn.execute(insert(Site), [{
        "code": s["code"], "name": s["name"], "township_id": towns.get(s["township"]),
        "location": WKTElement(f"POINT({s['lon']} {s['lat']})", srid=4326),
        "keeper": s["keeper"], "phone": s["phone"], "created_at": datetime.now(UTC)}
        for d in depots for s in d.sites])
    sites = dict(session.execute(select(Site.code, Site.id)).all())
    conn.execute(insert(Bin), [{"path": b["path"], "site_id": sites[b["site"]]}
                               for d in depots for b in d.bins])
    wanted = {s["code"] for d in depots for s in d.sites}
    bins = {path: bid for path, bid, site in session.execute(
        select(Bin.path, Bin.id, Site.code).join(Site, Site.id == Bin.site_id)).all()
        if site in wanted}
    return _Ids(sites, bins)


def _load_checkouts(session: Session, depots: Sequence[DemoDepot]) -> dict[tuple, int]:
    """Insert the check-outs; their ids by (township, index in its list)."""
    keys, rows = [], []
    for depot in depots:
        for n, c in enumerate(depot.checkouts):
            keys.append((depot.town, n))
            rows.append({k: c[k] for k in ("to_kind", "to_code", "kit_code", "due", "by", "at",
                                           "closed_at", "note")})
    if not rows:
        return {}
    ids = session.connection().execute(
        insert(Checkout).returning(Checkout.id, sort_by_parameter_order=True), rows).scalars()
    return dict(zip(keys, ids, strict=True))


def _load_history(session: Session, depots: Sequence[DemoDepot], item_ids: dict[str, int],
                  checkout_ids: dict[tuple, int]) -> None:
    conn = session.connection()
    lines = [{"checkout_id": checkout_ids[(d.town, n)], "item_id": item_ids[line["item"]],
              "type_id": None, "bin_id": None, "qty": Decimal(1),
              "returned_qty": Decimal(1 if line["returned_at"] else 0),
              "returned_at": line["returned_at"], "condition": line["condition"],
              "note": line["note"]}
             for d in depots for n, c in enumerate(d.checkouts) for line in c["lines"]]
    inspections = [{**{k: i[k] for k in ("at", "by", "result", "checklist", "note")},
                    "item_id": item_ids[i["item"]]} for d in depots for i in d.inspections]
    repairs = [{**{k: r[k] for k in ("opened_at", "opened_by", "reason", "closed_at",
                                     "closed_by", "outcome", "note")},
                "item_id": item_ids[r["item"]]} for d in depots for r in d.repairs]
    for model, rows in ((CheckoutLine, lines), (Inspection, inspections), (Repair, repairs)):
        _bulk(conn, model, rows)


def _load_stock(session: Session, depots: Sequence[DemoDepot], ids: _Ids,
                type_ids: dict[str, int]) -> int:
    conn = session.connection()
    moves = [{"type_id": type_ids[m["type"]], "bin_id": ids.bins[m["bin"]], "kind": m["kind"],
              "qty": m["qty"], "reason": m["reason"], "to_kind": m["to_kind"],
              "to_code": m["to_code"], "checkout_id": None, "by": m["by"], "at": m["at"]}
             for d in depots for m in d.moves]
    totals: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for m in moves:
        totals[(m["type_id"], m["bin_id"])] += m["qty"]
    if moves:
        _bulk(conn, StockMove, moves)
        conn.execute(insert(Stock), [{"type_id": t, "bin_id": b, "quantity": q}
                                     for (t, b), q in totals.items()])
    return len(moves)
