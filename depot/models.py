"""The consolidated depot (DESIGN §5 "Depot (contract)"): sites and bins, the catalogue, serialized
items, bulk stock on a ledger, kits, check-outs, inspections and repairs.

Codes are printed on labels and scanned, so they are case-insensitive: every code column holds the
code in upper case (the service normalises what is typed or scanned), and UNIQUE on it is unique
whatever the case.

Never given out twice: an item leaves the depot by one conditional UPDATE (status 'in_stock' →
'out', the row lock on PostgreSQL, the database lock on SpatiaLite), and a partial UNIQUE index
allows one open check-out line per item, so two keepers racing for one item cannot both succeed
even if the first guard were bypassed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow

CATEGORIES = ("flood", "fire", "fire_prevention", "rescue", "medical", "comms", "enforcement",
              "vehicle", "boat", "consumable")
ITEM_STATUSES = ("in_stock", "out", "repair", "unserviceable", "lost", "retired")
MOVE_KINDS = ("receipt", "issue", "return", "adjust", "write_off")
INSPECTION_RESULTS = ("operational", "monitor", "repair_required", "unserviceable", "lost")
RECIPIENT_KINDS = ("member", "team", "incident")
# Quantities: up to 12 digits with 3 decimals (metres of rope, litres of fuel); whole-unit types
# take whole numbers only (the service checks).
QUANTITY = Numeric(15, 3)


class Site(Base):
    """A depot: a place with a keeper, shown on the map."""

    __tablename__ = "depot_sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=True)
    keeper: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Bin(Base):
    """A storage place as a path `SITE/room/rack/shelf` (its first part is its site's code)."""

    __tablename__ = "depot_bins"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(128), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("depot_sites.id", ondelete="RESTRICT"),
                                         index=True)


class ItemType(Base):
    """A catalogue entry: what an item or a stock line is, how often it is inspected."""

    __tablename__ = "depot_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    category: Mapped[str] = mapped_column(String(16))
    serialized: Mapped[bool] = mapped_column(default=True)
    unit: Mapped[str] = mapped_column(String(16), default="pcs")
    # Whole units (pieces, sandbags) or divisible (metres of rope, litres of fuel).
    whole_units: Mapped[bool] = mapped_column(default=True)
    specs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inspection_every_days: Mapped[int | None] = mapped_column()
    checklist: Mapped[list[str]] = mapped_column(JSON, default=list)
    expiry_watch: Mapped[bool] = mapped_column(default=False)
    reorder_min: Mapped[Decimal] = mapped_column(QUANTITY, default=0)


class Item(Base):
    """A serialized item: one boat, one pump, one radio, with its status and whereabouts."""

    __tablename__ = "depot_items"
    __table_args__ = (Index("ix_depot_items_type_status", "type_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("depot_types.id", ondelete="RESTRICT"))
    serial: Mapped[str] = mapped_column(String(64), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="in_stock")
    condition: Mapped[str] = mapped_column(String(200), default="")
    bin_id: Mapped[int | None] = mapped_column(ForeignKey("depot_bins.id", ondelete="RESTRICT"),
                                               index=True)
    home_site_id: Mapped[int | None] = mapped_column(
        ForeignKey("depot_sites.id", ondelete="RESTRICT"), index=True)
    purchased: Mapped[date | None] = mapped_column(Date)
    expires: Mapped[date | None] = mapped_column(Date, index=True)
    inspection_due: Mapped[date | None] = mapped_column(Date, index=True)
    # The open check-out holding the item (NULL when in the depot).
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("depot_checkouts.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Stock(Base):
    """How much of a bulk type lies in a bin (kept equal to the sum of its ledger moves)."""

    __tablename__ = "depot_stock"
    __table_args__ = (UniqueConstraint("type_id", "bin_id"),
                      CheckConstraint("quantity >= 0", name="never_negative"))

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("depot_types.id", ondelete="RESTRICT"))
    bin_id: Mapped[int] = mapped_column(ForeignKey("depot_bins.id", ondelete="RESTRICT"),
                                        index=True)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY, default=0)


class StockMove(Base):
    """One line of the stock ledger: a receipt, issue, return, adjustment or write-off."""

    __tablename__ = "depot_stock_moves"
    __table_args__ = (Index("ix_depot_stock_moves_type_bin_at", "type_id", "bin_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("depot_types.id", ondelete="RESTRICT"))
    bin_id: Mapped[int] = mapped_column(ForeignKey("depot_bins.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    # Signed: what the move did to the bin's quantity.
    qty: Mapped[Decimal] = mapped_column(QUANTITY)
    reason: Mapped[str] = mapped_column(String(200), default="")
    to_kind: Mapped[str | None] = mapped_column(String(16))
    to_code: Mapped[str | None] = mapped_column(String(32))
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("depot_checkouts.id"),
                                                    index=True)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Kit(Base):
    """A kit template: types and counts (e.g. a boat team kit)."""

    __tablename__ = "depot_kits"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    # [{"type": code, "count": n}]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Checkout(Base):
    """Items and stock given to a member, a team or an incident, due back at a time."""

    __tablename__ = "depot_checkouts"
    __table_args__ = (Index("ix_depot_checkouts_open_due", "closed_at", "due"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    to_kind: Mapped[str] = mapped_column(String(16))
    to_code: Mapped[str] = mapped_column(String(32))
    kit_code: Mapped[str | None] = mapped_column(String(32))
    due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(200), default="")
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CheckoutLine(Base):
    """One item (or one stock quantity) of a check-out, and its return."""

    __tablename__ = "depot_checkout_lines"
    __table_args__ = (
        # One open line per item: the database's own guard against a double check-out.
        Index("uq_depot_checkout_lines_open_item", "item_id", unique=True,
              sqlite_where=text("item_id IS NOT NULL AND returned_at IS NULL"),
              postgresql_where=text("item_id IS NOT NULL AND returned_at IS NULL")),
        CheckConstraint("(item_id IS NULL) <> (type_id IS NULL)", name="item_or_stock"),
        # An item's history reads all its lines, returned ones too (the partial index above
        # holds open lines only).
        Index("ix_depot_checkout_lines_item", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checkout_id: Mapped[int] = mapped_column(ForeignKey("depot_checkouts.id",
                                                        ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("depot_items.id"))
    type_id: Mapped[int | None] = mapped_column(ForeignKey("depot_types.id"))
    bin_id: Mapped[int | None] = mapped_column(ForeignKey("depot_bins.id"))
    qty: Mapped[Decimal] = mapped_column(QUANTITY, default=1)
    returned_qty: Mapped[Decimal] = mapped_column(QUANTITY, default=0)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    condition: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")


class Inspection(Base):
    """An inspection's result and checklist; a failed one takes the item out of service."""

    __tablename__ = "depot_inspections"
    __table_args__ = (Index("ix_depot_inspections_item_at", "item_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("depot_items.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(String(500), default="")


class Repair(Base):
    """A repair record: opened by a damaged return or a failed inspection, closed by a person."""

    __tablename__ = "depot_repairs"
    __table_args__ = (Index("ix_depot_repairs_item_open", "item_id", "closed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("depot_items.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    # repaired (back in service), written_off (retired)
    outcome: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")
