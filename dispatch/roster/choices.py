"""The roster's choices with their labels and colours, in one place (DESIGN §5 "Roster and
positions (contract)"): the posts a member comes from (多员合一), employment, the six uses the team
serves (六队一体) and duty status. Pages, the map and the checks read them from here; the values
are those of the contract and of dispatch.roster.models."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Post(StrEnum):
    """The township post a member holds besides the team (多员合一: merged from several posts)."""

    SAFETY = "safety"
    FORESTRY = "forestry"
    FIRE = "fire"
    WATER = "water"
    WEATHER = "weather"
    GRID = "grid"
    OTHER = "other"


class Employment(StrEnum):
    """How a member is employed."""

    STAFF = "staff"
    CONTRACT = "contract"
    VOLUNTEER = "volunteer"


class SquadRole(StrEnum):
    """The uses a member serves in (六队一体: one team, six squads by use)."""

    RESCUE = "rescue"
    RELIEF = "relief"
    PATROL = "patrol"
    ENFORCEMENT = "enforcement"
    SERVICE = "service"
    PUBLICITY = "publicity"


class DutyStatus(StrEnum):
    """Where a member is in the duty cycle (set by the rota at shift change, or by hand)."""

    ON_SHIFT = "on_shift"
    ON_CALL = "on_call"
    OFF = "off"
    LEAVE = "leave"
    DEPLOYED = "deployed"


LABELS = {
    Post.SAFETY: _l("Safety officer"),
    Post.FORESTRY: _l("Forest ranger"),
    Post.FIRE: _l("Firefighter"),
    Post.WATER: _l("Water warden"),
    Post.WEATHER: _l("Weather observer"),
    Post.GRID: _l("Grid worker"),
    Post.OTHER: _l("Other post"),
    Employment.STAFF: _l("Staff"),
    Employment.CONTRACT: _l("Contract"),
    Employment.VOLUNTEER: _l("Volunteer"),
    SquadRole.RESCUE: _l("Rescue"),
    SquadRole.RELIEF: _l("Relief"),
    SquadRole.PATROL: _l("Patrol"),
    SquadRole.ENFORCEMENT: _l("Enforcement"),
    SquadRole.SERVICE: _l("Service"),
    SquadRole.PUBLICITY: _l("Publicity"),
    DutyStatus.ON_SHIFT: _l("On shift"),
    DutyStatus.ON_CALL: _l("On call"),
    DutyStatus.OFF: _l("Off duty"),
    DutyStatus.LEAVE: _l("On leave"),
    DutyStatus.DEPLOYED: _l("Deployed"),
}

# Duty status on the map and the team board (the same table for both).
COLOURS = {
    DutyStatus.ON_SHIFT: "#2e7d32",
    DutyStatus.ON_CALL: "#1565c0",
    DutyStatus.OFF: "#757575",
    DutyStatus.LEAVE: "#8e24aa",
    DutyStatus.DEPLOYED: "#e65100",
}
