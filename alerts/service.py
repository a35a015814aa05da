"""The alert lifecycle on the database: decisions become alerts, people act on them, levels go
onto villages and hazard zones (DESIGN §5 "Alerts (contract)").

Every function works in the caller's transaction and returns `Change`s; the caller commits and
then hands them to `announce` (Socket.IO `alert` events, the channels, the `warning_changed`
signal, metrics): nothing is told before it is true. Each transition is written three times, on
purpose: the alert row (its present), its history (what the alert page shows) and the audit
chain (the tamper-evident trace, 全程留痕).

CAP 1.2: an alert of a public kind gets an `Alert` message when raised, an `Update` (referencing
the previous message) when its level rises, an `Update` with responseType AllClear when cleared
and a `Cancel` when cancelled. The public warning goes draft → approved → published by a
commander; once an alert's warning was published, its AllClear and Cancel are published at once
(those who heard the warning must hear that it is over), and a level rise drafts an Update for
the commander to approve and publish again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts import lifecycle
from alerts.choices import (
    ACTIVE_STATES,
    LABELS,
    LEVEL_LABELS,
    LEVELS,
    WARNING_LEVELS,
    WARNING_OF,
    AlertKind,
    AlertState,
    CapStatus,
    rank,
)
from alerts.models import Alert, AlertHistory, AlertMessage
from alerts.settings import escalation_steps
from dispatch.core import audit
from dispatch.core.db import utcnow
from dispatch.core.errors import BadRequest, Conflict, NotFound
from maps.models import HazardZone, Village

log = logging.getLogger(__name__)

HUB = "hub"
# The largest id a BIGINT column holds (a larger one in a URL is simply not found).
MAX_ID = 2**63 - 1
# The most characters of a clear/cancel reason or acknowledgement note kept.
MAX_NOTE = 1000


@dataclass(frozen=True)
class Subject:
    """What an alert is about, as the evaluator found it."""

    kind: str
    code: str
    name: str
    subject_type: str
    villages: tuple[str, ...] = ()
    people: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.code}"


@dataclass
class Change:
    """One committed-to-be transition of one alert (for `announce`)."""

    alert_id: int
    event: str  # raised | upgraded | acknowledged | escalated | cleared | cancelled | approved |
    #             published | below | recovered
    county: bool = False


@dataclass
class Changes:
    """What a transaction changed: alerts, and villages/hazards whose warning level moved."""

    alerts: list[Change] = field(default_factory=list)
    villages: set[str] = field(default_factory=set)
    hazards: set[str] = field(default_factory=set)
    # Filled before the commit by prepare_announcement: each changed alert's event payload, and
    # the active alerts counted by "kind:level" (for rescuehub_alerts_active).
    payloads: dict[int, dict] = field(default_factory=dict)
    active: dict[str, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.alerts or self.villages or self.hazards)

    def extend(self, other: Changes) -> None:
        self.alerts += other.alerts
        self.villages |= other.villages
        self.hazards |= other.hazards


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def describe(session: Session, alert: Alert, *, with_history: bool = True) -> dict[str, Any]:
    """The contract's alert JSON."""
    answer: dict[str, Any] = {
        "id": alert.id, "kind": alert.kind, "level": alert.level, "state": alert.state,
        "subject": {"type": alert.subject_type, "code": alert.subject_code,
                    "name": alert.subject_name},
        "villages": list(alert.villages or []), "people": alert.people,
        "raised_at": _iso(alert.raised_at), "updated_at": _iso(alert.updated_at),
        "closed_at": _iso(alert.closed_at), "rule": alert.rule or {},
        "evidence": alert.evidence or [], "forecast": alert.forecast,
        "escalation_step": alert.escalation_step,
        "escalation_due_at": _iso(alert.escalation_due_at),
        "acknowledged_by": alert.acknowledged_by or None,
        "labels": {"kind": str(LABELS[AlertKind(alert.kind)]),
                   "level": str(LEVEL_LABELS[(AlertKind(alert.kind), alert.level)]),
                   "state": str(LABELS[AlertState(alert.state)])},
        "cap": _cap_summary(session, alert),
    }
    if with_history:
        answer["history"] = [
            {"at": _iso(h.at), "state": h.state, "level": h.level, "by": h.by, "note": h.note}
            for h in session.scalars(select(AlertHistory).where(
                AlertHistory.alert_id == alert.id).order_by(AlertHistory.id))]
    return answer


def _cap_summary(session: Session, alert: Alert) -> dict[str, Any]:
    latest = _latest_message(session, alert)
    if latest is None:
        return {"status": CapStatus.NONE.value, "identifier": None, "url": None}
    return {"status": alert.cap_status, "identifier": latest.identifier,
            "url": f"/api/v1/alerts/{alert.id}.cap"}


def get(session: Session, alert_id: int, *, lock: bool = False) -> Alert:
    """The alert with this id (NotFound otherwise, also for ids no database column holds)."""
    if not 1 <= alert_id <= MAX_ID:
        raise NotFound(_l("No alert %(id)s.", id=alert_id))
    query = select(Alert).where(Alert.id == alert_id)
    if lock:
        query = query.with_for_update()
    alert = session.scalar(query)
    if alert is None:
        raise NotFound(_l("No alert %(id)s.", id=alert_id))
    return alert


def active(session: Session, key: str) -> Alert | None:
    """The active alert of "kind:subject", if any."""
    return session.scalar(select(Alert).where(Alert.active_key == key))


def _history(session: Session, alert: Alert, by: str, note: str = "", *,
             state: str | None = None) -> None:
    session.add(AlertHistory(alert_id=alert.id, at=alert.updated_at, state=state or alert.state,
                             level=alert.level, by=by, note=note[:MAX_NOTE]))


def _audit(session: Session, alert: Alert, action: str, actor: str, before: dict | None) -> None:
    audit.record(session, actor=actor, action=f"alert.{action}", entity_type="alert",
                 entity_id=alert.id, before=before, after=_snapshot(alert))


def _snapshot(alert: Alert) -> dict[str, Any]:
    return {"kind": alert.kind, "subject": alert.subject_code, "level": alert.level,
            "state": alert.state, "rule": alert.rule, "escalation_step": alert.escalation_step,
            "cap_status": alert.cap_status, "reason": alert.close_reason or None}


def _escalation_minutes() -> list[float]:
    steps = escalation_steps(current_app.config["SETTINGS"].alerts.escalation)
    return [s.minutes for s in steps]


def _as_active(alert: Alert) -> lifecycle.Active:
    return lifecycle.Active(alert.kind, alert.level, alert.state, alert.level_at,
                            alert.below_since, alert.escalation_step)


def _schedule_escalation(alert: Alert) -> None:
    alert.escalation_due_at = lifecycle.next_escalation(_as_active(alert),
                                                        _escalation_minutes())


# --- decisions ----------------------------------------------------------------------------------

_UNKNOWN = object()


def apply_decision(session: Session, subject: Subject, decision, now: datetime, *,
                   current: Any = _UNKNOWN, held_by: Any = _UNKNOWN) -> Changes:
    """Apply a rule's decision (alerts.rules.Decision, or None for "below the lowest level")
    to the subject's active alert, per alerts.lifecycle. `current`: the subject's active alert
    (or None) when the caller read them all at once (alerts.evaluate: one query per pass), and
    `held_by` likewise the subject's alert a person closed that still holds off a new one.

    After a person clears or cancels an alert whose rule still sees the condition, no new alert
    of the same kind and subject is raised at that level or below until the rule has seen the
    condition below the lowest level once (re-armed, as redash's alerts do): otherwise the next
    pass would raise it again at once and the person's decision would mean nothing."""
    changes = Changes()
    level = decision.level if decision is not None else None
    alert = active(session, subject.key) if current is _UNKNOWN else current
    if alert is None and (_held_off(session, subject, level, held_by) or level is None):
        return changes  # the usual case: nothing raised, nothing to raise
    hold = timedelta(minutes=current_app.config["SETTINGS"].alerts.clear_hold_min)
    step = lifecycle.on_decision(_as_active(alert) if alert else None, subject.kind, level, now,
                                 hold)
    if step.action == "raise":
        alert = _raise(session, subject, decision, now)
        if alert is not None:
            changes.alerts.append(Change(alert.id, "raised"))
    elif step.action == "upgrade":
        before = _snapshot(alert)
        alert.level, alert.level_at, alert.updated_at = step.level, now, now
        alert.state, alert.below_since, alert.escalation_step = AlertState.RAISED, None, 0
        _take_decision(alert, decision, subject)
        _schedule_escalation(alert)
        _history(session, alert, HUB, _("Level rose to %(level)s: %(rule)s",
                                        level=_level_text(alert), rule=_rule_text(alert)))
        _audit(session, alert, "upgraded", HUB, before)
        _draft_cap(session, alert, "Update", now)
        changes.alerts.append(Change(alert.id, "upgraded"))
    elif step.action == "below":
        alert.below_since = now
    elif step.action == "recover":
        alert.below_since = None
    elif step.action == "clear":
        changes.alerts.append(_close(session, alert, AlertState.CLEARED, HUB, _(
            "The condition stayed below the lowest level for %(minutes)d minutes.",
            minutes=int(hold.total_seconds() // 60)), now))
    elif alert is not None and decision is not None:
        # Same or lower level: keep the freshest numbers as evidence (the level stays).
        if decision.level == alert.level:
            _take_decision(alert, decision, subject)
    if changes.alerts:
        changes.extend(refresh_warnings(session, subject.villages, _hazards_of(subject), now))
    return changes


def _held_off(session: Session, subject: Subject, level: str | None, held_by: Any) -> bool:
    """Whether a person's clear or cancel still holds off a new alert at this level; re-arms
    (and says no) once the rule sees the condition below, or a higher level than was closed."""
    held = holding_off(session, subject.key) if held_by is _UNKNOWN else held_by
    if held is None:
        return False
    if level is None or rank(subject.kind, level) > rank(subject.kind, held.level):
        held.holds_off = False
        return False
    return True


def holding_off(session: Session, key: str) -> Alert | None:
    """The closed alert of "kind:subject" that still holds off a new one, if any."""
    kind, _, code = key.partition(":")
    return session.scalar(select(Alert).where(Alert.holds_off.is_(True), Alert.kind == kind,
                                              Alert.subject_code == code)
                          .order_by(Alert.id.desc()).limit(1))


def _hazards_of(subject: Subject) -> tuple[str, ...]:
    return (subject.code,) if subject.subject_type == "hazard" else ()


def _take_decision(alert: Alert, decision, subject: Subject) -> None:
    alert.rule = dict(decision.rule)
    alert.evidence = [dict(e) for e in decision.evidence]
    alert.forecast = dict(decision.forecast) if decision.forecast else None
    alert.villages = list(subject.villages)
    alert.people = subject.people


def _raise(session: Session, subject: Subject, decision, now: datetime) -> Alert | None:
    alert = Alert(kind=subject.kind, level=decision.level, state=AlertState.RAISED,
                  subject_type=subject.subject_type, subject_code=subject.code,
                  subject_name=subject.name, active_key=subject.key, raised_at=now,
                  updated_at=now, level_at=now, escalation_step=0, cap_status=CapStatus.NONE,
                  close_reason="", holds_off=False)
    _take_decision(alert, decision, subject)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # Another process raised it first (the UNIQUE active_key): theirs stands.
        log.info("alert %s was raised by another process", subject.key)
        return None
    _schedule_escalation(alert)
    _history(session, alert, HUB, _("Raised: %(rule)s", rule=_rule_text(alert)))
    _audit(session, alert, "raised", HUB, None)
    _draft_cap(session, alert, "Alert", now)
    return alert


def _close(session: Session, alert: Alert, state: AlertState, actor: str, reason: str,
           now: datetime) -> Change:
    before = _snapshot(alert)
    alert.state, alert.active_key, alert.closed_at, alert.updated_at = state, None, now, now
    alert.close_reason, alert.escalation_due_at = reason[:MAX_NOTE], None
    _history(session, alert, actor, reason)
    _audit(session, alert, state.value, actor, before)
    _draft_cap(session, alert, "Cancel" if state == AlertState.CANCELLED else "Update", now,
               all_clear=state == AlertState.CLEARED)
    return Change(alert.id, state.value)


# --- what people do -----------------------------------------------------------------------------

def _open(session: Session, alert_id: int) -> Alert:
    alert = get(session, alert_id, lock=True)
    if alert.state not in ACTIVE_STATES:
        raise Conflict(_l("Alert %(id)s is %(state)s already: nothing more can be done with "
                          "it.", id=alert.id, state=LABELS[AlertState(alert.state)]),
                       code="alert_closed")
    return alert


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest(_l("Give a reason: it goes into the alert's history and the audit "
                            "log."), code="reason_required", details={"field": "reason"})
    return reason.strip()


def acknowledge(session: Session, alert_id: int, *, actor: str, note: Any = "") -> Changes:
    """A person has seen the alert: escalation stops (again raised if its level rises)."""
    alert = _open(session, alert_id)
    now = utcnow()
    before = _snapshot(alert)
    alert.state, alert.acknowledged_at, alert.acknowledged_by = AlertState.ACKNOWLEDGED, now, actor
    alert.updated_at, alert.escalation_due_at = now, None
    _history(session, alert, actor, note.strip() if isinstance(note, str) else "")
    _audit(session, alert, "acknowledged", actor, before)
    return Changes([Change(alert.id, "acknowledged")])


def clear(session: Session, alert_id: int, *, actor: str, reason: Any) -> Changes:
    """A commander ends the alert (the danger is over), with a reason."""
    return _close_by_person(session, alert_id, AlertState.CLEARED, actor, reason)


def cancel(session: Session, alert_id: int, *, actor: str, reason: Any) -> Changes:
    """A commander withdraws the alert as raised in error, with a reason."""
    return _close_by_person(session, alert_id, AlertState.CANCELLED, actor, reason)


def _close_by_person(session: Session, alert_id: int, state: AlertState, actor: str,
                     reason: Any) -> Changes:
    text = _reason(reason)
    alert = _open(session, alert_id)
    now = utcnow()
    # Closed while its rule still sees the condition: hold off a new one (apply_decision).
    alert.holds_off = alert.below_since is None
    changes = Changes([_close(session, alert, state, actor, text, now)])
    changes.extend(refresh_warnings(session, alert.villages, _zone(alert), now))
    return changes


def _zone(alert: Alert) -> tuple[str, ...]:
    return (alert.subject_code,) if alert.subject_type == "hazard" else ()


def _latest_message(session: Session, alert: Alert) -> AlertMessage | None:
    return session.scalar(select(AlertMessage).where(AlertMessage.alert_id == alert.id)
                          .order_by(AlertMessage.n.desc()).limit(1))


def approve(session: Session, alert_id: int, *, actor: str) -> Changes:
    """A commander approves the drafted public warning (CAP)."""
    alert = _open(session, alert_id)
    message = _latest_message(session, alert)
    if message is None or message.status != CapStatus.DRAFT:
        raise Conflict(_l("There is no drafted public warning to approve for alert %(id)s.",
                          id=alert.id), code="nothing_to_approve")
    before = _snapshot(alert)
    message.status, message.approved_by = CapStatus.APPROVED, actor
    alert.cap_status, alert.updated_at = CapStatus.APPROVED, utcnow()
    _history(session, alert, actor, _("Public warning %(identifier)s approved.",
                                      identifier=message.identifier))
    _audit(session, alert, "approved", actor, before)
    return Changes([Change(alert.id, "approved")])


def publish(session: Session, alert_id: int, *, actor: str) -> Changes:
    """A commander publishes the approved public warning: it joins the Atom feed."""
    alert = _open(session, alert_id)
    message = _latest_message(session, alert)
    if message is None or message.status != CapStatus.APPROVED:
        raise Conflict(_l("Approve the public warning of alert %(id)s before publishing it.",
                          id=alert.id), code="not_approved")
    before = _snapshot(alert)
    now = utcnow()
    message.status, message.published_at = CapStatus.PUBLISHED, now
    alert.cap_status, alert.updated_at = CapStatus.PUBLISHED, now
    _history(session, alert, actor, _("Public warning %(identifier)s published.",
                                      identifier=message.identifier))
    _audit(session, alert, "published", actor, before)
    return Changes([Change(alert.id, "published")])


# --- escalation ---------------------------------------------------------------------------------

def escalate_due(session: Session, now: datetime) -> Changes:
    """Take every escalation step that is due (alerts.escalation), each once, in order."""
    steps = escalation_steps(current_app.config["SETTINGS"].alerts.escalation)
    minutes = [s.minutes for s in steps]
    changes = Changes()
    due = session.scalars(select(Alert).where(Alert.escalation_due_at <= now,
                                              Alert.active_key.is_not(None))
                          .order_by(Alert.id).with_for_update()).all()
    for alert in due:
        before = _snapshot(alert)
        for index in lifecycle.due_steps(_as_active(alert), minutes, now):
            target = steps[index].target
            alert.escalation_step, alert.state, alert.updated_at = (
                index + 1, AlertState.ESCALATED, now)
            _history(session, alert, HUB, _escalation_note(target, alert))
            changes.alerts.append(Change(alert.id, "escalated", county=target == "county"))
        _schedule_escalation(alert)
        _audit(session, alert, "escalated", HUB, before)
    return changes


def _escalation_note(target: str, alert: Alert) -> str:
    if target == "county":
        return _("Not acknowledged: escalated to the county (乡呼县应).")
    if target == "commander":
        return _("Not acknowledged: escalated to the commander.")
    return _("Not acknowledged: escalated to the dispatchers on duty.")


# --- warning levels onto villages and hazard zones ----------------------------------------------

def refresh_warnings(session: Session, villages, hazards, now: datetime) -> Changes:
    """Recompute the warning level of these villages and hazard zones from their active alerts
    (DESIGN §5: the highest of flash_flood, the landslide kinds of their zones, slope movement
    mapped) and write it onto their rows; returns those whose level changed."""
    changes = Changes()
    villages, hazards = set(villages), set(hazards)
    if not villages and not hazards:
        return changes
    rows = session.execute(select(Alert.kind, Alert.level, Alert.id, Alert.villages,
                                  Alert.subject_code, Alert.subject_type)
                           .where(Alert.active_key.is_not(None),
                                  Alert.kind.in_(list(WARNING_OF)))).all()
    best_village: dict[str, tuple[int, int | None]] = {}
    best_hazard: dict[str, int] = {}
    for kind, level, alert_id, alert_villages, subject, subject_type in rows:
        warning = WARNING_OF[kind].get(level)
        if warning is None:
            continue
        order = WARNING_LEVELS.index(warning)
        for code in alert_villages or ():
            if order > best_village.get(code, (0, None))[0]:
                best_village[code] = (order, alert_id)
        if subject_type == "hazard" and order > best_hazard.get(subject, 0):
            best_hazard[subject] = order
    for village in session.scalars(select(Village).where(Village.code.in_(villages))):
        order, alert_id = best_village.get(village.code, (0, None))
        level = WARNING_LEVELS[order]
        if village.warning_level != level:
            session.execute(update(Village).where(Village.id == village.id).values(
                warning_level=level, warning_alert_id=alert_id, warning_at=now,
                warning_sent_at=None,
                updated_at=Village.updated_at))
            changes.villages.add(village.code)
    for zone in session.scalars(select(HazardZone).where(HazardZone.code.in_(hazards))):
        level = WARNING_LEVELS[best_hazard.get(zone.code, 0)]
        if zone.warning_level != level:
            session.execute(update(HazardZone).where(HazardZone.id == zone.id).values(
                warning_level=level, warning_at=now, updated_at=HazardZone.updated_at))
            changes.hazards.add(zone.code)
    return changes


# --- CAP ----------------------------------------------------------------------------------------

def _level_text(alert: Alert) -> str:
    return str(LEVEL_LABELS[(AlertKind(alert.kind), alert.level)])


def _rule_text(alert: Alert) -> str:
    rule = alert.rule or {}
    parts = [str(rule.get("source", ""))]
    for key in ("window_h", "observed_mm", "threshold_mm", "soil", "event_mm", "duration_h",
                "intensity_mm_h", "threshold_mm_h", "velocity_mm_d", "threshold_mm_d",
                "agreeing"):
        if rule.get(key) is not None:
            parts.append(f"{key}={rule[key]}")
    return " ".join(p for p in parts if p)


def _draft_cap(session: Session, alert: Alert, msg_type: str, now: datetime, *,
               all_clear: bool = False) -> None:
    """Write the alert's next CAP message (module docstring: who approves and publishes)."""
    if alert.kind == AlertKind.DATA:
        return
    from alerts import capmessages

    previous = session.execute(select(func.max(AlertMessage.n)).where(
        AlertMessage.alert_id == alert.id)).scalar() or 0
    was_published = previous and session.scalar(select(func.count()).where(
        AlertMessage.alert_id == alert.id, AlertMessage.status == CapStatus.PUBLISHED)) > 0
    closing = msg_type == "Cancel" or all_clear
    status = CapStatus.PUBLISHED if (closing and was_published) else CapStatus.DRAFT
    message = capmessages.build(session, alert, previous + 1, msg_type, now,
                                all_clear=all_clear)
    session.add(AlertMessage(alert_id=alert.id, n=previous + 1, identifier=message.identifier,
                             msg_type=msg_type, response="AllClear" if all_clear else "",
                             sent_at=now, status=status,
                             published_at=now if status == CapStatus.PUBLISHED else None,
                             xml=message.xml.decode("utf-8")))
    if closing and not was_published:
        return  # nothing public to take back; the alert's warning stays as it was
    alert.cap_status = status


def messages(session: Session, alert: Alert) -> list[AlertMessage]:
    """The alert's CAP messages, oldest first."""
    return list(session.scalars(select(AlertMessage).where(AlertMessage.alert_id == alert.id)
                                .order_by(AlertMessage.n)))



# --- after the transaction ----------------------------------------------------------------------

# The state each event puts an alert in, for rescuehub_alert_transitions_total{kind,state} (a
# level rise is raised again; approving and publishing change the public warning, not the state).
STATE_OF_EVENT = {"raised": "raised", "upgraded": "raised", "acknowledged": "acknowledged",
                  "escalated": "escalated", "cleared": "cleared", "cancelled": "cancelled"}

# Transitions that webhooks hear about (acknowledging and the hold clock are internal).
DELIVERED = {"raised", "upgraded", "escalated", "cleared", "cancelled", "published"}


def prepare_announcement(session: Session, changes: Changes) -> None:
    """Before the commit: each changed alert's event payload, its webhook deliveries (rows in
    this transaction, so a crash right after the commit still sends them) and the county step."""
    from alerts import channels

    if not changes.alerts:
        return
    session.flush()
    settings = current_app.config["SETTINGS"]
    payloads: dict[int, dict] = {}
    for change in changes.alerts:
        alert = session.get(Alert, change.alert_id)
        payload = payloads[alert.id] = describe(session, alert, with_history=False)
        message = _latest_message(session, alert)
        cap_xml = message.xml.encode("utf-8") if message is not None else None
        if change.event in DELIVERED:
            channels.queue_deliveries(session, payload, change.event, settings=settings,
                                      cap_xml=cap_xml)
        if change.county and not channels.queue_county(session, payload, settings=settings,
                                                       cap_xml=cap_xml):
            alert.updated_at = utcnow()
            _history(session, alert, HUB, _("No county webhook is configured "
                                            "(alerts.county_webhook): call the county now."))
    changes.payloads = payloads
    changes.active = dict(session.execute(
        select(Alert.kind + ":" + Alert.level, func.count()).where(
            Alert.active_key.is_not(None)).group_by(Alert.kind, Alert.level)).all())


def announce(changes: Changes) -> None:
    """After the commit: `alert` events to the office and the villages' rooms, metrics, the
    channels (retained village topics, webhooks) and the `warning_changed` signal."""
    from alerts import channels, metrics
    from dispatch.core.events import WarningChanged, warning_changed
    from dispatch.core.realtime import notify

    payloads = changes.payloads
    for change in changes.alerts:
        payload = payloads.get(change.alert_id)
        if payload is None:
            continue
        state = STATE_OF_EVENT.get(change.event)
        if state is not None:
            metrics.alert_transitions.labels(kind=payload["kind"], state=state).inc()
        rooms = ["office", *(f"village:{code}" for code in payload["villages"])]
        notify("alert", {"event": change.event, "alert": payload}, rooms=rooms)
    active_counts = changes.active
    if active_counts is not None:
        for kind, levels in LEVELS.items():
            for level in levels:
                metrics.alerts_active.labels(kind=kind, level=level).set(
                    active_counts.get(f"{kind}:{level}", 0))
    channels.nudge(current_app._get_current_object())
    if changes.villages or changes.hazards:
        warning_changed.send(WarningChanged(tuple(sorted(changes.villages)),
                                            tuple(sorted(changes.hazards))))
