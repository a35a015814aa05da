"""Threshold tables, pure: validation of a village's critical-rainfall table and of a hazard
zone's curves and slope velocities (DESIGN §5 "Alerts (contract)" → "Thresholds"), and the CSV
import of village tables.

A table is taken whole or refused whole: `BadThresholds.cells` names every bad cell, not only
the first, each with a path into the JSON (`evacuate.normal[2]`, `windows_h[1]`, `gauges[0]`,
`antecedent_mm.dry_below`) or, for CSV, its line (`line 7`), an English reason and a code the
views translate by (`MESSAGES` lists every code). A key given as null counts as absent, as at
ingest (DESIGN §5 "Decoding"); an absent key takes its default; an unknown key is a bad cell.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.choices import LEVELS, AlertKind
from telemetry.choices import SensorKind
from telemetry.rain import CAINE_1980, GUZZETTI_2008, WINDOWS

FLOOD_LEVELS = LEVELS[AlertKind.FLASH_FLOOD]  # prepare, evacuate
RAIN_LEVELS = LEVELS[AlertKind.LANDSLIDE_RAIN]  # prepare, evacuate
SLOPE_LEVELS = LEVELS[AlertKind.SLOPE_MOVEMENT]  # attention, warning, alarm
# Driest first: dry soil takes the most rain before a flood, wet soil the least (SL 675 practice).
SOILS = ("dry", "normal", "wet")

DEFAULT_WINDOWS_H = (1, 3, 6)
DEFAULT_ANTECEDENT_MM = {"dry_below": 15, "wet_above": 50}
# Guzzetti et al. 2008 (global minimum) to prepare, Caine 1980 to evacuate (DESIGN §5, §6).
DEFAULT_CURVES = {"prepare": (GUZZETTI_2008.alpha, GUZZETTI_2008.beta),
                  "evacuate": (CAINE_1980.alpha, CAINE_1980.beta)}
DEFAULT_MIN_DURATION_H = 1
DEFAULT_AGREE = 1

# The hub keeps 24 h of rain per gauge (telemetry.rain.RainWindows): no longer window exists.
MAX_WINDOW_H = WINDOWS["24h"] / 3600
# SL 675 tables use up to six windows (0.5, 1, 3, 6, 12, 24 h); twelve leaves room and keeps a
# table small enough to show and edit.
MAX_WINDOWS = 12
# Published I–D thresholds have β well below this (Caine 1980: 0.39, Guzzetti et al. 2008: 0.44);
# with β ≥ 1 the event total a curve asks for, α·D^(1−β), already shrinks as rain goes on, and a
# β of 1.5 or more is most likely a slip such as α and β swapped.
MAX_BETA = 1.5
# The evacuate curve must stay on or above the prepare curve over the durations Caine 1980 was
# fitted to (10 min to 10 days), from the zone's min_duration_h on.
CURVES_COMPARED_UNTIL_H = CAINE_1980.max_h
# Velocity thresholds are in mm/day: only the kinds reporting displacement in mm count. A tilt
# meter reports degrees, and a velocity in mm/day cannot be compared with its rate.
DISPLACEMENT_KINDS = (SensorKind.CRACK_METER, SensorKind.GNSS)

CSV_COLUMNS = ("village", "level", "soil", "window_h", "mm")

# Every code a bad cell can carry, with its English reason (the views translate by code).
MESSAGES: dict[str, str] = {
    "not_an_object": "must be an object",
    "not_a_list": "must be a list",
    "unknown_key": "is not a field of this table",
    "missing": "is missing",
    "not_a_number": "must be a finite number",
    "not_positive": "must be greater than zero",
    "negative": "must not be negative",
    "not_an_integer": "must be a whole number",
    "empty": "must have at least one window",
    "too_many": f"must have at most {MAX_WINDOWS} windows",
    "too_long": "must be at most 24 h: the hub keeps 24 h of rain per gauge",
    "not_increasing": "must be longer than the window before it",
    "wrong_length": "must have exactly one value per window",
    "decreasing": "must not be less than the value for the shorter window before it",
    "below_prepare": "must not be less than the prepare value for the same soil and window",
    "wet_above_dry": "must not be more than the value for drier soil: wetter soil floods sooner",
    "not_above_dry_below": "must be greater than dry_below",
    "unknown_gauge": "is not a registered rain gauge",
    "unknown_sensor": "is not a registered crack meter or GNSS station",
    "duplicate": "is listed twice",
    "too_steep": "must be less than 1.5: published curves have β well below that "
                 "(are α and β swapped?)",
    "curve_below_prepare": "makes the evacuate curve fall below the prepare curve for events "
                           "between min_duration_h and 240 h",
    "below_lower_level": "must not be less than the velocity of a lower level",
    "more_than_sensors": "must not be more than the number of sensors",
    "bad_header": "the first line must be: village,level,soil,window_h,mm",
    "malformed": "is not well-formed CSV (check the quotes)",
    "no_rows": "the file has no rows after its header",
    "wrong_columns": "must have five columns: village,level,soil,window_h,mm",
    "no_village": "names no village",
    "unknown_village": "names a village that is not registered",
    "unknown_level": "level must be prepare or evacuate",
    "unknown_soil": "soil must be dry, normal or wet",
    "bad_window": "window_h must be a number of hours above 0 and at most 24",
    "bad_mm": "mm must be a number above 0",
    "duplicate_row": "repeats the village, level, soil and window of an earlier line",
    "missing_row": "no line gives the rain for this village, level, soil and window",
}


@dataclass(frozen=True)
class BadCell:
    """One bad cell of a threshold table: where it is, why (English) and a code to translate."""

    path: str
    why: str
    code: str


class BadThresholds(ValueError):
    """A threshold table refused whole; `cells` names every bad cell."""

    def __init__(self, cells: Iterable[BadCell]):
        self.cells = list(cells)
        shown = "; ".join(f"{c.path}: {c.why}" for c in self.cells[:3])
        more = f" (and {len(self.cells) - 3} more)" if len(self.cells) > 3 else ""
        super().__init__(f"bad thresholds: {shown}{more}")


@dataclass(frozen=True)
class VillageThresholds:
    """A village's critical rainfall (mm) per window and soil state, at both levels (SL 675)."""

    gauges: tuple[str, ...]
    windows_h: tuple[float, ...]
    prepare: dict[str, tuple[float, ...]]
    evacuate: dict[str, tuple[float, ...]]
    dry_below: float
    wet_above: float

    def as_json(self) -> dict[str, Any]:
        """The table in the contract's JSON shape."""
        return {"gauges": list(self.gauges), "windows_h": list(self.windows_h),
                "prepare": {soil: list(row) for soil, row in self.prepare.items()},
                "evacuate": {soil: list(row) for soil, row in self.evacuate.items()},
                "antecedent_mm": {"dry_below": self.dry_below, "wet_above": self.wet_above}}


@dataclass(frozen=True)
class HazardThresholds:
    """A hazard zone's I = α·D^−β curves (α, β) and its slope-velocity thresholds (mm/day)."""

    gauges: tuple[str, ...]
    prepare: tuple[float, float]
    evacuate: tuple[float, float]
    min_duration_h: float
    sensors: tuple[str, ...]
    velocity_mm_d: dict[str, float | None]
    agree: int

    def as_json(self) -> dict[str, Any]:
        """The table in the contract's JSON shape."""
        return {"gauges": list(self.gauges),
                "prepare": {"alpha": self.prepare[0], "beta": self.prepare[1]},
                "evacuate": {"alpha": self.evacuate[0], "beta": self.evacuate[1]},
                "min_duration_h": self.min_duration_h, "sensors": list(self.sensors),
                "velocity_mm_d": dict(self.velocity_mm_d), "agree": self.agree}


class _Cells:
    """The bad cells found so far."""

    def __init__(self) -> None:
        self.cells: list[BadCell] = []

    def bad(self, path: str, code: str) -> None:
        self.cells.append(BadCell(path, MESSAGES[code], code))

    def raise_any(self) -> None:
        if self.cells:
            raise BadThresholds(self.cells)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _finite(value: Any) -> bool:
    """A JSON number: booleans and numeric strings are not numbers (DESIGN §5 "Decoding")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _positive(cells: _Cells, path: str, value: Any) -> float | None:
    """The number if it is finite and above zero, else None with the cell recorded."""
    if value is None:
        cells.bad(path, "missing")
    elif not _finite(value):
        cells.bad(path, "not_a_number")
    elif value <= 0:
        cells.bad(path, "not_positive")
    else:
        return value
    return None


def _object(cells: _Cells, path: str, value: Any, keys: Collection[str]) -> dict | None:
    """An object's known keys, nulls dropped; unknown keys are bad cells; None if no object."""
    if not isinstance(value, Mapping):
        cells.bad(path, "not_an_object")
        return None
    for key in value:
        if key not in keys:
            cells.bad(_join(path, str(key)), "unknown_key")
    return {k: v for k, v in value.items() if k in keys and v is not None}


def _codes(cells: _Cells, path: str, value: Any, registered: Collection[str],
           unknown: str) -> tuple[str, ...]:
    """A list of registered codes, each at most once."""
    if not isinstance(value, list | tuple):
        cells.bad(path, "not_a_list")
        return ()
    seen: set[str] = set()
    for i, code in enumerate(value):
        if not isinstance(code, str) or code not in registered:
            cells.bad(f"{path}[{i}]", unknown)
        elif code in seen:
            cells.bad(f"{path}[{i}]", "duplicate")
        else:
            seen.add(code)
    return tuple(value)


def _windows(cells: _Cells, value: Any) -> list | None:
    """The windows (h), strictly increasing, positive and at most 24 h; None if not a list."""
    if not isinstance(value, list | tuple):
        cells.bad("windows_h", "not_a_list")
        return None
    if not value or len(value) > MAX_WINDOWS:
        cells.bad("windows_h", "too_many" if value else "empty")
        return None
    out, previous = [], None
    for i, window in enumerate(value):
        path = f"windows_h[{i}]"
        hours = _positive(cells, path, window)
        if hours is not None and hours > MAX_WINDOW_H:
            cells.bad(path, "too_long")
        elif hours is not None and previous is not None and hours <= previous:
            cells.bad(path, "not_increasing")
        previous = hours if hours is not None else previous
        out.append(hours)
    return out


def _row(cells: _Cells, path: str, value: Any, windows: int | None) -> list | None:
    """One row of rain (mm) along the windows: positive and never decreasing."""
    if not isinstance(value, list | tuple):
        cells.bad(path, "missing" if value is None else "not_a_list")
        return None
    if windows is not None and len(value) > windows:
        cells.bad(path, "wrong_length")
    out, previous = [], None
    for i, cell in enumerate(value):
        mm = _positive(cells, f"{path}[{i}]", cell)
        if mm is not None and previous is not None and mm < previous:
            cells.bad(f"{path}[{i}]", "decreasing")
        previous = mm if mm is not None else previous
        out.append(mm)
    # A short row has gaps: each missing cell is named, so a grid can show where.
    for i in range(len(value), windows or 0):
        cells.bad(f"{path}[{i}]", "missing")
        out.append(None)
    return out


def _level(cells: _Cells, level: str, value: Any, windows: int | None) -> dict | None:
    """One level's rows per soil state."""
    if value is None:
        cells.bad(level, "missing")
        return None
    rows = _object(cells, level, value, SOILS)
    if rows is None:
        return None
    return {soil: _row(cells, f"{level}.{soil}", rows.get(soil), windows) for soil in SOILS}


def _cell(row: list | None, i: int) -> float | None:
    return row[i] if row is not None and i < len(row) else None


def _soils_ordered(cells: _Cells, level: str, rows: dict) -> None:
    """dry ≥ normal ≥ wet, cell by cell; each wetter cell is compared with the nearest valid
    drier one, so one bad cell is named once."""
    for k, soil in enumerate(SOILS[1:], start=1):
        for i, mm in enumerate(rows[soil] or ()):
            drier = next((d for d in (_cell(rows[s], i) for s in reversed(SOILS[:k]))
                          if d is not None), None)
            if mm is not None and drier is not None and mm > drier:
                cells.bad(f"{level}.{soil}[{i}]", "wet_above_dry")


def _levels_ordered(cells: _Cells, prepare: dict, evacuate: dict) -> None:
    """evacuate ≥ prepare, cell by cell."""
    for soil in SOILS:
        for i, mm in enumerate(evacuate[soil] or ()):
            below = _cell(prepare[soil], i)
            if mm is not None and below is not None and mm < below:
                cells.bad(f"evacuate.{soil}[{i}]", "below_prepare")


def _antecedent(cells: _Cells, value: Any) -> tuple[Any, Any]:
    """(dry_below, wet_above) in mm of antecedent rain: not negative, dry_below < wet_above."""
    given = {} if value is None else _object(cells, "antecedent_mm", value,
                                             DEFAULT_ANTECEDENT_MM)
    if given is None:
        return None, None
    out = {}
    for key, default in DEFAULT_ANTECEDENT_MM.items():
        mm = given.get(key, default)
        path = f"antecedent_mm.{key}"
        if not _finite(mm):
            cells.bad(path, "not_a_number")
            mm = None
        elif mm < 0:
            cells.bad(path, "negative")
            mm = None
        out[key] = mm
    if None not in out.values() and not out["dry_below"] < out["wet_above"]:
        cells.bad("antecedent_mm.wet_above", "not_above_dry_below")
    return out["dry_below"], out["wet_above"]


VILLAGE_KEYS = ("gauges", "windows_h", "prepare", "evacuate", "antecedent_mm")
HAZARD_KEYS = ("gauges", "prepare", "evacuate", "min_duration_h", "sensors", "velocity_mm_d",
               "agree")


def village_thresholds(body: Any, *, rain_gauges: Collection[str]) -> VillageThresholds:
    """A village's table validated (DESIGN §5); BadThresholds names every bad cell."""
    cells = _Cells()
    doc = _object(cells, "", body, VILLAGE_KEYS)
    if doc is None:
        raise BadThresholds(cells.cells)
    gauges = _codes(cells, "gauges", doc.get("gauges", []), rain_gauges, "unknown_gauge")
    windows = _windows(cells, doc.get("windows_h", list(DEFAULT_WINDOWS_H)))
    count = len(windows) if windows is not None else None
    rows = {level: _level(cells, level, doc.get(level), count) for level in FLOOD_LEVELS}
    for level, table in rows.items():
        if table is not None:
            _soils_ordered(cells, level, table)
    if None not in rows.values():
        _levels_ordered(cells, rows["prepare"], rows["evacuate"])
    dry_below, wet_above = _antecedent(cells, doc.get("antecedent_mm"))
    cells.raise_any()
    return VillageThresholds(
        gauges, tuple(windows),
        {soil: tuple(row) for soil, row in rows["prepare"].items()},
        {soil: tuple(row) for soil, row in rows["evacuate"].items()},
        dry_below, wet_above)


def _curve(cells: _Cells, level: str, value: Any) -> tuple[float, float] | None:
    """One I = α·D^−β curve: α > 0, 0 < β < 1.5; the level's default when absent."""
    if value is None:
        return DEFAULT_CURVES[level]
    given = _object(cells, level, value, ("alpha", "beta"))
    if given is None:
        return None
    alpha = _positive(cells, f"{level}.alpha", given.get("alpha"))
    beta = _positive(cells, f"{level}.beta", given.get("beta"))
    if beta is not None and beta >= MAX_BETA:
        cells.bad(f"{level}.beta", "too_steep")
        beta = None
    return None if alpha is None or beta is None else (alpha, beta)


def _curves_ordered(cells: _Cells, prepare: tuple | None, evacuate: tuple | None,
                    min_duration_h: float | None) -> None:
    """The evacuate curve on or above the prepare curve from min_duration_h to 240 h.

    In log–log space both curves are straight lines, so they cannot cross inside the range
    without one being above the other at one of its ends: checking the two ends is enough."""
    if prepare is None or evacuate is None or min_duration_h is None:
        return
    for hours in (min_duration_h, max(min_duration_h, CURVES_COMPARED_UNTIL_H)):
        if evacuate[0] * hours ** -evacuate[1] < prepare[0] * hours ** -prepare[1]:
            cells.bad("evacuate.alpha", "curve_below_prepare")
            return


def _velocities(cells: _Cells, value: Any) -> dict[str, float | None]:
    """Velocity thresholds (mm/day) per slope level: each absent or positive, and rising with
    the level where given (no universal values exist: DESIGN §6)."""
    given = {} if value is None else _object(cells, "velocity_mm_d", value, SLOPE_LEVELS)
    out: dict[str, float | None] = dict.fromkeys(SLOPE_LEVELS)
    if given is None:
        return out
    lower = None
    for level in SLOPE_LEVELS:
        if level not in given:
            continue
        path = f"velocity_mm_d.{level}"
        out[level] = _positive(cells, path, given[level])
        if out[level] is not None and lower is not None and out[level] < lower:
            cells.bad(path, "below_lower_level")
        lower = out[level] if out[level] is not None else lower
    return out


def _agree(cells: _Cells, value: Any, sensors: int) -> int:
    """k of k-of-n: a whole number from 1 up to the number of sensors when they are named."""
    if isinstance(value, bool) or not isinstance(value, int):
        cells.bad("agree", "not_an_integer")
    elif value < 1:
        cells.bad("agree", "not_positive")
    elif sensors and value > sensors:
        cells.bad("agree", "more_than_sensors")
    return value


def hazard_thresholds(body: Any, *, rain_gauges: Collection[str],
                      displacement_sensors: Collection[str]) -> HazardThresholds:
    """A hazard zone's table validated (DESIGN §5); BadThresholds names every bad cell.

    `displacement_sensors` are the registered sensors of DISPLACEMENT_KINDS."""
    cells = _Cells()
    doc = _object(cells, "", body, HAZARD_KEYS)
    if doc is None:
        raise BadThresholds(cells.cells)
    gauges = _codes(cells, "gauges", doc.get("gauges", []), rain_gauges, "unknown_gauge")
    curves = {level: _curve(cells, level, doc.get(level)) for level in RAIN_LEVELS}
    min_duration_h = _positive(cells, "min_duration_h",
                               doc.get("min_duration_h", DEFAULT_MIN_DURATION_H))
    _curves_ordered(cells, curves["prepare"], curves["evacuate"], min_duration_h)
    sensors = _codes(cells, "sensors", doc.get("sensors", []), displacement_sensors,
                     "unknown_sensor")
    velocities = _velocities(cells, doc.get("velocity_mm_d"))
    agree = _agree(cells, doc.get("agree", DEFAULT_AGREE), len(sensors))
    cells.raise_any()
    return HazardThresholds(gauges, curves["prepare"], curves["evacuate"], min_duration_h,
                            sensors, velocities, agree)


# --- CSV import -----------------------------------------------------------------------------

CsvKey = tuple[str, str, str, float]  # village, level, soil, window_h


def _read_csv(cells: _Cells, text: str) -> list[tuple[int, list[str]]]:
    """(line, fields) of each non-blank record after a valid header; line 1 is the header."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    records = []
    while True:
        # A record is named by the line it begins on (a quoted field may span lines; a quote
        # left open runs on to the end of the file).
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            cells.bad(f"line {start}", "malformed")
            return []
        records.append((start, fields))
    if not records or tuple(f.strip().lower() for f in records[0][1]) != CSV_COLUMNS:
        cells.bad("line 1", "bad_header")
        return []
    rows = [(line, fields) for line, fields in records[1:] if any(f.strip() for f in fields)]
    if not rows:
        cells.bad("line 2", "no_rows")
    return rows


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _csv_row(cells: _Cells, line: int, fields: list[str],
             villages: Collection[str] | None) -> tuple[CsvKey | None, float | None]:
    """One record's key (None when any part is bad) and rain (None when bad)."""
    path = f"line {line}"
    if len(fields) != len(CSV_COLUMNS):
        cells.bad(path, "wrong_columns")
        return None, None
    village, level, soil, window, mm = (f.strip() for f in fields)
    level, soil = level.lower(), soil.lower()
    hours, rain = _number(window), _number(mm)
    problems = [
        ("no_village", not village),
        ("unknown_village", bool(village) and villages is not None and village not in villages),
        ("unknown_level", level not in FLOOD_LEVELS),
        ("unknown_soil", soil not in SOILS),
        ("bad_window", hours is None or hours > MAX_WINDOW_H),
        ("bad_mm", rain is None)]
    for code, bad in problems:
        if bad:
            cells.bad(path, code)
    key_ok = not any(bad for code, bad in problems if code != "bad_mm")
    return ((village, level, soil, hours) if key_ok else None), rain


def _whole(hours: float) -> float:
    """1.0 → 1, so tables read as written."""
    return int(hours) if hours.is_integer() else hours


def _csv_tables(cells: _Cells, rain: dict[CsvKey, float | None]) -> dict[str, dict]:
    """Each village's partial table; every (level, soil, window) it lacks is a bad cell."""
    tables: dict[str, dict] = {}
    for village in sorted({key[0] for key in rain}):
        windows = sorted({key[3] for key in rain if key[0] == village})
        table: dict[str, Any] = {"windows_h": [_whole(w) for w in windows]}
        for level in FLOOD_LEVELS:
            table[level] = {}
            for soil in SOILS:
                for window in windows:
                    if (village, level, soil, window) not in rain:
                        cells.bad(f"{village},{level},{soil},{window:g}", "missing_row")
                table[level][soil] = [rain.get((village, level, soil, w)) for w in windows]
        tables[village] = table
    return tables


def _parse(text: str, villages: Collection[str] | None,
           ) -> tuple[dict[str, dict], dict[CsvKey, int]]:
    """The partial tables and the line of each cell; BadThresholds for any bad record."""
    cells = _Cells()
    rain: dict[CsvKey, float | None] = {}
    lines: dict[CsvKey, int] = {}
    for line, fields in _read_csv(cells, text):
        key, mm = _csv_row(cells, line, fields, villages)
        if key is None:
            continue
        if key in lines:
            cells.bad(f"line {line}", "duplicate_row")
            continue
        rain[key], lines[key] = mm, line
    tables = _csv_tables(cells, rain)
    cells.raise_any()
    return tables, lines


def parse_csv(text: str, *, villages: Collection[str] | None = None) -> dict[str, dict]:
    """CSV `village,level,soil,window_h,mm` → {village: {"windows_h", "prepare", "evacuate"}};
    all rows or none: BadThresholds names the line of every bad row (the header is line 1).

    With `villages`, a row naming any other village is bad too. Each table still has to pass
    `village_thresholds` with the village's gauges and antecedent limits (see `import_csv`)."""
    return _parse(text, villages)[0]


_CELL = re.compile(r"(prepare|evacuate)\.(dry|normal|wet)\[(\d+)\]")


def _line_of(village: str, windows: list, lines: Mapping[CsvKey, int], path: str) -> str:
    """The CSV line a bad cell of a village's imported table came from.

    Windows from CSV are sorted, distinct and checked per row, so the table rules can only
    fault a rain cell, or the village's current gauges or antecedent limits."""
    if match := _CELL.fullmatch(path):
        level, soil, i = match[1], match[2], int(match[3])
        return f"line {lines[(village, level, soil, float(windows[i]))]}"
    return f"{village}: {path}"


def _line_number(cell: BadCell) -> tuple[int, str]:
    line = cell.path.removeprefix("line ")
    return (int(line), "") if line.isdigit() else (0, cell.path)


def import_csv(text: str, current: Mapping[str, Mapping[str, Any] | None], *,
               rain_gauges: Collection[str]) -> dict[str, VillageThresholds]:
    """The villages' new tables from CSV, all or none: the rain from the CSV, gauges and
    antecedent limits from each village's current table (`current`: every registered village's
    table JSON, None for none); every bad cell is named by its CSV line."""
    tables, lines = _parse(text, villages=current.keys())
    out, bad = {}, []
    for village, table in tables.items():
        base = current[village] or {}
        body = {"gauges": base.get("gauges") or [],
                "antecedent_mm": base.get("antecedent_mm") or dict(DEFAULT_ANTECEDENT_MM),
                **table}
        try:
            out[village] = village_thresholds(body, rain_gauges=rain_gauges)
        except BadThresholds as exc:
            bad += [BadCell(_line_of(village, table["windows_h"], lines, c.path), c.why, c.code)
                    for c in exc.cells]
    if bad:
        raise BadThresholds(sorted(bad, key=_line_number))
    return out
