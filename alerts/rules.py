"""Warning rules, pure (DESIGN §6 "Evaluation, exactly"): what level each alert kind reaches from
the data ending now. Dataclasses in, a `Decision` out; no Flask, no database.

Sources:
- Rainstorm signals: CMA 暴雨预警信号 (气象灾害预警信号发布与传播办法, CMA order 16, 2007): blue
  ≥ 50 mm in 12 h, yellow ≥ 50 mm in 6 h, orange ≥ 50 mm in 3 h, red ≥ 100 mm in 3 h, here on the
  gauge's rolling observed sums.
- Flash flood: critical rainfall (临界雨量) per window and antecedent soil state, two levels
  准备转移 / 立即转移, as SL 675-2014 (山洪灾害监测预警系统设计导则) practice sets them.
- Landslide rainfall: intensity-duration thresholds I = α·D^−β, Caine 1980 (α 14.82, β 0.39) and
  Guzzetti et al. 2008 global (α 2.20, β 0.44).
- Slope movement: per-slope velocity thresholds with k of n sensors agreeing; Fukuzono 1985's
  inverse-velocity forecast (telemetry.slope) is passed through for display, it sets no level.

Missing data is never 0 mm (DESIGN §6 "Data quality"): a window less complete than
`alerts.min_completeness` does not count and is named in `Decision.incomplete`, so the caller can
say the warning was computed without it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.choices import LEVELS, WARNING_LEVELS, WARNING_OF, AlertKind, rank
from telemetry.rain import CAINE_1980, GUZZETTI_2008, WindowSum, id_threshold_exceeded
from telemetry.slope import FailureForecast

SOILS = ("dry", "normal", "wet")

# CMA rainstorm signals, highest first: (level, window h, mm). Red and orange share the 3 h window.
CMA_SIGNALS: tuple[tuple[str, float, float], ...] = (
    ("red", 3.0, 100.0), ("orange", 3.0, 50.0), ("yellow", 6.0, 50.0), ("blue", 12.0, 50.0))

Report = tuple[datetime, float]


@dataclass(frozen=True)
class Decision:
    """The level a rule reached, the numbers that decided it and what could not be judged."""

    level: str | None
    rule: dict[str, Any]
    evidence: tuple[dict[str, Any], ...] = ()
    incomplete: tuple[str, ...] = ()
    forecast: dict[str, Any] | None = None


def window_name(hours: float) -> str:
    """A window's name as telemetry.rain.WINDOWS spells it: "1h", "3h", "30m"; else "1.5h"."""
    if float(hours).is_integer():
        return f"{int(hours)}h"
    minutes = hours * 60
    if hours < 1 and float(minutes).is_integer():
        return f"{int(minutes)}m"
    return f"{hours:g}h"


def _finite(value: float, what: str, *, low: float = 0.0, strict: bool = False) -> float:
    """`value` as a float, or ValueError when it is not finite or below `low`."""
    number = float(value)
    if not math.isfinite(number) or number < low or (strict and number == low):
        raise ValueError(f"{what} must be a finite number {'>' if strict else '>='} {low:g}")
    return number


def _check_completeness(min_completeness: float) -> None:
    if not 0 <= _finite(min_completeness, "min_completeness") <= 1:
        raise ValueError("min_completeness must be between 0 and 1")


def _evidence(sensor: str, last: Report | None) -> tuple[dict[str, Any], ...]:
    if last is None:
        return ()
    ts, value = last
    return ({"sensor": sensor, "ts": ts.isoformat(), "value": float(value)},)


@dataclass(frozen=True)
class GaugeRain:
    """One rain gauge's state ending now: window sums by window length (hours), P_a, last report."""

    gauge: str
    windows: Mapping[float, WindowSum]
    antecedent_mm: float | None = None
    last: Report | None = None

    def __post_init__(self) -> None:
        for hours, window in self.windows.items():
            _finite(hours, "window length (h)", strict=True)
            _finite(window.mm, f"{self.gauge} rain in {window_name(hours)}")
            if not 0 <= _finite(window.complete, "completeness") <= 1:
                raise ValueError("completeness must be between 0 and 1")
        if self.antecedent_mm is not None:
            _finite(self.antecedent_mm, f"{self.gauge} antecedent rain P_a")

    def counted(self, hours: float, min_completeness: float) -> WindowSum | None:
        """The window of that length if it is complete enough to count, else None."""
        window = self.windows.get(hours)
        if window is None or window.complete < min_completeness:
            return None
        return window


def _cma_rule(hours: float | None, window: WindowSum | None,
              threshold: float | None) -> dict[str, Any]:
    return {"source": "CMA rainstorm signal", "window_h": hours,
            "observed_mm": window.mm if window else None, "threshold_mm": threshold,
            "complete": window.complete if window else None}


def rainstorm(rain: GaugeRain, *, min_completeness: float) -> Decision:
    """CMA rainstorm signal of one gauge: red, orange, yellow, blue or None."""
    _check_completeness(min_completeness)
    counted: dict[float, WindowSum] = {}
    incomplete = []
    for hours in sorted({h for _, h, _ in CMA_SIGNALS}):
        window = rain.counted(hours, min_completeness)
        if window is None:
            incomplete.append(window_name(hours))
        else:
            counted[hours] = window
    evidence = _evidence(rain.gauge, rain.last)
    for level, hours, threshold in CMA_SIGNALS:
        window = counted.get(hours)
        if window is not None and window.mm >= threshold:
            return Decision(level, _cma_rule(hours, window, threshold), evidence,
                            tuple(incomplete))
    # Below blue: report the nearest miss (the counted window closest to its threshold; ties go
    # to the lower signal), or, with nothing counted, the incomplete windows' numbers.
    shown = counted or dict(rain.windows)
    candidates = [(h, t) for _, h, t in reversed(CMA_SIGNALS) if h in shown]
    if not candidates:
        return Decision(None, _cma_rule(None, None, None), evidence, tuple(incomplete))
    hours, threshold = max(candidates, key=lambda c: shown[c[0]].mm / c[1])
    return Decision(None, _cma_rule(hours, shown[hours], threshold), evidence, tuple(incomplete))


@dataclass(frozen=True)
class VillageTable:
    """A village's critical-rainfall table (SL 675-2014 practice): mm per window and soil state."""

    windows_h: tuple[float, ...]
    prepare: Mapping[str, tuple[float, ...]]
    evacuate: Mapping[str, tuple[float, ...]]
    dry_below: float = 15.0
    wet_above: float = 50.0

    def __post_init__(self) -> None:
        windows = tuple(_finite(w, "window length (h)", strict=True) for w in self.windows_h)
        if not windows or any(b <= a for a, b in zip(windows, windows[1:], strict=False)):
            raise ValueError("windows_h must be one or more lengths, strictly increasing")
        object.__setattr__(self, "windows_h", windows)
        for level in ("prepare", "evacuate"):
            object.__setattr__(self, level, _rows(level, getattr(self, level), len(windows)))
        below = _finite(self.dry_below, "dry_below")
        if not below < _finite(self.wet_above, "wet_above"):
            raise ValueError("dry_below must be less than wet_above")

    def values(self, level: str, soil: str) -> tuple[float, ...]:
        """Critical rainfall (mm) of one level and soil state, one per window."""
        rows: Mapping[str, tuple[float, ...]] = getattr(self, level)
        return rows[soil]


def _rows(level: str, rows: Mapping[str, Sequence[float]], n: int) -> dict[str, tuple[float, ...]]:
    """One level's rows as tuples of floats, checked: the three soils, one positive mm a window."""
    if set(rows) != set(SOILS):
        raise ValueError(f"{level} needs exactly the soil states {', '.join(SOILS)}")
    out = {}
    for soil in SOILS:
        row = tuple(_finite(mm, f"{level}.{soil}", strict=True) for mm in rows[soil])
        if len(row) != n:
            raise ValueError(f"{level}.{soil} needs one value per window ({n})")
        out[soil] = row
    return out


def soil_state(antecedent_mm: float | None, table: VillageTable) -> str:
    """Soil state from P_a: wet at or above wet_above, dry below dry_below; wet when unknown."""
    # Unknown P_a must not make a village less safe: wet has the lowest critical rainfall
    # (the thresholds API requires dry >= normal >= wet cell by cell).
    if antecedent_mm is None or antecedent_mm >= table.wet_above:
        return "wet"
    if antecedent_mm < table.dry_below:
        return "dry"
    return "normal"


def _wettest(gauges: Sequence[GaugeRain], hours: float,
             min_completeness: float) -> tuple[GaugeRain, WindowSum] | None:
    """The gauge with the most rain in a window complete enough (ties: the first by code)."""
    counted = [(g, w) for g in sorted(gauges, key=lambda g: g.gauge)
               if (w := g.counted(hours, min_completeness)) is not None]
    return max(counted, key=lambda c: c[1].mm, default=None)


def _flood_rule(table: VillageTable, soil: str, antecedent: float | None,
                decided: tuple[int, GaugeRain, WindowSum] | None,
                threshold: float | None) -> dict[str, Any]:
    i, gauge, window = decided if decided else (None, None, None)
    return {"source": "SL 675-2014 critical rainfall",
            "window_h": table.windows_h[i] if i is not None else None,
            "observed_mm": window.mm if window else None, "threshold_mm": threshold,
            "soil": soil, "soil_known": antecedent is not None, "antecedent_mm": antecedent,
            "gauge": gauge.gauge if gauge else None,
            "complete": window.complete if window else None}


def flash_flood(table: VillageTable, gauges: Sequence[GaugeRain], *,
                min_completeness: float) -> Decision:
    """A village's flash-flood level: prepare, evacuate or None, from its critical rainfall."""
    _check_completeness(min_completeness)
    antecedent = max((g.antecedent_mm for g in gauges if g.antecedent_mm is not None),
                     default=None)
    soil = soil_state(antecedent, table)
    rain: dict[int, tuple[GaugeRain, WindowSum]] = {}
    # The rain an incomplete window did observe is a lower bound (missing time can only hide
    # more): it may raise a level, but it never says "below" (issue #19: an incomplete window
    # never counts as dry; the village gets a data alert for it as well).
    partial: dict[int, tuple[GaugeRain, WindowSum]] = {}
    incomplete = []
    for i, hours in enumerate(table.windows_h):
        wettest = _wettest(gauges, hours, min_completeness)
        if wettest is None:
            incomplete.append(window_name(hours))
        else:
            rain[i] = wettest
        seen = [(g, w) for g in sorted(gauges, key=lambda g: g.gauge)
                if (w := g.windows.get(hours)) is not None and w.complete > 0]
        if seen:
            partial[i] = max(seen, key=lambda c: c[1].mm)
    levels = LEVELS[AlertKind.FLASH_FLOOD]
    for level in reversed(levels):
        values = table.values(level, soil)
        hits = [i for i, (_g, w) in rain.items() if w.mm >= values[i]]
        lower_bounds = [i for i, (_g, w) in partial.items()
                        if w.mm >= values[i] and i not in hits]
        if hits or lower_bounds:
            deciding = {**rain, **{i: partial[i] for i in lower_bounds}}
            return _flood_decision(level, table, soil, antecedent, deciding,
                                   hits + lower_bounds, incomplete)
    return _flood_decision(None, table, soil, antecedent, rain, list(rain), incomplete)


def _flood_decision(level: str | None, table: VillageTable, soil: str, antecedent: float | None,
                    rain: dict[int, tuple[GaugeRain, WindowSum]], windows: list[int],
                    incomplete: list[str]) -> Decision:
    """The window that decided (the most exceeded; below prepare, the nearest miss)."""
    values = table.values(level or LEVELS[AlertKind.FLASH_FLOOD][0], soil)
    if not windows:
        return Decision(level, _flood_rule(table, soil, antecedent, None, None),
                        incomplete=tuple(incomplete))
    # Ratios, not mm: 46 of 45 mm in 1 h decides over 101 of 100 mm in 6 h; ties: shorter window.
    i = max(windows, key=lambda j: rain[j][1].mm / values[j])
    gauge, window = rain[i]
    return Decision(level, _flood_rule(table, soil, antecedent, (i, gauge, window), values[i]),
                    _evidence(gauge.gauge, gauge.last), tuple(incomplete))


@dataclass(frozen=True)
class GaugeEvent:
    """The current rain event at one gauge (telemetry.rain.current_event); start None: dry."""

    gauge: str
    start: datetime | None
    mm: float | None
    last: Report | None = None

    def __post_init__(self) -> None:
        if self.mm is not None:
            _finite(self.mm, f"{self.gauge} event rain")


@dataclass(frozen=True)
class Curve:
    """An intensity-duration threshold I = α·D^−β (I mm/h, D h)."""

    alpha: float
    beta: float

    def __post_init__(self) -> None:
        _finite(self.alpha, "alpha", strict=True)
        _finite(self.beta, "beta", low=-math.inf)

    def intensity(self, duration_h: float) -> float:
        """The threshold intensity (mm/h) for an event of duration_h hours."""
        return self.alpha * duration_h ** -self.beta


@dataclass(frozen=True)
class HazardRainTable:
    """A hazard zone's I-D curves per level and the shortest duration D may take."""

    # Guzzetti et al. 2008 global minimum for prepare, Caine 1980 for evacuate (DESIGN §5).
    prepare: Curve = Curve(GUZZETTI_2008.alpha, GUZZETTI_2008.beta)
    evacuate: Curve = Curve(CAINE_1980.alpha, CAINE_1980.beta)
    min_duration_h: float = 1.0

    def __post_init__(self) -> None:
        _finite(self.min_duration_h, "min_duration_h", strict=True)


def _event_rule(curve: Curve, event: GaugeEvent | None, duration_h: float | None,
                intensity: float | None) -> dict[str, Any]:
    return {"source": "rainfall intensity-duration (Guzzetti 2008 / Caine 1980)",
            "event_mm": event.mm if event else None, "duration_h": duration_h,
            "intensity_mm_h": intensity,
            "threshold_mm_h": curve.intensity(duration_h) if duration_h else None,
            "alpha": curve.alpha, "beta": curve.beta, "gauge": event.gauge if event else None}


def landslide_rain(table: HazardRainTable, events: Sequence[GaugeEvent], *,
                   now: datetime) -> Decision:
    """A hazard zone's rainfall level: prepare, evacuate or None, from its largest rain event."""
    unknown = tuple(sorted(e.gauge for e in events if e.mm is None))
    wet = [(e.mm, e.start, e) for e in sorted(events, key=lambda e: e.gauge)
           if e.mm is not None and e.start is not None]
    if not wet:
        return Decision(None, _event_rule(table.prepare, None, None, None), incomplete=unknown)
    # The largest total; on a tie the later start: with β < 1, I/threshold = mm·D^(β−1)/α
    # grows as D shrinks, so the shorter event is the more severe.
    mm, start, event = max(wet, key=lambda w: (w[0], w[1]))
    duration = max((now - start) / timedelta(hours=1), table.min_duration_h)
    intensity = mm / duration
    evidence = _evidence(event.gauge, event.last)
    for level in reversed(LEVELS[AlertKind.LANDSLIDE_RAIN]):
        curve: Curve = getattr(table, level)
        if id_threshold_exceeded(intensity, duration, curve.alpha, curve.beta):
            return Decision(level, _event_rule(curve, event, duration, intensity), evidence,
                            unknown)
    return Decision(None, _event_rule(table.prepare, event, duration, intensity), evidence,
                    unknown)


@dataclass(frozen=True)
class SlopeTable:
    """A hazard zone's velocity thresholds (mm/day) and how many sensors must agree (k of n)."""

    attention: float | None
    warning: float | None
    alarm: float | None
    agree: int = 1

    def __post_init__(self) -> None:
        for level in LEVELS[AlertKind.SLOPE_MOVEMENT]:
            if getattr(self, level) is not None:
                _finite(getattr(self, level), f"{level} velocity", strict=True)
        if isinstance(self.agree, bool) or not isinstance(self.agree, int) or self.agree < 1:
            raise ValueError("agree must be a whole number >= 1")

    def thresholds(self) -> list[tuple[str, float]]:
        """The configured (level, mm/day) pairs, lowest level first."""
        return [(level, getattr(self, level)) for level in LEVELS[AlertKind.SLOPE_MOVEMENT]
                if getattr(self, level) is not None]


@dataclass(frozen=True)
class SensorVelocity:
    """One displacement sensor's velocity (mm/day) over the window; None: too few readings."""

    sensor: str
    velocity_mm_d: float | None
    last: Report | None = None

    def __post_init__(self) -> None:
        if self.velocity_mm_d is not None:
            _finite(self.velocity_mm_d, f"{self.sensor} velocity", low=-math.inf)


def _check_series(series: Sequence[Report]) -> None:
    for (t0, _), (t1, _) in zip(series, series[1:], strict=False):
        if not t1 > t0:
            raise ValueError("series must be in strict time order")
    for _, value in series:
        _finite(value, "displacement", low=-math.inf)


def velocity_mm_d(series: Sequence[Report], *, now: datetime, window_h: float) -> float | None:
    """Mean velocity (mm/day) over the window_h hours ending at the newest reading up to now."""
    window = timedelta(hours=_finite(window_h, "window_h", strict=True))
    _check_series(series)
    times = [ts for ts, _ in series]
    # Readings after now are not in any window ending now.
    end = bisect.bisect_right(times, now)
    if end == 0 or times[end - 1] < now - window:
        return None  # silent for a whole window: it cannot say how fast the slope moves now
    newest_ts, newest = series[end - 1]
    start = newest_ts - window
    first = bisect.bisect_left(times, start, 0, end)
    if end - first < 2:
        return None
    # From the reading at or just before the window's start, so a regular series spans the whole
    # window; not from one more than a window older (a long gap would dilute the velocity).
    base = first
    if times[first] > start and first > 0 and times[first - 1] >= start - window:
        base = first - 1
    elapsed = newest_ts - times[base]
    if elapsed < window / 4:
        return None
    return (newest - series[base][1]) / (elapsed / timedelta(days=1))


def _forecast(forecast: FailureForecast | None) -> dict[str, Any] | None:
    if forecast is None:
        return None
    return {"failure_at": forecast.failure_time.isoformat(), "r2": round(forecast.r2, 4),
            "points": forecast.points}


def slope_movement(table: SlopeTable, velocities: Sequence[SensorVelocity], *,
                   forecast: FailureForecast | None = None) -> Decision:
    """A hazard zone's slope level: attention, warning, alarm or None, with k of n agreeing."""
    known = sorted(((s.velocity_mm_d, s.sensor, s.last) for s in velocities
                    if s.velocity_mm_d is not None), key=lambda v: (-v[0], v[1]))
    incomplete = tuple(sorted(s.sensor for s in velocities if s.velocity_mm_d is None))
    k = table.agree
    # The k-th fastest: a level holds when at least k sensors reach it.
    kth = known[k - 1][0] if len(known) >= k else None
    thresholds = table.thresholds()
    reached = [(level, t) for level, t in thresholds if kth is not None and kth >= t]
    level, threshold = (max(reached, key=lambda r: rank(AlertKind.SLOPE_MOVEMENT, r[0]))
                        if reached else (None, thresholds[0][1] if thresholds else None))
    agreeing = [v for v in known if threshold is not None and v[0] >= threshold]
    rule = {"source": "slope velocity, k of n", "velocity_mm_d": kth,
            "threshold_mm_d": threshold, "agreeing": len(agreeing), "of": len(velocities),
            "agree": k}
    evidence = tuple(e for _v, sensor, last in agreeing for e in _evidence(sensor, last))
    return Decision(level, rule, evidence, incomplete, _forecast(forecast))


def village_warning(levels: Iterable[tuple[str, str | None]]) -> str:
    """A village's warning level (none, prepare, evacuate): the highest its alerts' levels set."""
    best = 0
    for kind, level in levels:
        if kind not in LEVELS:
            raise ValueError(f"unknown alert kind {kind!r}")
        if level is None or level == "none":
            continue
        if level not in LEVELS[kind]:
            raise ValueError(f"{kind} has no level {level!r}")
        # Rainstorm and data alerts set no village level; slope `attention` sets none either.
        warning = WARNING_OF.get(kind, {}).get(level)
        if warning is not None:
            best = max(best, WARNING_LEVELS.index(warning))
    return WARNING_LEVELS[best]
