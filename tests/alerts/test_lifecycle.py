"""The pure lifecycle: levels only rise, hold-time clearing, escalation times (DESIGN §6)."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts import lifecycle
from alerts.lifecycle import Active, Step

T0 = datetime(2026, 7, 27, 13, 0, tzinfo=UTC)
HOLD = timedelta(minutes=60)
STEPS = [5.0, 10.0, 15.0]


def active(level="prepare", *, kind="flash_flood", state="raised", below=None, step=0, at=T0):
    return Active(kind, level, state, at, below, step)


@pytest.mark.parametrize(("current", "level", "now", "step"), [
    (None, None, T0, Step(None)),
    (None, "prepare", T0, Step("raise", "prepare")),
    (active("prepare"), "evacuate", T0, Step("upgrade", "evacuate")),
    # Levels never fall by themselves: a lower decision changes nothing.
    (active("evacuate"), "prepare", T0, Step(None)),
    (active("evacuate"), "evacuate", T0, Step(None)),
    # Below the lowest level: the hold clock starts, ...
    (active("evacuate"), None, T0, Step("below")),
    # ... runs ...
    (active(below=T0), None, T0 + timedelta(minutes=59), Step(None)),
    # ... and clears after the hold time.
    (active(below=T0), None, T0 + HOLD, Step("clear")),
    # Any level meanwhile stops the clock (hysteresis).
    (active(below=T0), "prepare", T0 + timedelta(minutes=30), Step("recover")),
    (active("prepare", below=T0), "evacuate", T0 + timedelta(minutes=30),
     Step("upgrade", "evacuate")),
])
def test_decisions(current, level, now, step):
    assert lifecycle.on_decision(current, "flash_flood", level, now, HOLD) == step


@pytest.mark.parametrize(("kind", "level", "expected"), [
    ("flash_flood", "evacuate", [5, 10, 15]),
    ("flash_flood", "prepare", [10, 20, 30]),
    ("slope_movement", "alarm", [5, 10, 15]),
    ("slope_movement", "attention", [10, 20, 30]),
    ("rainstorm", "red", [5, 10, 15]),
    ("data", "missing", []),
])
def test_escalation_times_double_below_the_top_level(kind, level, expected):
    assert lifecycle.escalation_times(kind, level, STEPS) == [
        timedelta(minutes=m) for m in expected]


def test_due_steps_are_taken_once_in_order_even_after_downtime():
    alert = active("evacuate")
    assert lifecycle.due_steps(alert, STEPS, T0 + timedelta(minutes=4)) == []
    assert lifecycle.due_steps(alert, STEPS, T0 + timedelta(minutes=5)) == [0]
    # A hub that was down for 20 minutes takes the three steps once each.
    assert lifecycle.due_steps(alert, STEPS, T0 + timedelta(minutes=20)) == [0, 1, 2]
    assert lifecycle.due_steps(active("evacuate", step=2, state="escalated"), STEPS,
                               T0 + timedelta(minutes=20)) == [2]
    assert lifecycle.next_escalation(active("evacuate", step=1), STEPS) == \
        T0 + timedelta(minutes=10)
    assert lifecycle.next_escalation(active("evacuate", step=3), STEPS) is None


def test_acknowledged_alerts_do_not_escalate():
    acked = active("evacuate", state="acknowledged")
    assert lifecycle.due_steps(acked, STEPS, T0 + timedelta(hours=1)) == []
    assert lifecycle.next_escalation(acked, STEPS) is None
