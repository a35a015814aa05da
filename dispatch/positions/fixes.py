"""Decoding what phones and tablets send into fixes, pure: each message becomes one `Fix`, one
OwnTracks `Transition`, an `Ignored` OwnTracks type, or a `Rejection` with its reason
(DESIGN §5 "Roster and positions (contract)"). No Flask, no database: `dispatch.positions.intake`
stores what this returns.

Sources and their units (all normalised to metres, m/s and % here):
- OwnTracks JSON (MQTT `owntracks/{user}/{device}` and HTTP mode), `_type: location`: `lat`,
  `lon`, `tst` (epoch seconds) required; `acc` m, `vel` km/h, `batt` %. `_type: transition` (on
  `…/event`): `event` enter|leave, `desc` (the region's name), `tst`; `lat`/`lon` when given.
  Every other `_type` (waypoint, card, lwt, cmd, steps, `encrypted`, …) is ignored, not an error.
- OsmAnd / Traccar Client's query or form fields: `id` (or `deviceid`), `lat`, `lon` (or
  `location=lat,lon`), `timestamp`, `speed` knots, `accuracy` m, `batt` %, (`bearing`,
  `altitude`: not kept).
- Traccar Client's JSON body (its `locationTemplate`): `{"location": {"timestamp": ISO,
  "coords": {"latitude", "longitude", "accuracy", "speed" m/s, "heading", "altitude"},
  "battery": {"level" 0-1 or -1, "is_charging"}, …}, "device_id"}`; `location` may also be a
  list (the geolocation plugin's batch sync).
- The tablet's own fix (Socket.IO `position`): `{"lat", "lon", "ts" RFC 3339, "accuracy" m,
  "speed" m/s, "battery" 0-1 (the Battery API's level) or %}`.

Choices the contract leaves open, decided here:
- Reasons, first failing check wins: `too_large` → `bad_json` → `schema` (shape and types) →
  `not_finite` → `swapped` → `out_of_range` → `bad_timestamp` → `future` / `too_old`.
- `swapped`: the point lies outside the area (the townships' extent grown by AREA_MARGIN_DEG,
  else China) while the same numbers read the other way round lie inside it. Decided before the
  range check, so lat 109, lon 33 for a township at 109° E is `swapped`, not `out_of_range`.
- 0, 0 exactly is `out_of_range`: phones send it when they have no fix (Traccar's rule too).
- Timestamps in milliseconds: OwnTracks' `tst` is epoch seconds by its specification, so a `tst`
  of 1e11 or more (the year 5138 in seconds) is a misconfigured client: `bad_timestamp`, not a
  guess. OsmAnd's own tracking URL sends `timestamp` in milliseconds while Traccar Client sends
  seconds, so there a value of 1e11 or more is taken as milliseconds, as Traccar's server does.
  A `timestamp` given as text must carry its offset (RFC 3339; a space for the `T` is taken);
  a missing OsmAnd `timestamp` is the hub's clock (Traccar's rule); every other source must
  stamp its fixes.
- Optional values that make no sense (a negative accuracy or speed, a battery outside 0-100,
  the -1 Traccar Client sends for "unknown") are unknown (None): a fix is worth keeping without
  them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatch.core import strict_json
from maps.geo import CHINA_LAT, CHINA_LON
from telemetry.decode import OutsideYears, parse_timestamp

# An OwnTracks message or a Traccar body larger than this is `too_large` (a location is ~300
# bytes; a batch of a few hundred Traccar locations stays far below).
MAX_MESSAGE_BYTES = 65536
# The most locations one Traccar Client body may carry (its batch sync).
MAX_LOCATIONS = 500
# A `tst`/`timestamp` at or above this is milliseconds (1e11 s is the year 5138).
MILLISECONDS_FROM = 1e11
KNOT_MPS = 1852 / 3600
KMH_MPS = 1 / 3.6
# The townships' extent is grown by this much (about 100 km) before `swapped` is judged.
AREA_MARGIN_DEG = 1.0

# OwnTracks message types (booklet "JSON"); any other `_type` is counted as "other".
OWNTRACKS_TYPES = frozenset({
    "location", "transition", "waypoint", "waypoints", "card", "lwt", "cmd", "steps",
    "encrypted", "beacon", "status", "configuration", "dump", "request", "image", "intent"})
# What `Ignored.type` can be: an OwnTracks type, "other", or an empty message (a retained
# location being cleared).
IGNORED_TYPES = (*sorted(OWNTRACKS_TYPES - {"location", "transition"}), "other", "empty")
REASONS = ("too_large", "bad_json", "bad_encoding", "schema", "not_finite", "swapped",
           "out_of_range", "bad_timestamp", "future", "too_old")

_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A plain decimal number as text (what query strings carry); "nan" and "inf" too, so they are
# `not_finite` rather than `schema`.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
                     r"|nan|inf|infinity)", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Fix:
    """One position: time (aware UTC), WGS 84 lon/lat, and what the phone knew of it."""

    ts: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    battery_pct: float | None = None


@dataclass(frozen=True)
class Transition:
    """An OwnTracks region transition: the member entered or left the region named `desc`."""

    event: str
    desc: str
    ts: datetime
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float | None = None


@dataclass(frozen=True)
class Ignored:
    """An OwnTracks message of a type positions do not use (one of IGNORED_TYPES)."""

    type: str


@dataclass(frozen=True)
class Rejection:
    """Why a message (or one location of a Traccar batch) was refused: one of REASONS."""

    reason: str
    detail: str


Outcome = Fix | Transition | Ignored | Rejection


@dataclass(frozen=True)
class Area:
    """Where fixes are expected (lon/lat bounds): `swapped` is judged against it."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def holds(self, lon: float, lat: float) -> bool:
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat

    def grown(self, margin: float = AREA_MARGIN_DEG) -> Area:
        return Area(self.min_lon - margin, self.min_lat - margin, self.max_lon + margin,
                    self.max_lat + margin)


CHINA = Area(CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1])


@dataclass(frozen=True)
class Window:
    """The hub's clock and limits a fix is checked against (settings [positions])."""

    now: datetime
    max_future_s: int = 300
    max_age_days: int = 7
    area: Area = CHINA


class _Refused(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- values --------------------------------------------------------------------------------------

def _is_number(value: object) -> bool:
    # bool is an int in Python, but `true` is no number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer too large for a double
        return math.inf


def _required_number(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None:
        raise _Refused("schema", f"{name} is required")
    if not _is_number(value):
        raise _Refused("schema", f"{name} must be a number")
    return _float(value)


def _optional(value: Any, *, low: float = 0.0, high: float = math.inf,
              scale: float = 1.0) -> float | None:
    """An optional number in [low, high] (after scaling), else unknown."""
    if not _is_number(value):
        return None
    number = _float(value) * scale
    return number if math.isfinite(number) and low <= number <= high else None


def battery_pct(value: Any, *, fraction: bool) -> float | None:
    """A battery level as %: `fraction` sources send 0-1 (a value above 1 is taken as %);
    -1 (unknown) and anything outside 0-100 are unknown."""
    if not _is_number(value):
        return None
    number = _float(value)
    if fraction and 0 <= number <= 1:
        number *= 100
    return number if math.isfinite(number) and 0 <= number <= 100 else None


def _text_number(params: Mapping[str, str], name: str) -> float | None:
    """A number given as query or form text (None when absent or empty)."""
    text = params.get(name)
    if text is None or text.strip() == "":
        return None
    text = text.strip()
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        raise _Refused("schema", f"{name} must be a number")
    return _float(text)


def _place(lon: float, lat: float, window: Window) -> tuple[float, float]:
    """Check a lon/lat pair: finite, not swapped, in range, not 0,0."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise _Refused("not_finite", "lat and lon must be finite numbers")
    area = window.area
    if not area.holds(lon, lat) and area.holds(lat, lon):
        raise _Refused("swapped", f"lat {lat:g}, lon {lon:g} look swapped: the other way round "
                                  "they lie in the township")
    if not -90 <= lat <= 90:
        raise _Refused("out_of_range", f"lat {lat:g} is outside -90..90")
    if not -180 <= lon <= 180:
        raise _Refused("out_of_range", f"lon {lon:g} is outside -180..180")
    if lat == 0 and lon == 0:
        raise _Refused("out_of_range", "0, 0 is a phone without a fix")
    return lon, lat


def _in_window(ts: datetime, shown: str, window: Window) -> datetime:
    if ts - window.now > timedelta(seconds=window.max_future_s):
        raise _Refused("future", f"{shown} is more than {window.max_future_s} s ahead of the "
                                 "hub clock")
    if window.now - ts > timedelta(days=window.max_age_days):
        raise _Refused("too_old", f"{shown} is older than {window.max_age_days} days")
    return ts


def _epoch(seconds: float, shown: str, window: Window) -> datetime:
    if not math.isfinite(seconds) or seconds < 0:
        raise _Refused("bad_timestamp", f"{shown} is not a time")
    try:
        ts = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise _Refused("future", f"{shown} is past the year 9999") from None
    return _in_window(ts, shown, window)


def _epoch_seconds(value: Any, name: str, window: Window) -> datetime:
    """OwnTracks' `tst`: epoch seconds; milliseconds are refused (module docstring)."""
    if value is None:
        raise _Refused("schema", f"{name} is required")
    if not _is_number(value):
        raise _Refused("bad_timestamp", f"{name} must be epoch seconds (a number)")
    seconds = _float(value)
    if seconds >= MILLISECONDS_FROM:
        raise _Refused("bad_timestamp", f"{name} {value} looks like milliseconds; OwnTracks "
                                        "sends epoch seconds")
    return _epoch(seconds, f"{name} {value}", window)


def _rfc3339(text: str, name: str, window: Window) -> datetime:
    """A timestamp as text: RFC 3339 with an offset (a space for the `T` is taken)."""
    if len(text) > 64:
        raise _Refused("bad_timestamp", f"{name} is too long to be a time")
    fixed = text.strip()
    if len(fixed) > 10 and fixed[10] == " ":
        fixed = fixed[:10] + "T" + fixed[11:]
    try:
        ts = parse_timestamp(fixed)
    except OutsideYears as exc:
        raise _Refused("future" if exc.later else "too_old", f"{name} {text} is {exc}") from None
    except ValueError as exc:
        raise _Refused("bad_timestamp", f"{name} {text!r}: {exc}") from None
    return _in_window(ts, f"{name} {text}", window)


# --- OwnTracks -----------------------------------------------------------------------------------

def _json_object(raw: bytes, *, keep_infinity: bool = True) -> dict[str, Any]:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise _Refused("too_large", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        body = strict_json.loads(raw, keep_infinity=keep_infinity)
    except strict_json.JsonRefused as exc:
        raise _Refused(exc.reason, exc.detail) from None
    if not isinstance(body, dict):
        raise _Refused("schema", "the message must be a JSON object")
    return body


def _owntracks_location(body: dict[str, Any], window: Window) -> Fix:
    lat, lon = _required_number(body, "lat"), _required_number(body, "lon")
    lon, lat = _place(lon, lat, window)
    ts = _epoch_seconds(body.get("tst"), "tst", window)
    return Fix(ts, lon, lat, accuracy_m=_optional(body.get("acc")),
               speed_mps=_optional(body.get("vel"), scale=KMH_MPS),
               battery_pct=battery_pct(body.get("batt"), fraction=False))


def _owntracks_transition(body: dict[str, Any], window: Window) -> Transition:
    event, desc = body.get("event"), body.get("desc")
    if event not in ("enter", "leave"):
        raise _Refused("schema", "event must be enter or leave")
    if not isinstance(desc, str) or not 0 < len(desc) <= 200 or _UNSTORABLE.search(desc):
        raise _Refused("schema", "desc must name the region (1-200 characters)")
    lon = lat = None
    if body.get("lat") is not None or body.get("lon") is not None:
        lon, lat = _place(_required_number(body, "lon"), _required_number(body, "lat"), window)
    ts = _epoch_seconds(body.get("tst"), "tst", window)
    return Transition(event, desc, ts, lon, lat, _optional(body.get("acc")))


def decode_owntracks(raw: bytes, window: Window) -> Outcome:
    """One OwnTracks message (MQTT payload or HTTP body); never raises on any bytes."""
    if not raw:
        return Ignored("empty")
    try:
        body = _json_object(bytes(raw))
        kind = body.get("_type")
        if not isinstance(kind, str):
            raise _Refused("schema", "_type is required (an OwnTracks message)")
        if kind == "location":
            return _owntracks_location(body, window)
        if kind == "transition":
            return _owntracks_transition(body, window)
    except _Refused as exc:
        return Rejection(exc.reason, exc.detail)
    return Ignored(kind if kind in OWNTRACKS_TYPES else "other")


# --- OsmAnd / Traccar Client -------------------------------------------------------------------

def osmand_device(params: Mapping[str, str]) -> str | None:
    """The device identifier of an OsmAnd request (`id`, or `deviceid`)."""
    for name in ("id", "deviceid"):
        value = params.get(name)
        if value:
            return value
    return None


def _osmand_time(params: Mapping[str, str], window: Window) -> datetime:
    text = params.get("timestamp")
    if text is None or text.strip() == "":
        return window.now  # Traccar's rule: no time given is the time it arrived
    if _NUMBER.fullmatch(text.strip()):
        number = _float(text.strip())
        seconds = number / 1000 if number >= MILLISECONDS_FROM else number
        return _epoch(seconds, f"timestamp {text}", window)
    return _rfc3339(text, "timestamp", window)


def _osmand_lonlat(params: Mapping[str, str]) -> tuple[float, float]:
    location = params.get("location")
    if location and params.get("lat") is None and params.get("lon") is None:
        parts = location.split(",")
        if len(parts) != 2:
            raise _Refused("schema", "location must be lat,lon")
        lat = _text_number({"lat": parts[0]}, "lat")
        lon = _text_number({"lon": parts[1]}, "lon")
    else:
        lat, lon = _text_number(params, "lat"), _text_number(params, "lon")
    if lat is None or lon is None:
        raise _Refused("schema", "lat and lon are required")
    return lon, lat


def decode_osmand(params: Mapping[str, str], window: Window) -> Fix | Rejection:
    """An OsmAnd request's fields (query or form), as Traccar's OsmAnd protocol reads them."""
    try:
        lon, lat = _place(*_osmand_lonlat(params), window)
        ts = _osmand_time(params, window)
        speed = _text_number(params, "speed")
        accuracy = _text_number(params, "accuracy")
        battery = _text_number(params, "batt")
    except _Refused as exc:
        return Rejection(exc.reason, exc.detail)
    return Fix(ts, lon, lat, accuracy_m=_optional(accuracy),
               speed_mps=_optional(speed, scale=KNOT_MPS),
               battery_pct=battery_pct(battery, fraction=False))


def _traccar_location(location: Any, window: Window) -> Fix:
    if not isinstance(location, dict):
        raise _Refused("schema", "location must be an object")
    coords = location.get("coords")
    if not isinstance(coords, dict):
        raise _Refused("schema", "location.coords is required")
    lat, lon = _required_number(coords, "latitude"), _required_number(coords, "longitude")
    lon, lat = _place(lon, lat, window)
    stamp = location.get("timestamp")
    if stamp is None:
        raise _Refused("schema", "location.timestamp is required")
    if not isinstance(stamp, str):
        raise _Refused("bad_timestamp", "location.timestamp must be an ISO 8601 time")
    ts = _rfc3339(stamp, "location.timestamp", window)
    battery = location.get("battery")
    level = battery.get("level") if isinstance(battery, dict) else None
    return Fix(ts, lon, lat, accuracy_m=_optional(coords.get("accuracy")),
               speed_mps=_optional(coords.get("speed")),
               battery_pct=battery_pct(level, fraction=True))


def traccar_body(raw: bytes) -> tuple[str | None, Any, Rejection | None]:
    """A Traccar Client JSON body: its `device_id`, its `location` (an object or a list), or
    why it cannot be read (then the device is still named when it could be found)."""
    try:
        body = _json_object(bytes(raw))
    except _Refused as exc:
        return None, None, Rejection(exc.reason, exc.detail)
    device = body.get("device_id")
    if _is_number(device):
        device = str(device)
    if not isinstance(device, str) or not device:
        device = None
    if "location" not in body:
        return device, None, Rejection("schema", "location is required")
    return device, body["location"], None


def decode_traccar(location: Any, window: Window) -> list[Fix | Rejection]:
    """The `location` of a Traccar Client JSON body: one result per location."""
    items = location if isinstance(location, list) else [location]
    if len(items) > MAX_LOCATIONS:
        return [Rejection("too_large", f"{len(items)} locations > {MAX_LOCATIONS}")]
    results: list[Fix | Rejection] = []
    for item in items:
        try:
            results.append(_traccar_location(item, window))
        except _Refused as exc:
            results.append(Rejection(exc.reason, exc.detail))
    return results


# --- the tablet ----------------------------------------------------------------------------------

def decode_tablet(data: Any, window: Window) -> Fix | Rejection:
    """A tablet's `position` event: {"lat", "lon", "ts", "accuracy", "speed", "battery"}."""
    try:
        if not isinstance(data, dict):
            raise _Refused("schema", "send an object with lat, lon and ts")
        lat, lon = _required_number(data, "lat"), _required_number(data, "lon")
        lon, lat = _place(lon, lat, window)
        stamp = data.get("ts")
        if stamp is None:
            raise _Refused("schema", "ts is required")
        if not isinstance(stamp, str):
            raise _Refused("bad_timestamp", "ts must be an RFC 3339 time with an offset")
        ts = _rfc3339(stamp, "ts", window)
    except _Refused as exc:
        return Rejection(exc.reason, exc.detail)
    return Fix(ts, lon, lat, accuracy_m=_optional(data.get("accuracy")),
               speed_mps=_optional(data.get("speed")),
               battery_pct=battery_pct(data.get("battery"), fraction=True))
