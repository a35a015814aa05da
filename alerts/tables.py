"""Storing threshold tables (validated by alerts.thresholds) with their audit entries, and the demo
township's tables (alerts.demo) for `rescuehub demo`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import HazardThreshold, VillageThreshold
from dispatch.core import audit
from dispatch.core.db import utcnow
from maps.models import HazardZone, Village


def store_village_table(s, village: Village, table: dict, *, actor: str) -> None:
    """Write a village's validated table, with its audit entry."""
    row = s.scalar(select(VillageThreshold).where(VillageThreshold.village_id == village.id))
    before = row.table if row else None
    if row is None:
        row = VillageThreshold(village_id=village.id, table=table)
        s.add(row)
    row.table, row.updated_at, row.updated_by = table, utcnow(), actor
    audit.record(s, actor=actor, action="thresholds.village", entity_type="village",
                 entity_id=village.code, before=before, after=table)


def store_hazard_table(s, zone: HazardZone, table: dict, *, actor: str) -> None:
    """Write a hazard zone's validated table, with its audit entry."""
    row = s.scalar(select(HazardThreshold).where(HazardThreshold.hazard_id == zone.id))
    before = row.table if row else None
    if row is None:
        row = HazardThreshold(hazard_id=zone.id, table=table)
        s.add(row)
    row.table, row.updated_at, row.updated_by = table, utcnow(), actor
    audit.record(s, actor=actor, action="thresholds.hazard", entity_type="hazard",
                 entity_id=zone.code, before=before, after=table)


def load_demo_tables(s: Session, town, sensors, *, actor: str) -> int:
    """Give the demo township's riverside villages and hazard zones their tables (alerts.demo),
    leaving any table a person set alone; returns how many were added."""
    from alerts import demo, thresholds

    gauges = {x.code for x in sensors if x.kind == "rain_gauge"}
    displacement = {x.code for x in sensors if x.kind in thresholds.DISPLACEMENT_KINDS}
    added = 0
    for code, doc in demo.village_tables(town.villages, sensors).items():
        village = s.scalar(select(Village).where(Village.code == code))
        if village is None or s.scalar(select(VillageThreshold.id).where(
                VillageThreshold.village_id == village.id)):
            continue
        table = thresholds.village_thresholds(doc, rain_gauges=gauges)
        store_village_table(s, village, table.as_json(), actor=actor)
        added += 1
    for code, doc in demo.hazard_tables(town.hazards, sensors).items():
        zone = s.scalar(select(HazardZone).where(HazardZone.code == code))
        if zone is None or s.scalar(select(HazardThreshold.id).where(
                HazardThreshold.hazard_id == zone.id)):
            continue
        table = thresholds.hazard_thresholds(doc, rain_gauges=gauges,
                                             displacement_sensors=displacement)
        store_hazard_table(s, zone, table.as_json(), actor=actor)
        added += 1
    return added
