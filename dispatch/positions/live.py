"""The positions' live event, its payload built here only: `position`, to the `office` room,
whenever a member's marker moves forward (a fix newer than the member's latest; an older one
joins the track without an event).

`{"member": code, "name", "status": duty status, "lon", "lat", "ts": ISO time of the fix,
"accuracy_m", "speed_mps", "battery_pct" (each null when unknown), "source": "owntracks" |
"owntracks_http" | "osmand" | "tablet"}`, plus the event's own `id` and `ts`
(dispatch.core.realtime).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dispatch.core.realtime import notify

ROOMS = ("office",)


@dataclass(frozen=True)
class Moved:
    """A member whose marker moved, and the fix it moved to."""

    member: str
    name: str
    status: str
    ts: datetime
    lon: float
    lat: float
    accuracy_m: float | None
    speed_mps: float | None
    battery_pct: float | None
    source: str


def position_event(moved: Moved) -> dict:
    """A `position` event (module docstring)."""
    return {"member": moved.member, "name": moved.name, "status": moved.status,
            "lon": moved.lon, "lat": moved.lat, "ts": moved.ts.isoformat(),
            "accuracy_m": moved.accuracy_m, "speed_mps": moved.speed_mps,
            "battery_pct": moved.battery_pct, "source": moved.source}


def announce(moved: Iterable[Moved]) -> None:
    """Send a `position` event per moved marker (after the commit that moved it)."""
    for item in moved:
        notify("position", position_event(item), ROOMS)


def announce_crossings(payloads: Iterable[dict]) -> None:
    """A `geofence` event to the office per place entered or left (payloads from
    dispatch.positions.places.event_payload, built before the commit)."""
    for payload in payloads:
        notify("geofence", payload, ROOMS)
