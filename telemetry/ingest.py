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
from datetime import datetime

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatch.core import metrics
from dispatch.core.models import Gateway
from telemetry.decode import Decoded, Reading, Rejection, decode_payload
from telemetry.models import DeadLetter, Sensor
from telemetry.models import Reading as StoredReading

# A too_large payload keeps this many first bytes in its dead letter.
TOO_LARGE_KEEP = 4096


@dataclass
class IngestResult:
    """What became of one message: counts, and each rejection with its index and reason."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int | None, str]] = field(default_factory=list)
    stored_readings: list[tuple[Sensor, Reading]] = field(default_factory=list)

    def as_http(self) -> dict:
        return {"stored": self.stored, "duplicates": self.duplicates,
                "rejected": [{"index": i, "reason": r} for i, r in self.rejected]}


@dataclass(frozen=True)
class IngestLimits:
    """The ingest.* settings."""

    max_payload_bytes: int = 524288
    max_future_s: int = 300
    max_age_days: int = 30


def _insert_statement(session: Session):
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(StoredReading)


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
    """Stores decoded messages for one database session."""

    def __init__(self, session: Session, limits: IngestLimits):
        self.session = session
        self.limits = limits

    def message(self, raw: bytes, *, topic: str, gateway: str | None, message_id: str,
                now: datetime) -> IngestResult:
        """Decode, check, store and dead-letter one message (in the caller's transaction)."""
        decoded = decode_payload(raw, now=now, max_payload_bytes=self.limits.max_payload_bytes,
                                 max_future_s=self.limits.max_future_s,
                                 max_age_days=self.limits.max_age_days)
        result = IngestResult()
        gateway_id = self._gateway_id(gateway)
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
        good: dict[tuple[int, datetime], tuple[Sensor, Reading]] = {}
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
            good[(sensor.id, reading.ts)] = (sensor, reading)
        if not good:
            return
        inserted = self._insert(good)
        result.stored += len(inserted)
        newly = [good[k] for k in good if k in inserted]
        result.stored_readings += newly
        for sensor, reading in newly:
            if sensor.last_ts is None or reading.ts > sensor.last_ts:
                sensor.last_ts, sensor.last_value, sensor.last_flag = reading.ts, reading.value, \
                    "good"
        self._sort_out_existing(good, inserted, raw, topic, gateway, message_id, decoded,
                                result, letters)

    def _insert(self, good: dict) -> set[tuple[int, datetime]]:
        rows = [{"sensor_id": sensor.id, "ts": r.ts, "value": r.value, "seq": r.seq,
                 "flag": "good"} for sensor, r in good.values()]
        statement = _insert_statement(self.session).on_conflict_do_nothing(
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

    def _sort_out_existing(self, good, inserted, raw, topic, gateway, message_id, decoded,
                           result, letters) -> None:
        existing_keys = [k for k in good if k not in inserted]
        if not existing_keys:
            return
        stored = dict(((sid, ts), value) for sid, ts, value in self.session.execute(
            select(StoredReading.sensor_id, StoredReading.ts, StoredReading.value).where(
                tuple_(StoredReading.sensor_id, StoredReading.ts).in_(existing_keys))).all())
        for key in existing_keys:
            sensor, reading = good[key]
            if key in stored and math.isclose(stored[key], reading.value, rel_tol=0,
                                              abs_tol=1e-9):
                result.duplicates += 1
                continue
            index = reading.index if decoded.batch else None
            letters.append(self._letter(raw, topic, gateway, message_id, Rejection(
                index, "conflict", f"stored value {stored.get(key)} stands, got "
                                   f"{reading.value}", reading.sensor)))
            result.rejected.append((index, "conflict"))


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
    """Resolve a dead letter: ingest it again (e.g. after its sensor was registered), or settle
    a conflict by keeping or replacing the stored value. Audited; returns the outcome."""
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
    if letter.reason == "conflict":
        if action not in {"keep", "replace"} or reading is None:
            raise BadRequest("a conflict is resolved with action keep or replace",
                             code="bad_action")
        if action == "replace":
            sensor = session.scalar(select(Sensor).where(Sensor.code == reading.sensor))
            stored = session.scalar(select(StoredReading).where(
                StoredReading.sensor_id == sensor.id, StoredReading.ts == reading.ts))
            before = stored.value
            stored.value = reading.value
            audit.record(session, actor=actor, action="reading.replace", entity_type="reading",
                         entity_id=f"{sensor.code}@{reading.ts.isoformat()}",
                         before={"value": before}, after={"value": reading.value})
        outcome = {"resolution": "replaced" if action == "replace" else "kept"}
    else:
        if action != "reprocess":
            raise BadRequest("this dead letter is resolved with action reprocess",
                             code="bad_action")
        raw = letter.payload
        if letter.item is not None and reading is not None:
            raw = json.dumps({"sensor": reading.sensor, "ts": reading.ts.isoformat(),
                              "value": reading.value}).encode()
        result = Ingest(session, limits).message(raw, topic=letter.topic,
                                                 gateway=letter.gateway,
                                                 message_id=letter.message_id, now=now)
        if not (result.stored or result.duplicates):
            return {"resolution": None, **result.as_http()}
        outcome = {"resolution": "reprocessed", **result.as_http()}
    letter.resolved_at, letter.resolved_by = now, actor
    letter.resolution = outcome["resolution"]
    audit.record(session, actor=actor, action="dead_letter.resolve", entity_type="dead_letter",
                 entity_id=letter.id, after={"resolution": letter.resolution,
                                             "reason": letter.reason})
    return outcome
