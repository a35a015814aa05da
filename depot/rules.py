"""The depot's pure decisions (DESIGN §5 "Depot (contract)"): whether an item may go out and why
not, when its next inspection is due, what a return or an inspection does to it, what a kit
still lacks, and whether a check-out is overdue. No Flask, no database: plain values in and out.

Dates are calendar days in the depot's time zone: an item whose inspection is due today, or that
expires today, may still go out today; the day after, it may not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

# Why an item cannot go out (the 409 `unavailable` answer's reasons, DESIGN §5), and a stock
# line's when the bin holds less than asked.
STATUS_REASONS = ("out", "repair", "unserviceable", "lost", "retired")
REASONS = ("out", "unserviceable", "repair", "inspection_overdue", "expired", "lost", "retired",
           "insufficient_stock")
CONDITIONS = ("ok", "damaged", "lost")
RESULTS = ("operational", "monitor", "repair_required", "unserviceable", "lost")
OUTCOMES = ("repaired", "written_off")


@dataclass(frozen=True)
class ItemState:
    """What decides whether an item may go out."""

    status: str
    inspection_due: date | None = None
    expires: date | None = None


def unavailable_reason(item: ItemState, today: date) -> str | None:
    """Why the item cannot be checked out today, or None when it can: its status first (an item
    that is out is out, whatever its dates), then expiry, then an overdue inspection."""
    if item.status in STATUS_REASONS:
        return item.status
    if item.status != "in_stock":
        return "unserviceable"  # an unknown status never lets an item out
    if item.expires is not None and item.expires < today:
        return "expired"
    if item.inspection_due is not None and item.inspection_due < today:
        return "inspection_overdue"
    return None


def next_inspection(today: date, every_days: int | None) -> date | None:
    """When the next inspection is due after one today (None: the type is not inspected)."""
    if not every_days or every_days <= 0:
        return None
    return today + timedelta(days=every_days)


@dataclass(frozen=True)
class Return:
    """What a check-in does to an item: its new status and whether a repair record opens."""

    status: str
    opens_repair: bool


RETURNS = {
    "ok": Return("in_stock", False),
    "damaged": Return("repair", True),
    "lost": Return("lost", False),
}


def returned(condition: str) -> Return:
    """The outcome of returning an item in `condition` (ok, damaged, lost)."""
    return RETURNS[condition]


@dataclass(frozen=True)
class InspectionOutcome:
    """What an inspection does: the item's new status, its next due date (None: unchanged) and
    whether a repair record opens; `refused` names why the inspection cannot be taken."""

    status: str
    inspection_due: date | None = None
    opens_repair: bool = False
    refused: str | None = None


def inspected(status: str, result: str, today: date,
              every_days: int | None) -> InspectionOutcome:
    """The outcome of an inspection with `result` of an item in `status`.

    A pass (operational, monitor) sets the next due date and leaves the status as it is: an item
    in repair or unserviceable stays so until a repair record closes it. A failure takes the item
    out of service and opens a repair record; `lost` marks it lost. An item that is out is
    checked in first (its check-out line would dangle), a retired one is no longer inspected."""
    if status in ("out", "retired"):
        return InspectionOutcome(status, refused=status)
    if result in ("operational", "monitor"):
        return InspectionOutcome(status, next_inspection(today, every_days))
    if result == "lost":
        return InspectionOutcome("lost")
    # repair_required, unserviceable: a repair record closes either (one is opened unless the
    # item already has an open one: the caller knows).
    return InspectionOutcome("repair" if result == "repair_required" else "unserviceable",
                             opens_repair=True)


@dataclass(frozen=True)
class RepairOutcome:
    """What closing a repair does: the item's new status."""

    status: str


def repair_closed(outcome: str) -> RepairOutcome:
    """A repaired item is back in stock; one written off is retired."""
    return RepairOutcome("in_stock" if outcome == "repaired" else "retired")


def may_open_repair(status: str) -> str | None:
    """Why a repair cannot be opened for an item in `status` (None: it can)."""
    if status in ("out", "lost", "retired"):
        return status
    return None


@dataclass(frozen=True)
class Shortfall:
    """A kit line the given items and stock do not cover."""

    type: str
    needed: Decimal
    given: Decimal


def kit_shortfall(lines: Iterable[Mapping[str, object]],
                  given: Mapping[str, Decimal]) -> list[Shortfall]:
    """Each kit line (`{"type", "count"}`) that `given` (quantity per type code) falls short of,
    in the kit's order. Lines of the same type add up."""
    needed: dict[str, Decimal] = {}
    for line in lines:
        code = str(line["type"]).upper()
        needed[code] = needed.get(code, Decimal(0)) + Decimal(str(line["count"]))
    return [Shortfall(code, count, given.get(code, Decimal(0)))
            for code, count in needed.items() if given.get(code, Decimal(0)) < count]


def is_overdue(due: datetime | None, closed: datetime | None, now: datetime) -> bool:
    """Whether a check-out is open past its due time."""
    return closed is None and due is not None and due < now


def expiry_state(expires: date | None, today: date, warn_days: int) -> str | None:
    """`expired` (the day after `expires`), `expiring` (within warn_days), or None."""
    if expires is None:
        return None
    if expires < today:
        return "expired"
    if expires <= today + timedelta(days=warn_days):
        return "expiring"
    return None
