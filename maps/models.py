"""The township on the map: township, villages, shelters, roads, hazard zones and rivers.

Geometry is stored as lon/lat (EPSG:4326) in GeoAlchemy2 columns with a spatial index on both
backends; it becomes shapely at the service boundary (maps.service).
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.core.db import Base, UTCDateTime, utcnow

SRID = 4326


class Township(Base):
    """A township: its boundary and the metric CRS chosen for it."""

    __tablename__ = "townships"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_pinyin: Mapped[str] = mapped_column(String(128), default="")
    boundary = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True),
                             nullable=False)
    # The UTM zone used for distances, areas and buffers (maps.geo.utm_epsg).
    epsg: Mapped[int] = mapped_column()


class Village(Base):
    """A village or community: boundary, centre, people and a contact."""

    __tablename__ = "villages"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_pinyin: Mapped[str] = mapped_column(String(128), default="")
    community_code: Mapped[str] = mapped_column(String(32), default="")
    community_name: Mapped[str] = mapped_column(String(64), default="")
    boundary = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True),
                             nullable=False)
    centre = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True),
                             nullable=False)
    population: Mapped[int] = mapped_column(default=0)
    households: Mapped[int] = mapped_column(default=0)
    vulnerable: Mapped[int] = mapped_column(default=0)
    # People already reported moved out (the evacuation plan moves the rest).
    moved: Mapped[int] = mapped_column(default=0, server_default="0")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    riverside: Mapped[bool] = mapped_column(default=False)
    elevation_m: Mapped[float | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The village's warning level (none/prepare/evacuate), written by alerts and read by the map,
    # broadcast terminals and evacuation without importing alerts (DESIGN §2, §5).
    warning_level: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    warning_alert_id: Mapped[int | None] = mapped_column()
    warning_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the retained warning topic last said this level (NULL: to publish).
    warning_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Shelter(Base):
    """A place people are evacuated to: capacity by day and night, occupancy, status."""

    __tablename__ = "shelters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id", ondelete="SET NULL"))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_pinyin: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(32))
    location = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True),
                             nullable=False)
    capacity_day: Mapped[int] = mapped_column(default=0)
    capacity_night: Mapped[int] = mapped_column(default=0)
    occupancy: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RoadSegment(Base):
    """One edge of the road graph between two nodes; open or closed with a reason."""

    __tablename__ = "road_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    geometry = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True),
                             nullable=False)
    road_class: Mapped[str] = mapped_column(String(16))
    length_m: Mapped[float] = mapped_column()
    speed_kmh: Mapped[float] = mapped_column()
    oneway: Mapped[bool] = mapped_column(default=False)
    structure: Mapped[str] = mapped_column(String(16), default="none")
    source: Mapped[int] = mapped_column(index=True)
    target: Mapped[int] = mapped_column(index=True)
    is_open: Mapped[bool] = mapped_column(default=True)
    closed_reason: Mapped[str] = mapped_column(String(200), default="")


class HazardZone(Base):
    """An area threatened by landslide, debris flow or flooding, with who lives there."""

    __tablename__ = "hazard_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(64), default="")
    geometry = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True),
                             nullable=False)
    households: Mapped[int] = mapped_column(default=0)
    people: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The zone's warning level (none/prepare/evacuate) from its landslide alerts (alerts writes).
    warning_level: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    warning_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class River(Base):
    """A river or stream line, drawn on the map and used to mark riverside villages."""

    __tablename__ = "rivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    township_id: Mapped[int | None] = mapped_column(ForeignKey("townships.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(64), default="")
    geometry = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True),
                             nullable=False)


Index("ix_road_segments_open", RoadSegment.is_open)
