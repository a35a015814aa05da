"""Roles, their labels and the role groups endpoints check, in one place (DESIGN §5)."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Role(StrEnum):
    """What a principal may do; every endpoint and socket event checks it."""

    COMMANDER = "commander"
    DISPATCHER = "dispatcher"
    TEAM_LEADER = "team_leader"
    KEEPER = "keeper"
    GATEWAY = "gateway"
    VIEWER = "viewer"


ROLE_LABELS = {
    Role.COMMANDER: _l("Commander"),
    Role.DISPATCHER: _l("Dispatcher"),
    Role.TEAM_LEADER: _l("Team leader"),
    Role.KEEPER: _l("Depot keeper"),
    Role.GATEWAY: _l("Sensor gateway"),
    Role.VIEWER: _l("Viewer"),
}

# Roles a person can hold (gateways are machines registered with `rescuehub gateway add`).
PERSON_ROLES = tuple(r for r in Role if r is not Role.GATEWAY)
# The office: who watches the live map and the `office` Socket.IO room.
OFFICE_ROLES = (Role.COMMANDER, Role.DISPATCHER, Role.VIEWER)
# Who changes the township's data (map features, roads, sensors, dead letters).
EDITORS = (Role.COMMANDER, Role.DISPATCHER)
