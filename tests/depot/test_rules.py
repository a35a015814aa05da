"""The depot's pure rules, table by table (no app, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from depot import rules

TODAY = date(2026, 7, 1)
DAY = timedelta(days=1)


@pytest.mark.parametrize(("status", "due", "expires", "reason"), [
    ("in_stock", None, None, None),
    ("in_stock", TODAY, TODAY, None),  # due or expiring today: still goes out today
    ("in_stock", TODAY + DAY, TODAY + DAY, None),
    ("in_stock", TODAY - DAY, None, "inspection_overdue"),
    ("in_stock", None, TODAY - DAY, "expired"),
    ("in_stock", TODAY - DAY, TODAY - DAY, "expired"),  # expired first: no inspection helps
    ("out", TODAY - DAY, TODAY - DAY, "out"),  # the status first
    ("repair", None, None, "repair"),
    ("unserviceable", None, None, "unserviceable"),
    ("lost", None, None, "lost"),
    ("retired", None, None, "retired"),
    ("melted", None, None, "unserviceable"),  # an unknown status never lets an item out
])
def test_unavailable_reason(status, due, expires, reason):
    assert rules.unavailable_reason(rules.ItemState(status, due, expires), TODAY) == reason


@pytest.mark.parametrize(("every", "due"), [
    (30, date(2026, 7, 31)), (365, date(2027, 7, 1)), (1, date(2026, 7, 2)),
    (None, None), (0, None), (-5, None)])
def test_next_inspection(every, due):
    assert rules.next_inspection(TODAY, every) == due


@pytest.mark.parametrize(("condition", "status", "repair"), [
    ("ok", "in_stock", False), ("damaged", "repair", True), ("lost", "lost", False)])
def test_returned(condition, status, repair):
    assert rules.returned(condition) == rules.Return(status, repair)


@pytest.mark.parametrize(("status", "result", "expected"), [
    ("in_stock", "operational", rules.InspectionOutcome("in_stock", TODAY + 30 * DAY)),
    ("in_stock", "monitor", rules.InspectionOutcome("in_stock", TODAY + 30 * DAY)),
    ("repair", "operational", rules.InspectionOutcome("repair", TODAY + 30 * DAY)),
    ("unserviceable", "monitor", rules.InspectionOutcome("unserviceable", TODAY + 30 * DAY)),
    ("in_stock", "repair_required", rules.InspectionOutcome("repair", opens_repair=True)),
    ("in_stock", "unserviceable", rules.InspectionOutcome("unserviceable", opens_repair=True)),
    ("repair", "unserviceable", rules.InspectionOutcome("unserviceable", opens_repair=True)),
    ("in_stock", "lost", rules.InspectionOutcome("lost")),
    ("lost", "operational", rules.InspectionOutcome("lost", TODAY + 30 * DAY)),
    ("out", "operational", rules.InspectionOutcome("out", refused="out")),
    ("retired", "lost", rules.InspectionOutcome("retired", refused="retired")),
])
def test_inspected(status, result, expected):
    assert rules.inspected(status, result, TODAY, 30) == expected


def test_a_pass_of_an_uninspected_type_sets_no_due_date():
    assert rules.inspected("in_stock", "operational", TODAY, None).inspection_due is None


@pytest.mark.parametrize(("outcome", "status"), [("repaired", "in_stock"),
                                                 ("written_off", "retired")])
def test_repair_closed(outcome, status):
    assert rules.repair_closed(outcome).status == status


@pytest.mark.parametrize(("status", "refused"), [
    ("in_stock", None), ("repair", None), ("unserviceable", None), ("out", "out"),
    ("lost", "lost"), ("retired", "retired")])
def test_may_open_repair(status, refused):
    assert rules.may_open_repair(status) == refused


KIT = [{"type": "boat", "count": 1}, {"type": "JACKET", "count": 6},
       {"type": "JACKET", "count": 2}, {"type": "SANDBAG", "count": 50}]


@pytest.mark.parametrize(("given", "short"), [
    ({"BOAT": 1, "JACKET": 8, "SANDBAG": 50}, []),
    ({"BOAT": 2, "JACKET": 9, "SANDBAG": 60}, []),
    ({"JACKET": 7, "SANDBAG": 50},
     [rules.Shortfall("BOAT", Decimal(1), Decimal(0)),
      rules.Shortfall("JACKET", Decimal(8), Decimal(7))]),
    ({}, [rules.Shortfall("BOAT", Decimal(1), Decimal(0)),
          rules.Shortfall("JACKET", Decimal(8), Decimal(0)),
          rules.Shortfall("SANDBAG", Decimal(50), Decimal(0))]),
])
def test_kit_shortfall(given, short):
    assert rules.kit_shortfall(KIT, {k: Decimal(v) for k, v in given.items()}) == short


NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("due", "closed", "overdue"), [
    (NOW - timedelta(seconds=1), None, True), (NOW, None, False),
    (NOW + timedelta(hours=1), None, False), (NOW - timedelta(days=3), NOW, False),
    (None, None, False)])
def test_is_overdue(due, closed, overdue):
    assert rules.is_overdue(due, closed, NOW) is overdue


@pytest.mark.parametrize(("expires", "state"), [
    (None, None), (TODAY - DAY, "expired"), (TODAY, "expiring"), (TODAY + 30 * DAY, "expiring"),
    (TODAY + 31 * DAY, None)])
def test_expiry_state(expires, state):
    assert rules.expiry_state(expires, TODAY, 30) == state


def test_the_reasons_are_the_contracts():
    assert set(rules.REASONS) == {"out", "unserviceable", "repair", "inspection_overdue",
                                  "expired", "lost", "retired", "insufficient_stock"}
