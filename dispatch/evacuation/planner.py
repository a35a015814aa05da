"""Re-planning within seconds of a change (DESIGN §5: a raised, upgraded or cleared alert, a road
opened or closed, a shelter's status or occupancy change, or a request makes a new version and a
`plan` event).

One planner per hub (`attach`, in the process that owns MQTT, where the rules raise alerts; a web
process of a scale-out has none). Its thread gathers the requests there; the plan itself is
computed and stored in a child process of its own (`Background.child("planner")`), and the
`plan` event sent from here once the version is stored. Measured (bench/alerts.py, prefecture,
1,000 readings/s): planning in the MQTT process took 17 s of CPU per 106 s and its GIL from the
rules, and the publish-to-alert p99 was 339-526 ms; with no re-planning, 231 ms. Changes reach
it two ways:
- the kernel's signals, in this process: `warning_changed` (alerts), `feature_changed` (roads,
  shelters, villages changed through the API), at once;
- the `refresh_plan` job every few seconds: a cheap key of the inputs (levels, closures, shelters,
  people, day or night) read in one query, for changes committed by other processes.
Requests within `evacuation.debounce_s` of each other make one version. A version is stored only
when something is (or was) to move, and only when its inputs differ from the latest live
version's: an idle township writes no versions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import func, select

from dispatch.core.db import db, utcnow
from dispatch.core.errors import HubError
from dispatch.core.realtime import notify
from dispatch.evacuation import rules, service
from dispatch.evacuation.settings import minutes_of_day
from maps.models import HazardZone, RoadSegment, Shelter, Village

log = logging.getLogger(__name__)

EXTENSION = "evacuation.planner"
TRIGGER_ORDER = ("alert", "road", "shelter", "manual")
LAYER_TRIGGERS = {"roads": "road", "shelters": "shelter", "villages": "manual",
                  "hazards": "alert"}
# The planner's process is started and its road network built this long after the hub's start
# when nothing asked for a plan before (get_ready): not at once, so a hub's start does not
# pay for it (~2 s of CPU: imports, app, graph) before it serves.
GET_READY_AFTER_S = 10.0


@dataclass(frozen=True)
class Request:
    kind: str
    ref: str


def plan_event(plan) -> dict[str, Any]:
    """The `plan` live event: the version's summary (the map fetches the layer)."""
    return service.summary(plan)


def store_plan(app: Flask, *, trigger: str, ref: str, actor: str = "hub",
               drill_levels: dict[str, str] | None = None, mode: str | None = None,
               only_if_changed: bool = False):
    """Compute and store a version (None when `only_if_changed` and nothing changed)."""
    with db.transaction() as s:
        previous = service.latest(s, live_only=True)
        mode = mode or (previous.mode if previous is not None else "split")
        doc = service.compute(s, app.config["SETTINGS"], drill_levels=drill_levels, mode=mode)
        if only_if_changed:
            idle = doc["metrics"]["to_move"] == 0 and (previous is None or previous.to_move == 0)
            same = previous is not None and previous.inputs_key == service.inputs_key(doc)
            if idle or same:
                return None
        plan = service.store(s, doc, trigger=trigger, ref=ref, actor=actor)
    log.info("evacuation: plan version %d (%s %s): %d to move, %d placed, %.0f ms",
             plan.version, trigger, ref, plan.to_move, plan.placed,
             doc["metrics"]["total_ms"])
    return plan


def make_plan(app: Flask, *, trigger: str, ref: str, actor: str = "hub",
              drill_levels: dict[str, str] | None = None, mode: str | None = None,
              only_if_changed: bool = False):
    """Compute and store a version, then send the `plan` event (None when nothing changed)."""
    plan = store_plan(app, trigger=trigger, ref=ref, actor=actor, drill_levels=drill_levels,
                      mode=mode, only_if_changed=only_if_changed)
    if plan is not None:
        notify("plan", plan_event(plan))
    return plan


def replan(trigger: str, ref: str) -> dict[str, Any] | None:
    """A re-planning (in the planner's process, or this one): the new version's `plan` event,
    None when nothing changed or no plan can be made (logged)."""
    try:
        plan = store_plan(current_app, trigger=trigger, ref=ref, only_if_changed=True)
        return None if plan is None else plan_event(plan)
    except HubError as exc:  # no roads yet, a road that cannot be routed
        log.warning("evacuation: no plan: %s", exc.message)
    except Exception:
        log.exception("evacuation: planning failed; the next change or the refresh job "
                      "tries again")
    finally:
        db.remove()
    return None


def get_ready() -> None:
    """In the planner's process, soon after the hub's start: build the road network. Measured on
    the demo township under `rescuehub simulate storm`: with the process started and the graph
    built by the first alert, the first version came 8 s after it; got ready before, 1.2 s
    (the debounce time included)."""
    try:
        service.network(db.session)
    except HubError as exc:  # no roads yet: the first plan says so
        log.info("evacuation: no road network to prepare: %s", exc.message)
    finally:
        db.remove()


def nothing_to_move(session) -> bool:
    """True when no village or hazard zone is at a warning level and the latest live version
    moves nobody: `replan` would store nothing (read here, so the planner's process is not
    asked for nothing)."""
    warned = session.scalar(select(func.count(Village.id)).where(Village.warning_level != "none"))
    warned = warned or session.scalar(select(func.count(HazardZone.id))
                                      .where(HazardZone.warning_level != "none"))
    if warned:
        return False
    previous = service.latest(session, live_only=True)
    return previous is None or previous.to_move == 0


Runner = Callable[..., Any]


class Planner:
    """The thread that makes new versions when asked (merged within the debounce time)."""

    def __init__(self, app: Flask, run: Runner | None = None):
        """`run(func, *args)` calls `replan` where it should run: in a child process
        (`ChildProcess.call`, which the thread gets ready first: `get_ready`), or by default
        in this thread."""
        self.app = app
        self.elsewhere = run is not None
        self.run = run or self._in_this_thread
        self.queue: queue.Queue[Request | None] = queue.Queue()
        self.key: tuple | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evacuation-planner",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.queue.put(None)
        self._thread.join(10)

    def _in_this_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        with self.app.app_context():
            return func(*args)

    def request(self, kind: str, ref: str = "") -> None:
        self.queue.put(Request(kind, ref))

    def _gather(self, timeout: float | None = None) -> list[Request] | None:
        """The requests of one version (a burst within the debounce time); [] to stop, None
        when none came within `timeout`."""
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if first is None:
            return []
        wanted = [first]
        deadline = time.monotonic() + self.app.config["SETTINGS"].evacuation.debounce_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                self._stop.set()
                break
            wanted.append(item)
        return wanted

    def _get_ready(self) -> None:
        try:
            self.run(get_ready)
        except Exception:
            log.exception("evacuation: the planner's process did not start; the first change "
                          "tries again")

    def _loop(self) -> None:
        # Until the planner's process has been used: when to get it ready (GET_READY_AFTER_S).
        ready_at = time.monotonic() + GET_READY_AFTER_S if self.elsewhere else None
        while not self._stop.is_set():
            wait = None if ready_at is None else max(0.0, ready_at - time.monotonic())
            wanted = self._gather(wait)
            if wanted is None:
                ready_at = None
                self._get_ready()
                continue
            if not wanted or self._stop.is_set():
                continue
            # The most telling cause names the version (an alert before a road before a shelter
            # before a request), with every reference of that kind.
            first = min(wanted, key=lambda r: TRIGGER_ORDER.index(r.kind))
            refs = sorted({code for r in wanted if r.kind == first.kind
                           for code in r.ref.split(",") if code})
            try:
                with self.app.app_context():
                    try:
                        idle = nothing_to_move(db.session)
                    finally:
                        db.remove()
                if idle:
                    continue
                ready_at = None
                event = self.run(replan, first.kind, ",".join(refs)[:200])
            except Exception:  # the planner's process died, or the database is away
                log.exception("evacuation: planning failed; the next change or the refresh "
                              "job tries again")
                continue
            if event is not None:
                with self.app.app_context():
                    notify("plan", event)


def inputs_key(session, settings, now: datetime | None = None) -> tuple:
    """A cheap key of what a plan reads (one query per table): changes when a level, a
    closure, a shelter, a village's people or day/night changes."""
    cfg = settings.evacuation
    local = (now or utcnow()).astimezone(ZoneInfo(cfg.timezone))
    night = rules.is_night(local, minutes_of_day(cfg.night_start), minutes_of_day(cfg.night_end))
    return (
        tuple(session.execute(select(func.max(Village.updated_at), func.max(Village.warning_at),
                                     func.count(Village.id))).one()),
        tuple(session.execute(select(func.max(HazardZone.updated_at),
                                     func.max(HazardZone.warning_at))).one()),
        # Roads have no update time: which ones are closed, as a count and a sum of their ids.
        tuple(session.execute(select(func.count(RoadSegment.id), func.sum(RoadSegment.id))
                              .where(RoadSegment.is_open.is_(False))).one()),
        tuple(session.execute(select(func.max(Shelter.updated_at),
                                     func.count(Shelter.id))).one()),
        night)
