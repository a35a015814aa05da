"""Decoding gateway payloads (DESIGN §5 ingest rules), pure: bytes in, readings or reasons out.

Strict RFC 8259 JSON in UTF-8 (a leading BOM tolerated), no NaN/Infinity literals, no duplicate
keys, booleans and numeric strings are not numbers, unknown fields ignored, null = absent. The
registry checks (sensor known, owned, not retired, unit, range) and duplicates are the
database's part (telemetry.ingest).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

MAX_BATCH = 1000
MAX_SENSOR_CODE = 64

# YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM); T and Z in either case (RFC 3339 §5.6).
TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Reading:
    """One decoded reading, its time in UTC, and its position in the message."""

    sensor: str
    ts: datetime
    value: float
    unit: str | None
    seq: int | None
    index: int


@dataclass(frozen=True)
class Rejection:
    """Why a message (index None) or one reading of a batch was refused."""

    index: int | None
    reason: str
    detail: str
    sensor: str | None = None


@dataclass
class Decoded:
    """The readings a message yields and what was refused."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    batch: bool = False


class _Refused(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_timestamp(text: str) -> datetime:
    """Parse the one accepted timestamp form into an aware UTC datetime (ValueError if not)."""
    match = TIMESTAMP.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("not YYYY-MM-DDTHH:MM:SS[.fraction] with Z or ±HH:MM")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    if offset in ("Z", "z"):
        tz = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    # datetime refuses hour 24, second 60 and impossible dates.
    value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    return value.astimezone(UTC)


def _no_constants(name: str):
    raise _Refused("bad_json", f"{name} is not JSON (RFC 8259)")


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Refused("bad_json", f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _loads(raw: bytes):
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused("bad_encoding", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _Refused("bad_json", f"not JSON: {exc.msg} at line {exc.lineno} "
                                   f"column {exc.colno}") from None
    except RecursionError:
        raise _Refused("bad_json", "nested too deeply") from None


def _reading(item, index: int, now: datetime, max_future: timedelta,
             max_age: timedelta) -> Reading:
    if not isinstance(item, dict):
        raise _Refused("schema", "a reading must be an object")
    sensor = item.get("sensor")
    if not isinstance(sensor, str) or not sensor or len(sensor) > MAX_SENSOR_CODE:
        raise _Refused("schema", "sensor must be a code of 1-64 characters")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused("schema", "value must be a number (not a string or a boolean)")
    value = float(value) if not isinstance(value, float) else value
    if not math.isfinite(value):
        raise _Refused("not_finite", "value is not a finite number")
    unit, seq = item.get("unit"), item.get("seq")
    if unit is not None and not isinstance(unit, str):
        raise _Refused("schema", "unit must be text")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise _Refused("schema", "seq must be a non-negative whole number")
    raw_ts = item.get("ts")
    if not isinstance(raw_ts, str):
        raise _Refused("bad_timestamp" if raw_ts is not None else "schema",
                       "ts must be an RFC 3339 string with an offset")
    try:
        ts = parse_timestamp(raw_ts)
    except (ValueError, OverflowError) as exc:
        raise _Refused("bad_timestamp", f"ts {raw_ts[:40]!r}: {exc}") from None
    if ts - now > max_future:
        raise _Refused("future", f"ts {raw_ts} is ahead of the hub clock")
    if now - ts > max_age:
        raise _Refused("too_old", f"ts {raw_ts} is older than the ingest limit")
    return Reading(sensor, ts, value, unit, seq, index)


def decode_payload(raw: bytes, *, now: datetime, max_payload_bytes: int = 524288,
                   max_future_s: int = 300, max_age_days: int = 30,
                   max_batch: int = MAX_BATCH) -> Decoded:
    """Decode one message: a reading or {"readings": [...]}; never raises."""
    decoded = Decoded()
    if len(raw) > max_payload_bytes:
        decoded.rejections.append(Rejection(None, "too_large",
                                            f"{len(raw)} bytes > {max_payload_bytes}"))
        return decoded
    try:
        body = _loads(raw)
        if not isinstance(body, dict):
            raise _Refused("schema", "the message must be a JSON object")
        items = body.get("readings")
        if items is None:
            items, decoded.batch = [body], False
        elif not isinstance(items, list):
            raise _Refused("schema", "readings must be a list")
        else:
            decoded.batch = True
            if len(items) > max_batch:
                raise _Refused("too_large", f"{len(items)} readings > {max_batch}")
    except _Refused as exc:
        decoded.rejections.append(Rejection(None, exc.reason, exc.detail))
        return decoded
    future, age = timedelta(seconds=max_future_s), timedelta(days=max_age_days)
    for index, item in enumerate(items):
        try:
            decoded.readings.append(_reading(item, index, now, future, age))
        except _Refused as exc:
            sensor = item.get("sensor") if isinstance(item, dict) else None
            decoded.rejections.append(Rejection(
                index if decoded.batch else None, exc.reason, exc.detail,
                sensor if isinstance(sensor, str) else None))
    return decoded
