"""Kinds and states of map features, with their labels and colours, in one place."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class ShelterKind(StrEnum):
    """What building a shelter is."""

    SCHOOL = "school"
    TOWNSHIP_COMPOUND = "township_compound"
    VILLAGE_HALL = "village_hall"
    GYMNASIUM = "gymnasium"
    CLINIC = "clinic"
    OTHER = "other"


class ShelterStatus(StrEnum):
    """Whether a shelter takes people."""

    OPEN = "open"
    CLOSED = "closed"
    FULL = "full"


class RoadClass(StrEnum):
    """Road classes of the township network."""

    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    TRACK = "track"


class RoadStructure(StrEnum):
    """Where a road crosses water."""

    NONE = "none"
    BRIDGE = "bridge"
    FORD = "ford"


class HazardKind(StrEnum):
    """Kinds of hazard zone."""

    LANDSLIDE = "landslide"
    DEBRIS_FLOW = "debris_flow"
    FLOOD_PLAIN = "flood_plain"


LABELS = {
    ShelterKind.SCHOOL: _l("School"),
    ShelterKind.TOWNSHIP_COMPOUND: _l("Township compound"),
    ShelterKind.VILLAGE_HALL: _l("Village hall"),
    ShelterKind.GYMNASIUM: _l("Gymnasium"),
    ShelterKind.CLINIC: _l("Clinic"),
    ShelterKind.OTHER: _l("Other"),
    ShelterStatus.OPEN: _l("Open"),
    ShelterStatus.CLOSED: _l("Closed"),
    ShelterStatus.FULL: _l("Full"),
    RoadClass.COUNTY: _l("County road"),
    RoadClass.TOWNSHIP: _l("Township road"),
    RoadClass.VILLAGE: _l("Village road"),
    RoadClass.TRACK: _l("Track"),
    RoadStructure.NONE: _l("Road"),
    RoadStructure.BRIDGE: _l("Bridge"),
    RoadStructure.FORD: _l("Ford"),
    HazardKind.LANDSLIDE: _l("Landslide"),
    HazardKind.DEBRIS_FLOW: _l("Debris flow"),
    HazardKind.FLOOD_PLAIN: _l("Flood plain"),
}

# Map colours (the legend and the styles use the same table).
COLOURS = {
    ShelterStatus.OPEN: "#2e7d32",
    ShelterStatus.FULL: "#f9a825",
    ShelterStatus.CLOSED: "#c62828",
    RoadClass.COUNTY: "#e65100",
    RoadClass.TOWNSHIP: "#f57c00",
    RoadClass.VILLAGE: "#8d6e63",
    RoadClass.TRACK: "#a1887f",
    HazardKind.LANDSLIDE: "#8e24aa",
    HazardKind.DEBRIS_FLOW: "#6d4c41",
    HazardKind.FLOOD_PLAIN: "#1e88e5",
}
