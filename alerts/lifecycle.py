"""The alert lifecycle, pure (DESIGN §5 "Lifecycle", §6 "Alert lifecycle").

- One active alert per (kind, subject); a rule's decision either raises one, raises its level,
  or leaves it. Levels rise at once and never fall by themselves while the alert is active: a
  decision below the current level (but not below the lowest) changes nothing.
- Hysteresis: the alert clears itself only when its condition has stayed below the kind's
  lowest level for the hold time (`alerts.clear_hold_min`); a decision at any level meanwhile
  restarts that clock.
- A level rise asks for a new acknowledgement (the state goes back to `raised`) and restarts
  escalation at the new level's times: what people acknowledged was the lower level.
- Escalation: steps "who:minutes" counted from the time the level was reached, at the base
  times for the kind's highest level and doubled for lower levels; acknowledging stops it.
  Data alerts never escalate (they are about gauges, not people in danger).

Only decisions on windows ending now reach this module, so a replayed or late old reading cannot
raise a cleared alert again (the service evaluates the present, never the reading's time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.choices import AlertKind, AlertState, is_top, rank


@dataclass(frozen=True)
class Active:
    """The active alert as the lifecycle sees it."""

    kind: str
    level: str
    state: str
    level_at: datetime
    below_since: datetime | None
    escalation_step: int


@dataclass(frozen=True)
class Step:
    """What to do with a decision: `raise`, `upgrade`, `below` (start the hold clock), `recover`
    (stop it), `clear` (the hold time passed), or nothing (None)."""

    action: str | None
    level: str | None = None


NOTHING = Step(None)


def on_decision(active: Active | None, kind: str, level: str | None, now: datetime,
                hold: timedelta) -> Step:
    """The lifecycle step for a rule's decision (`level` None: below the lowest level)."""
    if active is None:
        return Step("raise", level) if level is not None else NOTHING
    if level is not None:
        if rank(kind, level) > rank(kind, active.level):
            return Step("upgrade", level)
        return Step("recover") if active.below_since is not None else NOTHING
    if active.below_since is None:
        return Step("below")
    if now - active.below_since >= hold:
        return Step("clear")
    return NOTHING


def escalation_times(kind: str, level: str, minutes: list[float]) -> list[timedelta]:
    """Each step's delay after the level was reached: the base times for the kind's highest
    level, doubled for lower levels; none for data alerts."""
    if kind == AlertKind.DATA:
        return []
    factor = 1 if is_top(kind, level) else 2
    return [timedelta(minutes=m * factor) for m in minutes]


def next_escalation(active: Active, minutes: list[float]) -> datetime | None:
    """When the next escalation step of this alert is due (None: acknowledged or none left)."""
    if active.state not in (AlertState.RAISED, AlertState.ESCALATED):
        return None
    times = escalation_times(active.kind, active.level, minutes)
    if active.escalation_step >= len(times):
        return None
    return active.level_at + times[active.escalation_step]


def due_steps(active: Active, minutes: list[float], now: datetime) -> list[int]:
    """The escalation steps (0-based) due by now and not taken yet, in order: a hub that was
    down past several steps takes each of them once when it comes back."""
    if active.state not in (AlertState.RAISED, AlertState.ESCALATED):
        return []
    times = escalation_times(active.kind, active.level, minutes)
    return [i for i in range(active.escalation_step, len(times))
            if active.level_at + times[i] <= now]
