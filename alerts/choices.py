"""Alert kinds, levels, states and CAP statuses with their labels and colours, in one place
(DESIGN §5 "Alerts (contract)"). Pages, the map, CAP and the rules read them from here."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class AlertKind(StrEnum):
    """What an alert is about; each kind has one subject type and its own levels."""

    RAINSTORM = "rainstorm"
    FLASH_FLOOD = "flash_flood"
    LANDSLIDE_RAIN = "landslide_rain"
    SLOPE_MOVEMENT = "slope_movement"
    DATA = "data"


class AlertState(StrEnum):
    """Where an alert is in its lifecycle (DESIGN §6 "Alert lifecycle")."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    CLEARED = "cleared"
    CANCELLED = "cancelled"


class SubjectType(StrEnum):
    """What an alert's subject is."""

    GAUGE = "gauge"
    VILLAGE = "village"
    HAZARD = "hazard"


class CapStatus(StrEnum):
    """The public warning's state: drafted by the hub, approved and published by a commander."""

    NONE = "none"
    DRAFT = "draft"
    APPROVED = "approved"
    PUBLISHED = "published"


# Levels per kind, lowest first (DESIGN §5 table).
LEVELS: dict[str, tuple[str, ...]] = {
    AlertKind.RAINSTORM: ("blue", "yellow", "orange", "red"),
    AlertKind.FLASH_FLOOD: ("prepare", "evacuate"),
    AlertKind.LANDSLIDE_RAIN: ("prepare", "evacuate"),
    AlertKind.SLOPE_MOVEMENT: ("attention", "warning", "alarm"),
    AlertKind.DATA: ("missing",),
}

SUBJECTS: dict[str, SubjectType] = {
    AlertKind.RAINSTORM: SubjectType.GAUGE,
    AlertKind.FLASH_FLOOD: SubjectType.VILLAGE,
    AlertKind.LANDSLIDE_RAIN: SubjectType.HAZARD,
    AlertKind.SLOPE_MOVEMENT: SubjectType.HAZARD,
    AlertKind.DATA: SubjectType.VILLAGE,
}

# A village's warning level (broadcast terminals, the map, evacuation), lowest first.
WARNING_LEVELS = ("none", "prepare", "evacuate")

# What each kind's level means for the villages it covers (DESIGN §5: rainstorm signals and data
# alerts set no village level; slope `warning` → prepare, `alarm` → evacuate).
WARNING_OF: dict[str, dict[str, str]] = {
    AlertKind.FLASH_FLOOD: {"prepare": "prepare", "evacuate": "evacuate"},
    AlertKind.LANDSLIDE_RAIN: {"prepare": "prepare", "evacuate": "evacuate"},
    AlertKind.SLOPE_MOVEMENT: {"warning": "prepare", "alarm": "evacuate"},
}

ACTIVE_STATES = (AlertState.RAISED, AlertState.ACKNOWLEDGED, AlertState.ESCALATED)
CLOSED_STATES = (AlertState.CLEARED, AlertState.CANCELLED)


def rank(kind: str, level: str | None) -> int:
    """A level's place among its kind's levels, from 1; 0 for none (below the lowest)."""
    if level is None or level == "none":
        return 0
    return LEVELS[kind].index(level) + 1


def is_top(kind: str, level: str) -> bool:
    """Whether this is the kind's highest level (escalation runs at its base times)."""
    return LEVELS[kind][-1] == level


LABELS = {
    AlertKind.RAINSTORM: _l("Rainstorm signal"),
    AlertKind.FLASH_FLOOD: _l("Flash flood"),
    AlertKind.LANDSLIDE_RAIN: _l("Landslide (rainfall)"),
    AlertKind.SLOPE_MOVEMENT: _l("Slope movement"),
    AlertKind.DATA: _l("Rain data missing"),
    AlertState.RAISED: _l("Raised"),
    AlertState.ACKNOWLEDGED: _l("Acknowledged"),
    AlertState.ESCALATED: _l("Escalated"),
    AlertState.CLEARED: _l("Cleared"),
    AlertState.CANCELLED: _l("Cancelled"),
    CapStatus.NONE: _l("No public warning"),
    CapStatus.DRAFT: _l("Draft"),
    CapStatus.APPROVED: _l("Approved"),
    CapStatus.PUBLISHED: _l("Published"),
}

# Level labels per kind (the same word may mean different things: `prepare` is 准备转移).
LEVEL_LABELS = {
    (AlertKind.RAINSTORM, "blue"): _l("Blue rainstorm signal"),
    (AlertKind.RAINSTORM, "yellow"): _l("Yellow rainstorm signal"),
    (AlertKind.RAINSTORM, "orange"): _l("Orange rainstorm signal"),
    (AlertKind.RAINSTORM, "red"): _l("Red rainstorm signal"),
    (AlertKind.FLASH_FLOOD, "prepare"): _l("Prepare to evacuate"),
    (AlertKind.FLASH_FLOOD, "evacuate"): _l("Evacuate now"),
    (AlertKind.LANDSLIDE_RAIN, "prepare"): _l("Prepare to evacuate"),
    (AlertKind.LANDSLIDE_RAIN, "evacuate"): _l("Evacuate now"),
    (AlertKind.SLOPE_MOVEMENT, "attention"): _l("Attention"),
    (AlertKind.SLOPE_MOVEMENT, "warning"): _l("Warning"),
    (AlertKind.SLOPE_MOVEMENT, "alarm"): _l("Alarm"),
    (AlertKind.DATA, "missing"): _l("Data missing"),
}

WARNING_LABELS = {"none": _l("No warning"), "prepare": _l("Prepare to evacuate"),
                  "evacuate": _l("Evacuate now")}

# Colours: the CMA signal colours for rainstorms; warm for evacuation levels.
COLOURS = {
    "blue": "#1e6fd9", "yellow": "#f2c200", "orange": "#f07c00", "red": "#d7191c",
    "prepare": "#f07c00", "evacuate": "#d7191c",
    "attention": "#f2c200", "warning": "#f07c00", "alarm": "#d7191c",
    "missing": "#7f7f7f", "none": "#3a9d3a",
}
