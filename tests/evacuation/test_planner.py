"""Re-planning: the planner thread makes a version after a change (signals in this process, the
refresh job for changes committed elsewhere), merges bursts and writes nothing when idle; under
the hub's background work the plan is computed in a process of its own."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from alerts.models import Alert
from dispatch.core.db import db, utcnow
from dispatch.core.events import WarningChanged, warning_changed
from dispatch.core.realtime import NAMESPACE
from dispatch.core.runtime import Background
from dispatch.evacuation import jobs, service
from dispatch.evacuation import planner as planner_module
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


def _raise_v1() -> None:
    with db.transaction() as s:
        s.query(Village).filter_by(code="V1").update({"warning_level": "evacuate"})
        s.add(Alert(kind="flash_flood", level="evacuate", state="raised",
                    subject_type="village", subject_code="V1",
                    active_key="flash_flood:V1", villages=["V1"], people=100))


@pytest.mark.any_backend
def test_under_the_hub_the_plan_is_made_in_its_own_process_and_announced_here(
        app, township, login, sio, monkeypatch):  # noqa: F811
    monkeypatch.setattr(planner_module, "GET_READY_AFTER_S", 3.0)
    login("dispatcher")
    office = sio()
    office.get_received(NAMESPACE)
    background = Background(app, [])
    app.extensions["rescuehub.background"] = background
    service._networks.clear()
    stop = jobs.attach(app)
    try:
        # The start request: nobody to move, nothing stored, no process started for it; the
        # process is started (and its road network built) a while after the start.
        time.sleep(0.5)
        assert not background.child("planner").started and _versions(app) == []
        assert _wait_for(lambda: background.child("planner").started)
        _raise_v1()
        warning_changed.send(WarningChanged(("V1",), ()))
        assert _wait_for(lambda: len(_versions(app)) == 1, timeout=30)
        plans: list[dict] = []

        def plan_event_came() -> bool:
            plans.extend(e["args"][0] for e in office.get_received(NAMESPACE)
                         if e["name"] == "plan")
            return bool(plans)

        assert _wait_for(plan_event_came)
        assert plans[0]["version"] == 1 and plans[0]["trigger"]["kind"] == "alert"
        # Computed elsewhere: this process never built the road network.
        assert service._networks == {}
    finally:
        stop()
        background.stop()
        app.extensions.pop("rescuehub.background", None)
