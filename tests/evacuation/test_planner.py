"""Re-planning: the planner thread makes a version after a change (signals in this process, the
refresh job for changes committed elsewhere), merges bursts and writes nothing when idle."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from alerts.models import Alert
from dispatch.core.db import db, utcnow
from dispatch.core.events import WarningChanged, warning_changed
from dispatch.evacuation import jobs
from dispatch.evacuation.models import EvacuationPlan
from maps.models import RoadSegment, Village
from tests.evacuation.test_plans import editor, township  # noqa: F401  (fixtures)


def _versions(app) -> list:
    with app.app_context():
        try:
            return [(p.version, p.trigger_kind, p.trigger_ref)
                    for p in db.session.scalars(select(EvacuationPlan)
                                                .order_by(EvacuationPlan.version))]
        finally:
            db.session.rollback()


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def overrides(overrides):
    return {**overrides, "evacuation": {"debounce_s": 0.2}}


@pytest.fixture
def planner(app, township):  # noqa: F811
    stop = jobs.attach(app)
    yield app.extensions[jobs.EXTENSION]
    stop()


def test_an_idle_township_writes_no_version(app, planner):
    time.sleep(0.8)  # the start request has been taken: nothing to move, nothing stored
    assert _versions(app) == []


def test_a_warning_makes_a_version_and_a_burst_makes_one(app, client, editor, planner):  # noqa: F811
    with db.transaction() as s:
        s.query(Village).filter_by(code="V1").update({"warning_level": "evacuate"})
        s.add(Alert(kind="flash_flood", level="evacuate", state="raised",
                            subject_type="village", subject_code="V1",
                            active_key="flash_flood:V1", villages=["V1"], people=100))
    for _ in range(5):  # five changes within the debounce time: one version
        warning_changed.send(WarningChanged(("V1",), ()))
    assert _wait_for(lambda: len(_versions(app)) == 1)
    time.sleep(0.5)
    assert _versions(app) == [(1, "alert", "V1")]
    # A road closed through the API: the next version at once, by the signal.
    client.patch("/api/v1/roads/R23", json={"is_open": False}, headers=editor)
    assert _wait_for(lambda: len(_versions(app)) == 2)
    assert _versions(app)[1][1:] == ("road", "R23")


def test_the_refresh_job_sees_changes_made_by_other_processes(app, planner):
    with app.app_context():
        jobs.refresh_plan()  # notes the inputs' key
        with db.transaction() as s:  # as another process would: no signal here
            s.query(Village).filter_by(code="V1").update(
                {"warning_level": "evacuate", "warning_at": utcnow()})
            s.add(Alert(kind="flash_flood", level="evacuate", state="raised",
                                subject_type="village", subject_code="V1",
                                active_key="flash_flood:V1", villages=["V1"], people=100))
        jobs.refresh_plan()
        db.session.rollback()
    assert _wait_for(lambda: len(_versions(app)) == 1)
    assert _versions(app)[0][1:] == ("alert", "refresh")
    with app.app_context():
        with db.transaction() as s:
            s.query(RoadSegment).filter_by(code="R12").update({"is_open": False})
        jobs.refresh_plan()
        db.session.rollback()
    assert _wait_for(lambda: len(_versions(app)) == 2)
    assert _versions(app)[1][1:] == ("road", "refresh")
