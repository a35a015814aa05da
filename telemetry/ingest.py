"""Storing readings: the database half of the ingest rules of DESIGN §5.

`telemetry.decode` turns a payload into readings and rejections (pure); this module checks each
reading against the registry (unknown, foreign, retired, unit, range), stores the good ones in one
statement that ignores (sensor, ts) already there, tells duplicates (same value, a no-op) from
conflicts (another value: dead-lettered, the stored value stands), keeps every rejection as a dead
letter with its raw payload up to the gateway's dead-letter quota (telemetry.quota; past it, one
`over_quota` letter per gateway and minute counts them), and counts everything. The caller owns
the transaction: MQTT messages are acknowledged only after it commits.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dispatch.core.db import UTCDateTime
from dispatch.core.models import Gateway
from telemetry import batch_sql, metrics
from telemetry.decode import Decoded, Reading, Rejection, decode_payload
from telemetry.live import sensor_status_event
from telemetry.models import DeadLetter, Sensor
from telemetry.models import Reading as StoredReading
from telemetry.quota import HEAD_KEPT, DeadLetterQuota, Drops, counted_drops, summary_detail
from telemetry.sensor_memory import Pending, TelemetryState

HOUR = timedelta(hours=1)
# How long ingest trusts what it read of a gateway (its id, that it is active).
GATEWAY_MEMORY_S = 30.0
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

    @classmethod
    def of(cls, settings) -> IngestLimits:
        """The limits of the hub's settings."""
        return cls(settings.ingest.max_payload_bytes, settings.ingest.max_future_s,
                   settings.ingest.max_age_days)


def _dialect(session: Session):
    return postgresql if session.bind.dialect.name == "postgresql" else sqlite


def hour_of(ts: datetime) -> datetime:
    """The hour (start) whose roll-up holds a reading at ts: hours are (h, h + 1 h], as rain
    windows are (now − W, now], so a report at 10:00:00 belongs to 09:00-10:00."""
    floor = ts.replace(minute=0, second=0, microsecond=0)
    return floor - timedelta(hours=1) if floor == ts else floor


class SensorRow(NamedTuple):
    """What ingest reads of a sensor (telemetry.sensor_memory takes it in place of a Sensor).
    A named tuple: one is made per sensor and batch, and a frozen dataclass's __init__ cost
    more than the rest of the bookkeeping."""

    id: int
    code: str
    kind: str
    unit: str
    gateway_id: int
    range_min: float
    range_max: float
    interval_s: int
    qc: dict | None
    retired: bool
    revision: int
    status: str
    last_ts: datetime | None
    last_value: float | None
    last_flag: str | None

    @classmethod
    def columns(cls) -> list:
        return [getattr(Sensor, f) for f in cls._fields]

    def after(self, count: int, newest: tuple[datetime, float, str]) -> SensorRow:
        """This row as a commit that stored `count` readings, the newest `newest`, leaves it."""
        return SensorRow(*self[:_REVISION], self.revision + count, "reporting", *newest)


# SensorRow.after keeps the fields before this one and replaces it and the four after it.
_REVISION = SensorRow._fields.index("revision")


@dataclass
class _Touched:
    """What one transaction changed for a sensor (written by Ingest.finish)."""

    sensor: SensorRow
    count: int = 0
    newest: tuple[datetime, float, str] | None = None


# Statements run per batch, built once: SQLAlchemy then finds their compiled form by a key it
# memoizes on the statement object, instead of building a new statement and key every batch.
_SENSOR_ROWS = select(*SensorRow.columns()).where(
    Sensor.code.in_(bindparam("codes", expanding=True)))
_GATEWAYS_SEEN = update(Gateway.__table__).where(
    Gateway.__table__.c.id.in_(bindparam("ids", expanding=True))).values(
    last_seen_at=bindparam("now", type_=UTCDateTime), online=True, offline_reason=None)


def _check(reading: Reading, sensor: SensorRow | None, gateway_id: int | None) -> str | None:
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


class Message(NamedTuple):
    """One message to ingest: its raw payload and where it came from."""

    raw: bytes
    topic: str
    gateway: str | None
    message_id: str


@dataclass
class _Staged:
    """A reading that passed every check, waiting for the batch's one INSERT."""

    sensor: SensorRow
    reading: Reading
    flag: str
    reasons: str
    result: IngestResult
    index: int | None
    message: Message


class Ingest:
    """Stores decoded messages in one transaction, in three steps: `messages()` (or `message()`)
    for the messages, `finish()` before the commit (sensor revisions and last values, gateways
    seen, hours to roll up), and `apply()` after it (the process's telemetry state learns the
    new readings).

    A batch costs a fixed number of statements whatever its size: one SELECT of its sensors, one
    INSERT … ON CONFLICT DO NOTHING RETURNING of its good readings (executemany, compiled once),
    one SELECT of the values already stored under the keys that were not inserted, one INSERT of
    its dead letters (measured: per-message statements capped ingest near 150 readings/s)."""

    def __init__(self, session: Session, limits: IngestLimits,
                 state: TelemetryState | None = None, quota: DeadLetterQuota | None = None):
        self.session = session
        self.limits = limits
        # None: every rejection keeps its payload (reprocessing, which writes no letters).
        self.quota = quota
        self.state = state if state is not None else TelemetryState()
        self.pending = Pending()
        self.now: datetime | None = None
        # `sensor_status` events to send after the commit (sensors reporting again).
        self.status_events: list[dict] = []
        self._touched: dict[int, _Touched] = {}
        self._gateways: set[int] = set()
        self._revisions: dict[int, int] = {}
        self._sensors: dict[str, SensorRow] = {}
        self._loaded: dict[str, SensorRow] = {}  # read from the database in this transaction
        self._staged: dict[tuple[int, datetime], _Staged] = {}
        self._local = Pending()
        self._overlay = _Overlay(self)
        self._repeats: list[_Staged] = []
        # Counted into /metrics by apply(), after the commit: a rolled-back, retried batch is
        # counted once, and the counters never run ahead of the rows.
        self._counts: Counter[str] = Counter()
        self._after_commit_rows: dict[str, SensorRow] = {}
        self._marked: set[tuple[int, datetime]] = set()
        self._letters: list[dict] = []
        # The items of this call's batch messages (by id of the Message): a rejected item's dead
        # letter keeps the item alone, not its whole message (a 475 KiB batch of 1,000 unknown
        # sensors wrote 1,000 copies of itself: 488 MB).
        self._items: dict[int, tuple] = {}
        # Rejections over their gateway's quota, per gateway, until _flush writes them.
        self._drops: dict[str, Drops] = {}
        self._dropped: Counter[tuple[str, str]] = Counter()

    def message(self, raw: bytes, *, topic: str, gateway: str | None, message_id: str,
                now: datetime) -> IngestResult:
        """Decode, check, store and dead-letter one message (in the caller's transaction)."""
        return self.messages([Message(raw, topic, gateway, message_id)], now=now)[0]

    def messages(self, batch: list[Message], *, now: datetime) -> list[IngestResult]:
        """Decode, check, store and dead-letter a batch of messages; a result per message."""
        self.now = now
        self._items = {}
        decoded = [decode_payload(m.raw, now=now, max_payload_bytes=self.limits.max_payload_bytes,
                                  max_future_s=self.limits.max_future_s,
                                  max_age_days=self.limits.max_age_days) for m in batch]
        self._load_sensors({r.sensor for d in decoded for r in d.readings})
        results = [self._take(m, d) for m, d in zip(batch, decoded, strict=True)]
        self._flush()
        return results

    def _load_sensors(self, codes: set[str]) -> None:
        """The batch's sensors: from this process's short-lived cache (telemetry.sensor_memory), the
        rest in one SELECT of the columns ingest needs (no ORM objects, no geometry)."""
        cached = self.state.sensor_rows(codes, time.monotonic())
        self._sensors.update(cached)
        wanted = [c for c in codes if c not in self._sensors]
        loaded = {}
        for start in range(0, len(wanted), 900):
            for row in self.session.connection().execute(
                    _SENSOR_ROWS, {"codes": wanted[start:start + 900]}):
                loaded[row.code] = SensorRow(*row)
        self._sensors.update(loaded)
        self._loaded.update(loaded)

    def _gateway_id(self, gateway: str | None) -> int | None:
        """The id of the active gateway named in the topic (None: unknown or disabled, so its
        readings are foreign). Remembered for GATEWAY_MEMORY_S: a gateway disabled on an
        external broker, which may still let it publish, is refused within that time."""
        if gateway is None:
            return None
        clock = time.monotonic()
        known = self.state.gateway_ids.get(gateway)
        if known is None or known[1] < clock:
            found = self.session.scalar(select(Gateway.id).where(
                Gateway.code == gateway, Gateway.active.is_(True)))
            # An unknown one briefly: a gateway registered right after a refusal is taken soon.
            known = (found, clock + (GATEWAY_MEMORY_S if found is not None else 5.0))
            self.state.gateway_ids[gateway] = known
        return known[0]

    def _reject(self, result: IngestResult, message: Message, rejection: Rejection) -> None:
        keep = TOO_LARGE_KEEP if rejection.reason == "too_large" \
            else self.limits.max_payload_bytes
        items = self._items.get(id(message))
        if items is not None and rejection.index is not None:
            payload = _item_json(items[rejection.index])[:keep]
        else:
            payload = message.raw[:keep]
        gateway = message.gateway or ""
        if self.quota is None or self.quota.take(gateway, len(payload), self.now):
            self._letters.append({
                "topic": message.topic, "gateway": message.gateway,
                "message_id": message.message_id, "reason": rejection.reason,
                "detail": rejection.detail[:500], "sensor_code": rejection.sensor,
                "item": rejection.index, "payload": payload})
        else:
            drops = self._drops.get(gateway)
            if drops is None:
                drops = self._drops[gateway] = Drops(message.topic, message.raw[:HEAD_KEPT])
            drops.count += 1
            drops.bytes += len(payload)
            drops.reasons[rejection.reason] += 1
            self._dropped[(gateway, rejection.reason)] += 1
        result.rejected.append((rejection.index, rejection.reason))
        self._counts[rejection.reason] += 1

    def _take(self, message: Message, decoded: Decoded) -> IngestResult:
        result = IngestResult()
        gateway_id = self._gateway_id(message.gateway)
        if gateway_id is not None:
            self._gateways.add(gateway_id)
        if decoded.batch:
            self._items[id(message)] = decoded.items
        # Counters count readings; a message refused whole counts once, an empty batch not at
        # all (DESIGN §5).
        self._counts["received"] += len(decoded.readings) + len(decoded.rejections)
        for rejection in decoded.rejections:
            self._reject(result, message, rejection)
        for reading in decoded.readings:
            index = reading.index if decoded.batch else None
            if message.gateway is not None and gateway_id is None:
                # A topic naming no active gateway (unknown or disabled): every reading in it
                # is foreign.
                self._reject(result, message, Rejection(
                    index, "foreign_sensor", f"no active gateway {message.gateway}",
                    reading.sensor))
                continue
            sensor = self._sensors.get(reading.sensor)
            reason = _check(reading, sensor, gateway_id)
            if reason is None and (sensor.id, reading.ts) in self._staged:
                # A repeat within the batch: a duplicate or a conflict of whichever value ends
                # up stored (the earlier one, or one already in the database), decided in _flush.
                self._repeats.append(_Staged(sensor, reading, "", "", result, index, message))
                continue
            if reason is not None:
                self._reject(result, message, Rejection(
                    index, reason, _detail(reason, reading, sensor), reading.sensor))
                continue
            qc = self.state.flag(self.session, sensor, reading.ts, reading.value,
                                 self._overlay, self.now)
            self._local.add(sensor.id, reading.ts, reading.value, qc.flag.value)
            self._staged[(sensor.id, reading.ts)] = _Staged(
                sensor, reading, qc.flag.value, ",".join(qc.reasons), result, index, message)
        return result

    def _flush(self) -> None:
        """Insert every staged reading at once, sort out those already stored, write the
        batch's dead letters."""
        staged, self._staged, self._local = self._staged, {}, Pending()
        repeats, self._repeats = self._repeats, []
        inserted = self._insert(staged) if staged else set()
        existing = []
        for key, item in staged.items():
            if key not in inserted:
                existing.append(key)
                continue
            item.result.stored += 1
            item.result.stored_readings.append((item.sensor.code, item.reading, item.flag))
            self.pending.add(item.sensor.id, item.reading.ts, item.reading.value, item.flag)
            touched = self._touched.get(item.sensor.id)
            if touched is None:
                touched = self._touched[item.sensor.id] = _Touched(item.sensor)
            touched.count += 1
            if touched.newest is None or item.reading.ts > touched.newest[0]:
                touched.newest = (item.reading.ts, item.reading.value, item.flag)
        self._counts["stored"] += len(inserted)
        stored = self._stored_values(existing + [(r.sensor.id, r.reading.ts) for r in repeats
                                                 if (r.sensor.id, r.reading.ts) not in inserted])
        for key, value in ((k, staged[k].reading.value) for k in inserted):
            stored.setdefault(key, value)
        for item in [staged[key] for key in existing] + repeats:
            self._duplicate_or_conflict(item, stored.get((item.sensor.id, item.reading.ts)))
        if self._letters:
            now = self.now
            self.session.execute(insert(DeadLetter.__table__),
                                 [{**letter, "received_at": now} for letter in self._letters])
            self._letters = []
        if self._drops:
            self._write_drops()

    def _write_drops(self) -> None:
        """Add the batch's over-quota rejections to their gateway's over_quota letter of this
        minute (a new one when there is none yet, or it was resolved meanwhile)."""
        table = DeadLetter.__table__
        quota, now = self.quota, self.now
        drops, self._drops = self._drops, {}
        for gateway, dropped in drops.items():
            summary_id, reasons = quota.summary(gateway, now, dropped)
            detail = summary_detail(reasons, quota.letters_per_window, quota.bytes_per_window)
            if summary_id is not None and self.session.execute(
                    update(table).where(table.c.id == summary_id,
                                        table.c.resolved_at.is_(None)).values(
                        dropped_count=table.c.dropped_count + dropped.count,
                        dropped_bytes=table.c.dropped_bytes + dropped.bytes,
                        detail=detail)).rowcount:
                continue
            summary_id = self.session.execute(insert(table).values(
                received_at=now, topic=dropped.topic, gateway=gateway or None,
                message_id=f"quota-{quota.window(now)}", reason="over_quota",
                detail=summary_detail(dropped.reasons, quota.letters_per_window,
                                      quota.bytes_per_window),
                payload=dropped.head, dropped_count=dropped.count,
                dropped_bytes=dropped.bytes).returning(table.c.id)).scalar_one()
            quota.started(gateway, now, summary_id, dropped)

    def _insert(self, staged: dict[tuple[int, datetime], _Staged]) -> set[tuple[int, datetime]]:
        rows = [(i.sensor.id, i.reading.ts, i.reading.value, i.reading.seq, i.flag,
                 i.reasons[:200]) for i in staged.values()]
        return batch_sql.insert_readings(self.session, rows, self.now)

    def _stored_values(self, keys: list[tuple[int, datetime]]) -> dict:
        stored: dict[tuple[int, datetime], float] = {}
        for start in range(0, len(keys), 400):
            stored.update(((sid, ts), value) for sid, ts, value in self.session.execute(
                select(StoredReading.sensor_id, StoredReading.ts, StoredReading.value).where(
                    tuple_(StoredReading.sensor_id, StoredReading.ts).in_(
                        keys[start:start + 400]))).all())
        return stored

    def _duplicate_or_conflict(self, item: _Staged, stored: float | None) -> None:
        """A reading whose (sensor, ts) is stored already: the same value is a duplicate,
        another value a conflict (the stored value stands, DESIGN §5)."""
        if stored is not None and math.isclose(stored, item.reading.value, rel_tol=0,
                                               abs_tol=1e-9):
            item.result.duplicates += 1
            self._counts["duplicate"] += 1
            return
        self._reject(item.result, item.message, Rejection(
            item.index, "conflict", f"stored value {stored} stands, got {item.reading.value}",
            item.reading.sensor))

    def finish(self) -> None:
        """Before the commit: raise each touched sensor's revision and last value, mark the
        hours to roll up, note the gateways seen."""
        self._flush()
        now = self.now
        if self._touched:
            rows = []
            self._after_commit_rows = {}
            for sid, t in self._touched.items():
                sensor = t.sensor
                newest = t.newest
                if sensor.last_ts is not None and newest[0] <= sensor.last_ts:
                    newest = (sensor.last_ts, sensor.last_value, sensor.last_flag)
                rows.append({"sid": sid, "n": t.count, "last_ts": newest[0],
                             "last_value": newest[1], "last_flag": newest[2]})
                self._revisions[sid] = sensor.revision + t.count
                self._after_commit_rows[sensor.code] = sensor.after(t.count, newest)
            for sid in sorted(batch_sql.update_sensors(self.session, rows, now)):
                t = self._touched[sid]
                self.status_events.append(sensor_status_event(
                    t.sensor.code, status="reporting",
                    flag=self._after_commit_rows[t.sensor.code].last_flag, since=now))
            self.mark_hours({(sid, ts) for sid, readings in self.pending.readings.items()
                             for ts, _v, _f in readings},
                            {sid: t.sensor.interval_s for sid, t in self._touched.items()})
        if self._gateways:
            self.session.connection().execute(_GATEWAYS_SEEN, {"ids": list(self._gateways),
                                                               "now": now})

    def revision_steps(self) -> dict[int, tuple[int, int]]:
        """Each touched sensor's revision before and after this transaction (after finish())."""
        return {sid: (t.sensor.revision, self._revisions[sid])
                for sid, t in self._touched.items() if sid in self._revisions}

    def mark_hours(self, readings: set[tuple[int, datetime]],
                   intervals: dict[int, int] | None = None) -> None:
        """Mark the hours these (sensor id, ts) readings fall in for roll-up; also the next
        hour when the reading is within its sensor's interval of it, since a late reading
        shortens the time the next report stands for (telemetry.rain)."""
        hours = set()
        intervals = intervals or {}
        # Sensors report at shared instants: each (ts, interval) is worked out once per batch.
        spans: dict[tuple[datetime, int | None], tuple[datetime, ...]] = {}
        for sid, ts in readings:
            interval = intervals.get(sid)
            marked = spans.get((ts, interval))
            if marked is None:
                hour = hour_of(ts)
                marked = spans[(ts, interval)] = (hour, hour + HOUR) if interval is None or \
                    ts + timedelta(seconds=interval) > hour + HOUR else (hour,)
            for hour in marked:
                hours.add((sid, hour))
        # An hour this process marked less than MARK_AGAIN_S ago is still marked: the roll-up
        # job keeps marks younger than KEEP_MARK_S (telemetry.jobs), longer than this.
        fresh = self.state.marked_recently(hours, time.monotonic())
        hours -= fresh
        if not hours:
            return
        self._marked |= hours
        batch_sql.mark_hours(self.session, sorted(hours), self.now)

    def apply(self, *, count: bool = True) -> Counter[str]:
        """After the commit: the process's memory of each sensor learns its new readings, and
        the counters count them (or the caller does, with the counts returned)."""
        self.state.apply(self.pending, self._revisions)
        self.state.keep_sensor_rows(self._loaded, self._after_commit_rows, time.monotonic())
        self.state.note_marked(self._marked, time.monotonic())
        counts, self._counts = self._counts, Counter()
        # Dropped rejections, by (gateway, reason), ride along under tuple keys.
        counts.update(self._dropped)
        self._dropped = Counter()
        if count:
            counted(counts)
        return counts


def counted(counts: Counter | dict) -> None:
    """Count a batch's readings into this process's /metrics (after its commit)."""
    counts = dict(counts)
    counted_drops(Counter({key: counts.pop(key) for key in list(counts)
                           if isinstance(key, tuple)}))
    metrics.readings_received.inc(counts.pop("received", 0))
    metrics.readings_stored.inc(counts.pop("stored", 0))
    metrics.readings_duplicate.inc(counts.pop("duplicate", 0))
    for reason, count in counts.items():
        metrics.readings_rejected.labels(reason=reason).inc(count)


class _Overlay(Pending):
    """The transaction's pending readings plus the current batch's, for QC history (one per
    Ingest: it reads the layers the Ingest holds at the time)."""

    def __init__(self, ingest: Ingest):
        super().__init__()
        self.ingest = ingest

    def of(self, sensor_id: int) -> list[tuple[datetime, float]]:
        layers = (self.ingest.pending.readings.get(sensor_id),
                  self.ingest._local.readings.get(sensor_id))
        return [(ts, value) for layer in layers if layer for ts, value, _ in layer]


def _item_json(item: Any) -> bytes:
    """One batch item as the JSON a gateway would send it alone (UTF-8, compact)."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _detail(reason: str, reading: Reading, sensor: SensorRow | None) -> str:
    if reason == "out_of_range" and sensor is not None:
        return f"{reading.value} outside [{sensor.range_min}, {sensor.range_max}] {sensor.unit}"
    if reason == "unit_mismatch" and sensor is not None:
        return f"unit {reading.unit} but {sensor.code} reports in {sensor.unit}"
    if reason == "foreign_sensor":
        return f"{reading.sensor} belongs to another gateway"
    return f"{reason}: {reading.sensor}"


def is_reading_letter(topic: str) -> bool:
    """Whether a dead letter came from a gateway (MQTT `rescuehub/v1/…` or HTTP `http`), not
    from another package that keeps its refusals in this store (positions: `owntracks/…`,
    `http:owntracks`, `http:osmand`)."""
    return topic == "http" or topic.startswith("rescuehub/")


def reprocess(session: Session, letter_id: int, *, action: str, actor: str,
              limits: IngestLimits, now: datetime) -> dict:
    """Resolve a dead letter: ingest it again (e.g. after its sensor was registered), settle
    a conflict by keeping or replacing the stored value, or dismiss it. Audited; returns the
    outcome (resolution None: still refused, nothing written)."""
    from dispatch.core import audit
    from dispatch.core.errors import BadRequest, Conflict, NotFound

    letter = session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound(_l("There is no dead letter %(id)s.", id=letter_id), code="not_found")
    if letter.resolved_at is not None:
        raise Conflict(_l("Dead letter %(id)s was resolved already.", id=letter_id),
                       code="resolved")
    if not is_reading_letter(letter.topic) and action != "dismiss":
        # The store also keeps the phones' refused positions (dispatch.positions): no reading
        # to ingest again, only to dismiss.
        raise Conflict(_l("Dead letter %(id)s is not a reading (it came on %(topic)s): it "
                          "cannot be reprocessed, only dismissed.", id=letter_id,
                          topic=letter.topic), code="not_a_reading")
    if letter.reason == "over_quota" and action != "dismiss":
        raise BadRequest(_l("The payloads this letter counts were not kept (over the gateway's "
                            "dead-letter quota): dismiss it once the gateway is fixed."),
                         code="bad_action")
    decoded = decode_payload(letter.payload, now=now, max_payload_bytes=limits.max_payload_bytes,
                             max_future_s=limits.max_future_s,
                             max_age_days=limits.max_age_days)
    # A batch item's letter keeps that item alone (older letters: the whole batch).
    whole = letter.item is None or not decoded.batch
    reading = next((r for r in decoded.readings if whole or r.index == letter.item), None)
    if action == "dismiss":
        # A letter nothing can fix (a malformed message, a reading too old): set aside, audited.
        outcome = {"resolution": "dismissed"}
    elif letter.reason == "conflict":
        if action not in {"keep", "replace"} or reading is None:
            raise BadRequest(_l("Resolve a conflict with the action keep, replace or dismiss."),
                             code="bad_action")
        if action == "replace":
            _replace(session, reading, actor=actor, limits=limits, now=now)
        outcome = {"resolution": "replaced" if action == "replace" else "kept"}
    else:
        if action != "reprocess":
            raise BadRequest(_l("Resolve this dead letter with the action reprocess or "
                                "dismiss."), code="bad_action")
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
        raise Conflict(_l("The stored reading is no longer there (pruned after the retention "
                          "time?): dismiss this dead letter."), code="gone")
    before = stored.value
    stored.value = reading.value
    if sensor.last_ts == reading.ts:
        sensor.last_value = reading.value
    # Caches of this sensor's readings (telemetry.sensor_memory) reload; its hour is rolled up
    # again.
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
            rejection = next((r for r in decoded.rejections
                              if not decoded.batch or r.index == letter.item), None)
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
