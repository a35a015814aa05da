"""Storing readings: the database half of the ingest rules of DESIGN §5.

`telemetry.decode` turns a payload into readings and rejections (pure); this module checks each
reading against the registry (unknown, foreign, retired, unit, range), stores the good ones in one
statement that ignores (sensor, ts) already there, tells duplicates (same value, a no-op) from
conflicts (another value: dead-lettered, the stored value stands), keeps every rejection as a dead
letter with its raw payload, and counts everything. The caller owns the transaction: MQTT
messages are acknowledged only after it commits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, insert, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatch.core import metrics
from dispatch.core.db import UTCDateTime
from dispatch.core.models import Gateway
from telemetry.decode import Decoded, Reading, Rejection, decode_payload
from telemetry.models import DeadLetter, ReadingHourDirty, Sensor
from telemetry.models import Reading as StoredReading
from telemetry.state import Pending, TelemetryState

# A too_large payload keeps this many first bytes in its dead letter.
TOO_LARGE_KEEP = 4096


@dataclass
class IngestResult:
    """What became of one message: counts, and each rejection with its index and reason."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int | None, str]] = field(default_factory=list)
    # (sensor code, reading, QC flag) of each reading stored.
    stored_readings: list[tuple[str, Reading, str]] = field(default_factory=list)

    def as_http(self) -> dict:
        return {"stored": self.stored, "duplicates": self.duplicates,
                "rejected": [{"index": i, "reason": r} for i, r in self.rejected]}


@dataclass(frozen=True)
class IngestLimits:
    """The ingest.* settings."""

    max_payload_bytes: int = 524288
    max_future_s: int = 300
    max_age_days: int = 30


def _dialect(session: Session):
    return postgresql if session.bind.dialect.name == "postgresql" else sqlite


def hour_of(ts: datetime) -> datetime:
    """The hour (start) whose roll-up holds a reading at ts: hours are (h, h + 1 h], as rain
    windows are (now − W, now], so a report at 10:00:00 belongs to 09:00-10:00."""
    floor = ts.replace(minute=0, second=0, microsecond=0)
    return floor - timedelta(hours=1) if floor == ts else floor


@dataclass
class _Touched:
    """What one transaction changed for a sensor (written by Ingest.finish)."""

    sensor: Sensor
    count: int = 0
    newest: tuple[datetime, float, str] | None = None


def _check(reading: Reading, sensor: Sensor | None, gateway_id: int | None) -> str | None:
    """The registry checks of DESIGN §5, in order; None when the reading may be stored."""
    if sensor is None:
        return "unknown_sensor"
    if gateway_id is not None and sensor.gateway_id != gateway_id:
        return "foreign_sensor"
    if sensor.retired:
        return "retired_sensor"
    if reading.unit is not None and reading.unit != sensor.unit:
        return "unit_mismatch"
    if not sensor.range_min <= reading.value <= sensor.range_max:
        return "out_of_range"
    return None


class Ingest:
    """Stores decoded messages in one transaction, in three steps: `message()` for each message,
    `finish()` before the commit (sensor revisions and last values, gateways seen, hours to roll
    up), and `apply()` after it (the process's telemetry state learns the new readings)."""

    def __init__(self, session: Session, limits: IngestLimits,
                 state: TelemetryState | None = None):
        self.session = session
        self.limits = limits
        self.state = state if state is not None else TelemetryState()
        self.pending = Pending()
        self._touched: dict[int, _Touched] = {}
        self._gateways: set[int] = set()
        self._revisions: dict[int, int] = {}
        self.now: datetime | None = None
        # `sensor_status` events to send after the commit (sensors reporting again).
        self.status_events: list[dict] = []

    def message(self, raw: bytes, *, topic: str, gateway: str | None, message_id: str,
                now: datetime) -> IngestResult:
        """Decode, check, store and dead-letter one message (in the caller's transaction)."""
        decoded = decode_payload(raw, now=now, max_payload_bytes=self.limits.max_payload_bytes,
                                 max_future_s=self.limits.max_future_s,
                                 max_age_days=self.limits.max_age_days)
        result = IngestResult()
        self.now = now
        gateway_id = self._gateway_id(gateway)
        if gateway_id is not None:
            self._gateways.add(gateway_id)
        letters = [self._letter(raw, topic, gateway, message_id, r) for r in decoded.rejections]
        result.rejected += [(r.index, r.reason) for r in decoded.rejections]
        if gateway is not None and gateway_id is None and decoded.readings:
            # A topic naming no registered gateway: every reading in it is foreign.
            for r in decoded.readings:
                letters.append(self._letter(raw, topic, gateway, message_id, Rejection(
                    r.index if decoded.batch else None, "foreign_sensor",
                    f"no gateway {gateway}", r.sensor)))
                result.rejected.append((r.index if decoded.batch else None, "foreign_sensor"))
        else:
            self._store(decoded, raw, topic, gateway, gateway_id, message_id, result, letters)
        if letters:
            self.session.execute(insert(DeadLetter), letters)
        received = len(decoded.readings) + sum(1 for r in decoded.rejections)
        metrics.readings_received.inc(max(received, 1))
        metrics.readings_stored.inc(result.stored)
        metrics.readings_duplicate.inc(result.duplicates)
        for _index, reason in result.rejected:
            metrics.readings_rejected.labels(reason=reason).inc()
        return result

    def _gateway_id(self, gateway: str | None) -> int | None:
        if gateway is None:
            return None
        return self.session.scalar(select(Gateway.id).where(Gateway.code == gateway))

    def _letter(self, raw: bytes, topic: str, gateway: str | None, message_id: str,
                rejection: Rejection) -> dict:
        keep = TOO_LARGE_KEEP if rejection.reason == "too_large" \
            else self.limits.max_payload_bytes
        return {"topic": topic, "gateway": gateway, "message_id": message_id,
                "reason": rejection.reason, "detail": rejection.detail[:500],
                "sensor_code": rejection.sensor, "item": rejection.index,
                "payload": raw[:keep]}

    def _store(self, decoded: Decoded, raw: bytes, topic: str, gateway: str | None,
               gateway_id: int | None, message_id: str, result: IngestResult,
               letters: list[dict]) -> None:
        codes = {r.sensor for r in decoded.readings}
        sensors = {s.code: s for s in self.session.scalars(
            select(Sensor).where(Sensor.code.in_(codes)))} if codes else {}
        good: dict[tuple[int, datetime], tuple[Sensor, Reading, str, str]] = {}
        local = Pending()
        for reading in decoded.readings:
            sensor = sensors.get(reading.sensor)
            reason = _check(reading, sensor, gateway_id)
            if reason is None and (sensor.id, reading.ts) in good:
                previous = good[(sensor.id, reading.ts)][1]
                if math.isclose(previous.value, reading.value, rel_tol=0, abs_tol=1e-9):
                    result.duplicates += 1
                    continue
                reason = "conflict"
            if reason is not None:
                index = reading.index if decoded.batch else None
                letters.append(self._letter(raw, topic, gateway, message_id, Rejection(
                    index, reason, _detail(reason, reading, sensor), reading.sensor)))
                result.rejected.append((index, reason))
                continue
            qc = self.state.flag(self.session, sensor, reading.ts, reading.value,
                                 _Overlay(self.pending, local), self.now)
            local.add(sensor.id, reading.ts, reading.value, qc.flag.value)
            good[(sensor.id, reading.ts)] = (sensor, reading, qc.flag.value,
                                             ",".join(qc.reasons))
        if not good:
            return
        inserted = self._insert(good)
        result.stored += len(inserted)
        for key in good:
            if key not in inserted:
                continue
            sensor, reading, flag, _reasons = good[key]
            result.stored_readings.append((sensor.code, reading, flag))
            self.pending.add(sensor.id, reading.ts, reading.value, flag)
            touched = self._touched.setdefault(sensor.id, _Touched(sensor))
            touched.count += 1
            if touched.newest is None or reading.ts > touched.newest[0]:
                touched.newest = (reading.ts, reading.value, flag)
        self._sort_out_existing(good, inserted, raw, topic, gateway, message_id, decoded,
                                result, letters)

    def _insert(self, good: dict) -> set[tuple[int, datetime]]:
        rows = [{"sensor_id": sensor.id, "ts": r.ts, "value": r.value, "seq": r.seq,
                 "flag": flag, "qc_reasons": reasons[:200]}
                for sensor, r, flag, reasons in good.values()]
        statement = _dialect(self.session).insert(StoredReading).on_conflict_do_nothing(
            index_elements=["sensor_id", "ts"]).returning(StoredReading.sensor_id,
                                                          StoredReading.ts)
        # RETURNING names the rows really inserted on both backends (NOTES.md: rowcount and
        # inserted_primary_key cannot tell on SQLite and PostgreSQL).
        inserted = set()
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            inserted |= {(sid, ts) for sid, ts in
                         self.session.execute(statement.values(chunk)).all()}
        return inserted

    def finish(self) -> None:
        """Before the commit: raise each touched sensor's revision and last value, mark the
        hours to roll up, note the gateways seen."""
        now = self.now
        if self._touched:
            rows = []
            for sid, t in self._touched.items():
                sensor = t.sensor
                newest = t.newest
                if sensor.last_ts is not None and newest[0] <= sensor.last_ts:
                    newest = (sensor.last_ts, sensor.last_value, sensor.last_flag)
                rows.append({"sid": sid, "n": t.count, "last_ts": newest[0],
                             "last_value": newest[1], "last_flag": newest[2]})
                self._revisions[sid] = sensor.revision + t.count
                if sensor.status != "reporting":
                    self.status_events.append({"sensor": sensor.code, "status": "reporting",
                                               "flag": newest[2]})
            # Core table, not the entity: one executemany, not ORM bulk-by-primary-key.
            table = Sensor.__table__.c
            self.session.execute(
                update(Sensor.__table__).where(table.id == bindparam("sid")).values(
                    revision=table.revision + bindparam("n"),
                    last_ts=bindparam("last_ts"), last_value=bindparam("last_value"),
                    last_flag=bindparam("last_flag"),
                    status_at=case((table.status != "reporting", literal(now, UTCDateTime)),
                                   else_=table.status_at),
                    status="reporting"),
                rows)
            self.mark_hours({(sid, ts) for sid, readings in self.pending.readings.items()
                             for ts, _v, _f in readings})
        if self._gateways:
            self.session.execute(update(Gateway).where(Gateway.id.in_(self._gateways)).values(
                last_seen_at=now, online=True, offline_reason=None))

    def mark_hours(self, readings: set[tuple[int, datetime]]) -> None:
        """Mark the hours these (sensor id, ts) readings fall in for roll-up; also the next
        hour, whose first rain report a late reading may shorten (telemetry.sums)."""
        hours = set()
        for sid, ts in readings:
            hours.add((sid, hour_of(ts)))
            hours.add((sid, hour_of(ts) + timedelta(hours=1)))
        if not hours:
            return
        statement = _dialect(self.session).insert(ReadingHourDirty)
        statement = statement.on_conflict_do_update(
            index_elements=["sensor_id", "hour"],
            set_={"marked_at": statement.excluded.marked_at})
        now = self.now
        self.session.execute(statement, [{"sensor_id": sid, "hour": hour, "marked_at": now}
                                         for sid, hour in sorted(hours)])

    def apply(self) -> None:
        """After the commit: the process's memory of each sensor learns its new readings."""
        self.state.apply(self.pending, self._revisions)

    def _sort_out_existing(self, good, inserted, raw, topic, gateway, message_id, decoded,
                           result, letters) -> None:
        existing_keys = [k for k in good if k not in inserted]
        if not existing_keys:
            return
        stored = dict(((sid, ts), value) for sid, ts, value in self.session.execute(
            select(StoredReading.sensor_id, StoredReading.ts, StoredReading.value).where(
                tuple_(StoredReading.sensor_id, StoredReading.ts).in_(existing_keys))).all())
        for key in existing_keys:
            sensor, reading, _flag, _reasons = good[key]
            if key in stored and math.isclose(stored[key], reading.value, rel_tol=0,
                                              abs_tol=1e-9):
                result.duplicates += 1
                continue
            index = reading.index if decoded.batch else None
            letters.append(self._letter(raw, topic, gateway, message_id, Rejection(
                index, "conflict", f"stored value {stored.get(key)} stands, got "
                                   f"{reading.value}", reading.sensor)))
            result.rejected.append((index, "conflict"))


class _Overlay(Pending):
    """The transaction's pending readings plus the current message's, for QC history."""

    def __init__(self, *layers: Pending):
        super().__init__()
        self.layers = layers

    def of(self, sensor_id: int) -> list[tuple[datetime, float]]:
        return [r for layer in self.layers for r in layer.of(sensor_id)]


def _detail(reason: str, reading: Reading, sensor: Sensor | None) -> str:
    if reason == "out_of_range" and sensor is not None:
        return f"{reading.value} outside [{sensor.range_min}, {sensor.range_max}] {sensor.unit}"
    if reason == "unit_mismatch" and sensor is not None:
        return f"unit {reading.unit} but {sensor.code} reports in {sensor.unit}"
    if reason == "foreign_sensor":
        return f"{reading.sensor} belongs to another gateway"
    return f"{reason}: {reading.sensor}"


def reprocess(session: Session, letter_id: int, *, action: str, actor: str,
              limits: IngestLimits, now: datetime) -> dict:
    """Resolve a dead letter: ingest it again (e.g. after its sensor was registered), settle
    a conflict by keeping or replacing the stored value, or dismiss it. Audited; returns the
    outcome (resolution None: still refused, nothing written)."""
    from dispatch.core import audit
    from dispatch.core.errors import BadRequest, Conflict, NotFound

    letter = session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}", code="not_found")
    if letter.resolved_at is not None:
        raise Conflict(f"dead letter {letter_id} was resolved already", code="resolved")
    decoded = decode_payload(letter.payload, now=now, max_payload_bytes=limits.max_payload_bytes,
                             max_future_s=limits.max_future_s,
                             max_age_days=limits.max_age_days)
    reading = next((r for r in decoded.readings if letter.item is None or r.index == letter.item),
                   None)
    if action == "dismiss":
        # A letter nothing can fix (a malformed message, a reading too old): set aside, audited.
        outcome = {"resolution": "dismissed"}
    elif letter.reason == "conflict":
        if action not in {"keep", "replace"} or reading is None:
            raise BadRequest("a conflict is resolved with action keep, replace or dismiss",
                             code="bad_action")
        if action == "replace":
            _replace(session, reading, actor=actor, limits=limits, now=now)
        outcome = {"resolution": "replaced" if action == "replace" else "kept"}
    else:
        if action != "reprocess":
            raise BadRequest("this dead letter is resolved with action reprocess or dismiss",
                             code="bad_action")
        outcome = _ingest_again(session, letter, decoded, reading, limits=limits, now=now)
        if outcome["resolution"] is None:
            return outcome
    letter.resolved_at, letter.resolved_by = now, actor
    letter.resolution = outcome["resolution"]
    audit.record(session, actor=actor, action="dead_letter.resolve", entity_type="dead_letter",
                 entity_id=letter.id, after={"resolution": letter.resolution,
                                             "reason": letter.reason})
    return outcome


def _replace(session: Session, reading: Reading, *, actor: str, limits: IngestLimits,
             now: datetime) -> None:
    """Put a conflicting reading's value in place of the stored one (audited)."""
    from dispatch.core import audit
    from dispatch.core.errors import Conflict

    sensor = session.scalar(select(Sensor).where(Sensor.code == reading.sensor))
    stored = None if sensor is None else session.scalar(select(StoredReading).where(
        StoredReading.sensor_id == sensor.id, StoredReading.ts == reading.ts))
    if stored is None:
        raise Conflict("the stored reading is no longer there (pruned after the retention "
                       "time?): dismiss this dead letter", code="gone")
    before = stored.value
    stored.value = reading.value
    if sensor.last_ts == reading.ts:
        sensor.last_value = reading.value
    # Caches of this sensor's readings (telemetry.state) reload; its hour is rolled up again.
    session.execute(update(Sensor).where(Sensor.id == sensor.id).values(
        revision=Sensor.revision + 1))
    replacing = Ingest(session, limits)
    replacing.now = now
    replacing.mark_hours({(sensor.id, reading.ts)})
    audit.record(session, actor=actor, action="reading.replace", entity_type="reading",
                 entity_id=f"{sensor.code}@{reading.ts.isoformat()}",
                 before={"value": before}, after={"value": reading.value})


def _ingest_again(session: Session, letter: DeadLetter, decoded: Decoded, reading: Reading | None,
                  *, limits: IngestLimits, now: datetime) -> dict:
    """Ingest a dead letter's reading (or whole message) again. When it is still refused,
    nothing is written (no second dead letter) and the answer says why."""
    raw = letter.payload
    if letter.item is not None:
        if reading is None:  # the item itself does not decode: nothing can fix it
            rejection = next((r for r in decoded.rejections if r.index == letter.item), None)
            return {"resolution": None, "stored": 0, "duplicates": 0, "rejected": [
                {"index": letter.item,
                 "reason": rejection.reason if rejection else letter.reason}]}
        item = {"sensor": reading.sensor, "ts": reading.ts.isoformat(), "value": reading.value}
        if reading.unit is not None:
            item["unit"] = reading.unit
        if reading.seq is not None:
            item["seq"] = reading.seq
        raw = json.dumps(item).encode()
    attempt = session.begin_nested()
    ingest = Ingest(session, limits)
    result = ingest.message(raw, topic=letter.topic, gateway=letter.gateway,
                            message_id=letter.message_id, now=now)
    if not (result.stored or result.duplicates):
        attempt.rollback()
        return {"resolution": None, **result.as_http()}
    ingest.finish()
    attempt.commit()
    return {"resolution": "reprocessed", **result.as_http()}
