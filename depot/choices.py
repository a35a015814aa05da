"""The depot's choices with their labels and colours, in one place (DESIGN §5 "Depot (contract)"):
categories of the catalogue, item statuses, stock move kinds, and the roles that keep and read
the depot. Pages, the map and the checks read them from here; the values are those of the
contract and of depot.models (which holds them as plain tuples for its constraints)."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l

from dispatch.core.choices import Role


class Category(StrEnum):
    """What a type of equipment is for (the prefecture's depots: flood, fire and enforcement)."""

    FLOOD = "flood"
    FIRE = "fire"
    FIRE_PREVENTION = "fire_prevention"
    RESCUE = "rescue"
    MEDICAL = "medical"
    COMMS = "comms"
    ENFORCEMENT = "enforcement"
    VEHICLE = "vehicle"
    BOAT = "boat"
    CONSUMABLE = "consumable"


class ItemStatus(StrEnum):
    """Where a serialized item is in its life."""

    IN_STOCK = "in_stock"
    OUT = "out"
    REPAIR = "repair"
    UNSERVICEABLE = "unserviceable"
    LOST = "lost"
    RETIRED = "retired"


class MoveKind(StrEnum):
    """A line of the stock ledger: what happened to a bin's quantity."""

    RECEIPT = "receipt"
    ISSUE = "issue"
    RETURN = "return"
    ADJUST = "adjust"
    WRITE_OFF = "write_off"


# The sign each kind gives its quantity on the ledger (adjust: the signed delta as given).
MOVE_SIGN = {MoveKind.RECEIPT: 1, MoveKind.ISSUE: -1, MoveKind.RETURN: 1, MoveKind.ADJUST: 0,
             MoveKind.WRITE_OFF: -1}
# Kinds a person must say why for (a count corrected, stock written off).
NEEDS_REASON = (MoveKind.ADJUST, MoveKind.WRITE_OFF)

# Keepers and commanders write; dispatchers read (and request); everyone signed in reads
# readiness (DESIGN §5 "Roles" of the depot); gateways never.
WRITERS = (Role.COMMANDER, Role.KEEPER)
READERS = (Role.COMMANDER, Role.KEEPER, Role.DISPATCHER)

LABELS = {
    Category.FLOOD: _l("Flood control"),
    Category.FIRE: _l("Firefighting"),
    Category.FIRE_PREVENTION: _l("Fire prevention"),
    Category.RESCUE: _l("Rescue"),
    Category.MEDICAL: _l("Medical"),
    Category.COMMS: _l("Communications"),
    Category.ENFORCEMENT: _l("Enforcement"),
    Category.VEHICLE: _l("Vehicles"),
    Category.BOAT: _l("Boats"),
    Category.CONSUMABLE: _l("Consumables"),
    ItemStatus.IN_STOCK: _l("In stock"),
    ItemStatus.OUT: _l("Checked out"),
    ItemStatus.REPAIR: _l("In repair"),
    ItemStatus.UNSERVICEABLE: _l("Unserviceable"),
    ItemStatus.LOST: _l("Lost"),
    ItemStatus.RETIRED: _l("Retired"),
    MoveKind.RECEIPT: _l("Receipt"),
    MoveKind.ISSUE: _l("Issue"),
    MoveKind.RETURN: _l("Return"),
    MoveKind.ADJUST: _l("Adjustment"),
    MoveKind.WRITE_OFF: _l("Write-off"),
}

# Item status on pages and the map (the same table for both).
COLOURS = {
    ItemStatus.IN_STOCK: "#2e7d32",
    ItemStatus.OUT: "#1565c0",
    ItemStatus.REPAIR: "#f9a825",
    ItemStatus.UNSERVICEABLE: "#c62828",
    ItemStatus.LOST: "#6a1b9a",
    ItemStatus.RETIRED: "#757575",
    Category.FLOOD: "#0277bd",
    Category.FIRE: "#d84315",
    Category.FIRE_PREVENTION: "#ef6c00",
    Category.RESCUE: "#f9a825",
    Category.MEDICAL: "#c62828",
    Category.COMMS: "#5e35b1",
    Category.ENFORCEMENT: "#37474f",
    Category.VEHICLE: "#455a64",
    Category.BOAT: "#00838f",
    Category.CONSUMABLE: "#6d4c41",
}
