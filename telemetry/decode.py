"""Decoding gateway payloads (DESIGN §5 ingest rules), pure: bytes in, readings or reasons out.

Strict RFC 8259 JSON in UTF-8 (a leading BOM tolerated), no NaN/Infinity literals, no duplicate
keys, booleans and numeric strings are not numbers, unknown fields ignored, null = absent. The
registry checks (sensor known, owned, not retired, unit, range) and duplicates are the
database's part (telemetry.ingest).

Choices the contract leaves open, decided here:
- Per reading, the first failing check gives the reason, in this order: `schema` (shape and
  types of sensor, value, unit, seq, ts) → `not_finite` → `bad_timestamp` → `future` / `too_old`.
- A number literal that overflows a double (`1e309`, or an integer of 309+ digits) parses to
  infinity, so as a `value` it is `not_finite`; elsewhere it is just not the type asked for.
- A `ts` given as a number (an epoch) is `bad_timestamp`; missing, null, or another type is
  `schema`.
- Text that cannot be stored (an unpaired surrogate from a `\\ud800` escape, RFC 8259 §8.2, or
  a control character) is `schema` in `sensor` and `unit`; `seq` must fit a signed 64-bit column.
- `{"readings": []}` is a well-formed batch that yields nothing (neither readings nor rejections).
- A fraction of a second beyond microseconds is truncated, not rounded; `-00:00` means UTC.
- A `ts` of the accepted form whose instant leaves the years 1-9999 in UTC
  (`0001-01-01T00:00:00+08:00`, `9999-12-31T23:59:59-08:00`) is `too_old` or `future`: it is a
  well-formed time, out of the window like any other.
- The JSON rules are the kernel's (dispatch.core.strict_json), shared with the API: nesting
  deeper than 64 is `bad_json` too.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

from dispatch.core import strict_json

MAX_BATCH = 1000
MAX_SENSOR_CODE = 64
# Reading.seq is stored in a BIGINT column.
MAX_SEQ = 2**63 - 1

# Every reason decode_payload can give (the registry and duplicate reasons are ingest's).
REASONS = frozenset({"bad_json", "bad_encoding", "schema", "bad_timestamp", "not_finite",
                     "too_old", "future", "too_large"})

# YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM), T and Z in either case (DESIGN §5, RFC 3339 §5.6).
# ASCII digits only: \d would also take other scripts' digits, which int() happily converts.
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII)

# C0 and C1 controls (Unicode category Cc) and surrogates (Cs): no database takes them as text.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Reading(NamedTuple):
    """One decoded reading, its time in UTC, and its position in the message (a named tuple,
    as Decoded: measured, a frozen dataclass's __init__ was ~4 % of the ingest writer)."""

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


class Decoded(NamedTuple):
    """The readings a message yields and what was refused."""

    readings: list[Reading]
    rejections: list[Rejection]
    batch: bool
    # A batch's items as decoded JSON values: a dead letter of one item keeps that item alone.
    items: tuple[Any, ...] = ()


class OutsideYears(ValueError):
    """A timestamp of the accepted form whose instant falls before year 1 or after year 9999 in
    UTC (`0001-01-01T00:00:00+08:00`): `later` says which side, so ingest can call it
    `future` or `too_old` as DESIGN §5 does for any other instant out of its window."""

    def __init__(self, later: bool):
        super().__init__("after the year 9999 in UTC" if later else "before the year 1 in UTC")
        self.later = later


class _Refused(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# Offset text -> tzinfo, for the offsets seen so far (most gateways send one or two).
_ZONES: dict[str, timezone] = {"Z": UTC, "z": UTC}


def parse_timestamp(text: str) -> datetime:
    """Parse the one accepted timestamp form into an aware UTC datetime (ValueError if not)."""
    if not isinstance(text, str):
        raise ValueError("not YYYY-MM-DDTHH:MM:SS[.fraction] with Z or ±HH:MM")
    return _parse_timestamp(text)


# Gateways stamp their sensors at the same instants (every reporting interval, on the minute),
# so a batch repeats a few stamps many times; measured (1,000 sensors, single readings), the
# parse was ~5 % of the ingest writer's time before this cache. Errors are not cached.
@functools.lru_cache(maxsize=4096)
def _parse_timestamp(text: str) -> datetime:
    match = TIMESTAMP.fullmatch(text)
    if not match:
        raise ValueError("not YYYY-MM-DDTHH:MM:SS[.fraction] with Z or ±HH:MM")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    tz = _ZONES.get(offset)
    if tz is None:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range (±23:59 at most)")
        sign = 1 if offset[0] == "+" else -1
        # At most 2 × 24 × 60 distinct valid offsets: the cache stays small.
        tz = _ZONES[offset] = timezone(sign * timedelta(hours=hours, minutes=minutes))
    micro = int((fraction + "000000")[:6]) if fraction else 0
    # datetime refuses hour 24, second 60 (leap seconds, RFC 3339 §5.7) and impossible dates.
    local = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    try:
        return local.astimezone(UTC)
    except OverflowError:
        # Only year 1 with a positive offset and year 9999 with a negative one get here.
        raise OutsideYears(later=year == 9999) from None


def _loads(raw: bytes) -> Any:
    try:
        # Infinity is kept: as a `value` it has its own reason (`not_finite`). Text is checked
        # per field below, so the reason names the field (`schema`).
        return strict_json.loads(raw, keep_infinity=True, check_text=False)
    except strict_json.JsonRefused as exc:
        raise _Refused(exc.reason, exc.detail) from None


def _is_text(value: object) -> bool:
    """A string that can be stored: no unpaired surrogates (RFC 8259 §8.2), no control chars."""
    return isinstance(value, str) and _UNSTORABLE.search(value) is None


def _sensor_code(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_SENSOR_CODE and _is_text(value):
        return value
    return None


def _is_number(value: object) -> bool:
    # bool is a subclass of int in Python, but `true` is not a number in JSON (DESIGN §5).
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_shape(item: dict[str, Any]) -> None:
    """The `schema` checks of one reading object."""
    if _sensor_code(item.get("sensor")) is None:
        raise _Refused("schema", "sensor must be a code of 1-64 characters")
    if not _is_number(item.get("value")):
        raise _Refused("schema", "value must be a number (not a string, boolean or null)")
    unit = item.get("unit")
    if unit is not None and not _is_text(unit):
        raise _Refused("schema", "unit must be text")
    seq = item.get("seq")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)
                            or not 0 <= seq <= MAX_SEQ):
        raise _Refused("schema", "seq must be a whole number from 0 to 2^63-1")
    raw_ts = item.get("ts")
    if raw_ts is None:
        raise _Refused("schema", "ts is required")
    if not isinstance(raw_ts, str) and not _is_number(raw_ts):
        raise _Refused("schema", "ts must be an RFC 3339 string with an offset")


def _finite(value: int | float) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _Refused("not_finite", "value is not a finite number")
    return number


def _reading(item: object, index: int, now: datetime, max_future: timedelta,
             max_age: timedelta) -> Reading:
    if not isinstance(item, dict):
        raise _Refused("schema", "a reading must be an object")
    _check_shape(item)
    value = _finite(item["value"])
    raw_ts = item["ts"]
    if not isinstance(raw_ts, str):
        raise _Refused("bad_timestamp", "ts must be an RFC 3339 string, not an epoch number")
    try:
        ts = parse_timestamp(raw_ts)
    except OutsideYears as exc:
        raise _Refused("future" if exc.later else "too_old",
                       f"ts {raw_ts} is {exc}") from None
    except ValueError as exc:
        raise _Refused("bad_timestamp", f"ts {raw_ts[:40]!r}: {exc}") from None
    if ts - now > max_future:
        raise _Refused("future", f"ts {raw_ts} is more than {max_future} ahead of the hub clock")
    if now - ts > max_age:
        raise _Refused("too_old", f"ts {raw_ts} is older than {max_age.days} days")
    return Reading(item["sensor"], ts, value, item.get("unit"), item.get("seq"), index)


def _items(raw: bytes, max_payload_bytes: int, max_batch: int) -> tuple[list[Any], bool]:
    """The reading objects of a message and whether it was a batch; _Refused for the whole."""
    if len(raw) > max_payload_bytes:
        # DESIGN §5 Limits: too large is not parsed at all.
        raise _Refused("too_large", f"{len(raw)} bytes > {max_payload_bytes}")
    body = _loads(raw)
    if not isinstance(body, dict):
        raise _Refused("schema", "the message must be a JSON object")
    items = body.get("readings")
    if items is None:  # absent or null: the message is one reading
        return [body], False
    if not isinstance(items, list):
        raise _Refused("schema", "readings must be a list")
    if len(items) > max_batch:
        raise _Refused("too_large", f"{len(items)} readings > {max_batch}")
    return items, True


def decode_payload(raw: bytes, *, now: datetime, max_payload_bytes: int = 524288,
                   max_future_s: int = 300, max_age_days: int = 30,
                   max_batch: int = MAX_BATCH) -> Decoded:
    """Decode one message: a reading or {"readings": [...]}; never raises on any bytes."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    try:
        items, batch = _items(bytes(raw), max_payload_bytes, max_batch)
    except _Refused as exc:
        return Decoded([], [Rejection(None, exc.reason, exc.detail)], batch=False)
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    future, age = timedelta(seconds=max_future_s), timedelta(days=max_age_days)
    for index, item in enumerate(items):
        try:
            readings.append(_reading(item, index, now, future, age))
        except _Refused as exc:
            sensor = _sensor_code(item.get("sensor")) if isinstance(item, dict) else None
            # A single-reading message is refused as a whole: no item index (DESIGN §5).
            rejections.append(Rejection(index if batch else None, exc.reason, exc.detail,
                                        sensor))
    return Decoded(readings, rejections, batch, tuple(items) if batch else ())
