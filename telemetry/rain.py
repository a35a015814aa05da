"""Rain, pure: a gauge's rolling window sums, rain events, antecedent rain, intensity-duration
thresholds, and the hourly roll-up of any sensor's readings (whose covered time follows the same
rule as the windows). Slope movement is telemetry.slope.

Rain (DESIGN §5, §6): a rain gauge reports the rain fallen since its previous report (mm). A
report at t whose predecessor came at p stands for the time (max(p, t − interval), t]: a gap longer
than the expected interval is missing time, never 0 mm. A report flagged fail or missing is not
data: its rain is not added and its time is missing.

Window sums (`RainWindows`) follow the usual observed-sum convention (CMA rainstorm signals on
rolling sums): a window (now − W, now] adds the reports stamped inside it. Its completeness is
the time those counted reports stand for, over W (capped at 1). This is deliberately not the
share of (now − W, now] literally overlapped by report intervals: between two reports that share
would dip below 1 for a perfect gauge (a 10-minute window 3 minutes after a 5-minute report would
read 0.7) although the sum holds a full 10 minutes of rain, so sum and completeness would
describe different data.

Data structure: per gauge, 1-minute bins over the kept horizon (24 h + a margin) in a ring, each
with two Fenwick trees (rain and covered time): inserting a reading, late or not, is O(log n)
and a window is a range sum, O(log n), with the two partial minutes at its ends summed exactly
from the sorted reading times, so windows need not align with minutes. Rain is kept in integer
micrometres and time in integer microseconds, so sums are exact and do not depend on the order
readings arrived in (floating-point addition would). A late reading also shortens the interval
of the report after it; only that one neighbour changes. An hourly aggregate is not needed: the
Fenwick trees give every window up to the horizon directly (hourly totals for history are the
database's job).

The trees and bins are arrays of 64-bit integers and each report a plain tuple, so the cyclic
garbage collector neither tracks nor walks them: measured, a prefecture's 1,106 gauges held as
lists and report objects nearly doubled each full collection of the process that owns MQTT (it
walked ~6.5 million list items). A gauge given a value too large for them (kilometres of rain)
goes back to lists of Python integers.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Flags whose readings are data for sums; fail and missing are not (DESIGN §6: never 0 mm).
USABLE_FLAGS = frozenset({"good", "suspect"})

# The rolling windows of DESIGN §5 (`GET /api/v1/sensors/{code}/sums`), in seconds.
WINDOWS: dict[str, int] = {"10m": 600, "1h": 3600, "3h": 10800, "6h": 21600, "12h": 43200,
                           "24h": 86400}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000
_MINUTE = 60 * _US
# Rain is summed in micrometres: a thousand times finer than any gauge's 0.1-0.5 mm resolution.
_UNITS_PER_MM = 1000
# Spare minutes in the ring beyond the horizon: readings up to 5 min ahead (ingest.max_future_s)
# move the ring forward without losing the start of a 24 h window ending at the hub's now.
_SPARE_MINUTES = 16
# Rain in one report (micrometres) beyond which a gauge keeps its sums as Python integers: under
# it no sum of a day's reports comes near 2**63.
_NARROW = 1 << 32

RainReport = tuple[datetime, float, str]
# A kept report: (rain in micrometres, usable, the time it stands for in microseconds).
_Report = tuple[int, bool, int]


def _us(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be aware")
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class WindowSum:
    """Rain over one window and how complete the window's data is (0-1)."""

    mm: float
    complete: float


class _Fenwick:
    """A binary indexed tree of integers over positions 0..n-1 (Fenwick 1994)."""

    def __init__(self, n: int):
        self.n = n
        self.tree: array | list = array("q", bytes(8 * (n + 1)))

    def widen(self) -> None:
        """Hold any integer from now on."""
        self.tree = list(self.tree)

    def add(self, position: int, delta: int) -> None:
        i = position + 1
        while i <= self.n:
            self.tree[i] += delta
            i += i & -i

    def prefix(self, end: int) -> int:
        """Sum of positions 0..end-1."""
        total, i = 0, end
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


class RainWindows:
    """A rain gauge's reports kept for rolling window sums; inserts and queries in O(log n)."""

    def __init__(self, interval_s: float, *, horizon_s: int = WINDOWS["24h"]):
        if not interval_s > 0 or horizon_s <= 0:
            raise ValueError("interval_s and horizon_s must be positive")
        self._interval = round(interval_s * _US)
        self._slots = math.ceil(horizon_s / 60) + _SPARE_MINUTES
        self._head: int | None = None  # the newest minute seen (a report's or a query's)
        self._wide = False  # sums kept as Python integers (see _units)
        self._reset()

    def _reset(self) -> None:
        self._rain = _Fenwick(self._slots)
        self._covered = _Fenwick(self._slots)
        # Per-minute rain and covered time (flat: a gauge costs ~50 KB, not ~130 KB).
        self._bin_rain: array | list = array("q", bytes(8 * self._slots))
        self._bin_covered: array | list = array("q", bytes(8 * self._slots))
        if self._wide:
            self._widen()
        self._times: list[int] = []
        self._reports: dict[int, _Report] = {}

    def _units(self, mm: float) -> int:
        """A report's rain in micrometres (the gauge's sums widened first when it is huge)."""
        units = round(mm * _UNITS_PER_MM)
        if not self._wide and not -_NARROW < units < _NARROW:
            self._wide = True
            self._widen()
        return units

    def _widen(self) -> None:
        self._rain.widen()
        self._covered.widen()
        self._bin_rain = list(self._bin_rain)
        self._bin_covered = list(self._bin_covered)

    def _floor(self) -> int:
        """The first microsecond still kept in the bins."""
        assert self._head is not None
        return (self._head - self._slots + 1) * _MINUTE

    def _advance(self, minute: int) -> None:
        """Move the ring forward to `minute`, emptying the bins that fall off its end."""
        if self._head is None or minute - self._head >= self._slots:
            # Every bin falls off: start afresh, but keep what the cut below keeps (a report
            # just before the new floor is still the predecessor of a late one after it); all
            # of them are older than the floor, so no bin holds them.
            times, reports = self._times, self._reports
            self._head = minute
            self._reset()
            self._times = times[bisect.bisect_left(times, self._floor() - self._interval):]
            self._reports = {t: reports[t] for t in self._times}
            return
        if minute <= self._head:
            return
        for old in range(self._head - self._slots + 1, minute - self._slots + 1):
            slot = old % self._slots
            self._bin_add(slot, -self._bin_rain[slot], -self._bin_covered[slot])
        self._head = minute
        # Reports before the kept bins matter only as the predecessor of a kept one.
        cut = bisect.bisect_left(self._times, self._floor() - self._interval)
        for t in self._times[:cut]:
            del self._reports[t]
        del self._times[:cut]

    def _bin_add(self, slot: int, units: int, covered: int) -> None:
        if units:
            self._rain.add(slot, units)
            self._bin_rain[slot] += units
        if covered:
            self._covered.add(slot, covered)
            self._bin_covered[slot] += covered

    def _count(self, t: int, report: _Report, sign: int) -> None:
        units, usable, covers = report
        if usable and t >= self._floor():
            self._bin_add((t // _MINUTE) % self._slots, sign * units, sign * covers)

    def add(self, ts: datetime, mm: float, flag: str = "good") -> None:
        """Insert a report (late or not); a report at a time already held replaces it."""
        if not math.isfinite(mm):
            raise ValueError("mm must be finite")
        t = _us(ts)
        self._advance(t // _MINUTE)
        if t < self._floor() - self._interval:
            return  # too old to touch any kept window
        units, usable = self._units(mm), flag in USABLE_FLAGS
        held = self._reports.get(t)
        if held is not None:
            self._count(t, held, -1)
            self._reports[t] = report = (units, usable, held[2])
            self._count(t, report, +1)
            return
        i = bisect.bisect_left(self._times, t)
        start = t - self._interval
        if i > 0:
            start = max(start, self._times[i - 1])
        report = (units, usable, t - start)
        self._times.insert(i, t)
        self._reports[t] = report
        self._count(t, report, +1)
        if i + 1 < len(self._times):
            # The next report now stands for the time since this one only.
            after = self._times[i + 1]
            neighbour = self._reports[after]
            self._count(after, neighbour, -1)
            self._reports[after] = neighbour = (
                neighbour[0], neighbour[1], after - max(t, after - self._interval))
            self._count(after, neighbour, +1)

    def extend(self, reports: Sequence[RainReport]) -> None:
        """add() of each report in turn, in the order given. Reports newer than every report
        held and than each other (the usual case: a gauge's next reports) go in together, with
        the ring moved once and each minute added to the trees once; the first one that is not
        (a late or repeated report) and those after it go through add(). Measured, add() per
        report was most of what the process that owns MQTT spent keeping its gauges current."""
        fresh: list[tuple[int, int, bool, int]] = []  # (t, units, usable, covers_us)
        head = self._head
        last = self._times[-1] if self._times else None
        taken = 0
        for ts, mm, flag in reports:
            if not math.isfinite(mm):
                raise ValueError("mm must be finite")
            t = _us(ts)
            if last is not None and t <= last:
                break
            taken += 1
            minute = t // _MINUTE
            if head is None or minute > head:
                head = minute
            if t < (head - self._slots + 1) * _MINUTE - self._interval:
                continue  # too old to touch any kept window, as add() would find it
            # Its predecessor is the report before it, or one the ring has dropped since,
            # older than t − interval (so the start is t − interval either way).
            start = t - self._interval if last is None else max(t - self._interval, last)
            fresh.append((t, self._units(mm), flag in USABLE_FLAGS, t - start))
            last = t
        if fresh:
            self._append(fresh, head)
        for ts, mm, flag in reports[taken:]:
            self.add(ts, mm, flag)

    def _append(self, fresh: list[tuple[int, int, bool, int]], head: int) -> None:
        """Put reports newer than all held (in time order, covered time known) into the ring,
        moved forward to `head` first (what add() of each in turn leaves)."""
        self._advance(head)
        floor = self._floor()
        keep_from = floor - self._interval
        units_by_slot: dict[int, int] = {}
        covered_by_slot: dict[int, int] = {}
        for t, units, usable, covers in fresh:
            if t < keep_from:
                continue  # add() would have kept it, and the ring's move dropped it again
            self._times.append(t)
            self._reports[t] = (units, usable, covers)
            if usable and t >= floor:
                slot = (t // _MINUTE) % self._slots
                units_by_slot[slot] = units_by_slot.get(slot, 0) + units
                covered_by_slot[slot] = covered_by_slot.get(slot, 0) + covers
        for slot, units in units_by_slot.items():
            self._bin_add(slot, units, covered_by_slot[slot])

    def load(self, reports: Sequence[RainReport]) -> None:
        """Take reports in strict time order into a new gauge (nothing added or asked of it
        yet): the same state as add() of each in turn, with each report's minute added to the
        trees once (a memory loaded from the database: measured, adding a day of reports one
        by one made a cold start of 1,000 busy gauges cost seconds)."""
        if self._head is not None:
            raise ValueError("load() fills a new gauge; use add()")
        if not reports:
            return
        self._head = _us(reports[-1][0]) // _MINUTE
        floor = self._floor()
        keep_from = floor - self._interval
        touched: set[int] = set()
        previous = None
        for ts, mm, flag in reports:
            if not math.isfinite(mm):
                raise ValueError("mm must be finite")
            t = _us(ts)
            if previous is not None and t <= previous:
                raise ValueError("reports must be in strict time order")
            # In time order each report is the newest when added: its predecessor is the one
            # before it, and nothing after it changes.
            start = t - self._interval if previous is None else max(t - self._interval, previous)
            previous = t
            if t < keep_from:
                continue
            units, usable = self._units(mm), flag in USABLE_FLAGS
            self._times.append(t)
            self._reports[t] = (units, usable, t - start)
            if usable and t >= floor:
                slot = (t // _MINUTE) % self._slots
                rain, covered = self._bin_rain, self._bin_covered  # lists once widened
                rain[slot] += units
                covered[slot] += t - start
                touched.add(slot)
        for slot in touched:
            if rain[slot]:
                self._rain.add(slot, rain[slot])
            if covered[slot]:
                self._covered.add(slot, covered[slot])

    def _exact(self, lo: int, hi: int) -> tuple[int, int]:
        """Rain and covered time of the usable reports with lo < t <= hi, one by one."""
        units = covered = 0
        start, end = bisect.bisect_right(self._times, lo), bisect.bisect_right(self._times, hi)
        reports = self._reports
        for t in self._times[start:end]:
            report_units, usable, covers = reports[t]
            if usable:
                units += report_units
                covered += covers
        return units, covered

    def _binned(self, first: int, last: int) -> tuple[int, int]:
        """Rain and covered time of the whole minutes first..last (absolute minutes)."""
        if first > last:
            return 0, 0
        a, b = first % self._slots, last % self._slots
        spans = [(a, b + 1)] if a <= b else [(a, self._slots), (0, b + 1)]
        units = sum(self._rain.prefix(e) - self._rain.prefix(s) for s, e in spans)
        covered = sum(self._covered.prefix(e) - self._covered.prefix(s) for s, e in spans)
        return units, covered

    def window(self, now: datetime, seconds: int) -> WindowSum:
        """Rain in (now − seconds, now] and the completeness of that window."""
        end = _us(now)
        begin = end - seconds * _US
        self._advance(end // _MINUTE)
        if begin < self._floor():
            raise ValueError("the window reaches before the kept horizon")
        first, last = begin // _MINUTE, end // _MINUTE
        if first == last:
            units, covered = self._exact(begin, end)
        else:
            # Partial first minute, whole minutes from the trees, partial last minute.
            u1, c1 = self._exact(begin, (first + 1) * _MINUTE - 1)
            u2, c2 = self._binned(first + 1, last - 1)
            u3, c3 = self._exact(last * _MINUTE - 1, end)
            units, covered = u1 + u2 + u3, c1 + c2 + c3
        return WindowSum(units / _UNITS_PER_MM, min(1.0, covered / (seconds * _US)))

    def windows(self, now: datetime,
                spans: dict[str, int] | None = None) -> dict[str, WindowSum]:
        """Every rolling window of DESIGN §5 ending at now (10 min to 24 h)."""
        return {name: self.window(now, seconds)
                for name, seconds in (spans or WINDOWS).items()}


def rain_windows(readings: Iterable[RainReport], *, now: datetime,
                 interval_s: float) -> dict[str, WindowSum]:
    """The rolling windows ending at now over a set of (ts, mm, flag) reports, in any order."""
    gauge = RainWindows(interval_s)
    for ts, mm, flag in readings:
        # A report after now changes no window ending at now (it only shortens its successor).
        if ts <= now:
            gauge.add(ts, mm, flag)
    return gauge.windows(now)


@dataclass(frozen=True)
class RainEvent:
    """A rain event: from the start of its first wet report to its last one."""

    start: datetime
    end: datetime
    mm: float
    # Observed dry time since its last rain (missing time is not dry).
    dry_h: float

    @property
    def duration_h(self) -> float:
        """D of the intensity-duration threshold, hours."""
        return (self.end - self.start).total_seconds() / 3600

    @property
    def intensity_mm_h(self) -> float:
        """Mean intensity I of the event, mm/h."""
        return self.mm / self.duration_h if self.duration_h > 0 else math.inf


def current_event(readings: Iterable[RainReport], *, now: datetime, interval_s: float,
                  dry_gap_h: float = 6.0) -> RainEvent | None:
    """The rain event still going on at now (DESIGN §6: events split by a dry gap), or None.

    Only observed dry time (usable reports of 0 mm) adds to a dry gap: a silent or failed gauge
    might have seen rain, so missing time neither ends an event nor counts as dry."""
    interval, gap = timedelta(seconds=interval_s), timedelta(hours=dry_gap_h)
    previous: datetime | None = None
    start = end = None
    wet: list[float] = []
    dry = timedelta(0)
    for ts, mm, flag in sorted(r for r in readings if r[0] <= now):
        covers_from = ts - interval if previous is None else max(previous, ts - interval)
        previous = ts
        if flag not in USABLE_FLAGS:
            continue
        if mm <= 0:
            dry += ts - covers_from
            continue
        if start is None or dry >= gap:
            start, wet = covers_from, []
        wet.append(mm)
        end, dry = ts, timedelta(0)
    if start is None or end is None or dry >= gap:
        return None
    return RainEvent(start, end, math.fsum(wet), dry.total_seconds() / 3600)


def event_total(readings: Iterable[RainReport], *, now: datetime, interval_s: float,
                dry_gap_h: float = 6.0) -> float:
    """Rain (mm) since the start of the current event; 0 when no event is going on."""
    event = current_event(readings, now=now, interval_s=interval_s, dry_gap_h=dry_gap_h)
    return event.mm if event else 0.0


def antecedent_index(daily_totals: Sequence[float], k: float = 0.85,
                     max_mm: float | None = None) -> float:
    """Antecedent-rain index P_a = Σ K^i·P_i, i = 1 for yesterday (DESIGN §6, SL 675 practice).

    `daily_totals` are whole days, most recent (yesterday) last; DESIGN suggests 10-15 of them.
    `max_mm` caps P_a at the basin's largest soil-water deficit (W_m), when one is known."""
    if not 0 < k < 1:
        raise ValueError("k must be between 0 and 1")
    if any(not math.isfinite(p) or p < 0 for p in daily_totals):
        raise ValueError("daily totals must be finite and not negative")
    index = math.fsum(k ** i * p for i, p in enumerate(reversed(daily_totals), start=1))
    return min(index, max_mm) if max_mm is not None else index


@dataclass(frozen=True)
class IdThreshold:
    """A rainfall intensity-duration threshold I = α·D^−β (I mm/h, D h) and its valid range."""

    name: str
    alpha: float
    beta: float
    min_h: float
    max_h: float

    def intensity(self, duration_h: float) -> float:
        """The threshold intensity (mm/h) for an event lasting duration_h hours."""
        return self.alpha * duration_h ** -self.beta


# Caine 1980, world-wide shallow landslides and debris flows, 10 min to 10 days.
CAINE_1980 = IdThreshold("Caine 1980", 14.82, 0.39, 10 / 60, 240.0)
# Guzzetti et al. 2008, global minimum threshold, 0.1 to 1000 h.
GUZZETTI_2008 = IdThreshold("Guzzetti et al. 2008", 2.20, 0.44, 0.1, 1000.0)


def id_threshold_exceeded(intensity_mm_h: float, duration_h: float, alpha: float,
                          beta: float) -> bool:
    """Whether mean intensity reaches the I = α·D^−β curve (reaching counts, as CMA's ≥)."""
    if not duration_h > 0:
        raise ValueError("duration_h must be positive")
    return intensity_mm_h >= alpha * duration_h ** -beta


@dataclass(frozen=True)
class HourTotal:
    """One sensor's readings over one hour (h, h + 1 h]: the stored hourly roll-up.

    `total`, `minimum`, `maximum` and `last` are over usable readings only; for a rain gauge
    `total` is the hour's rain and `covered_s` the time its usable reports stand for (the same
    rule as the rolling windows, so an hour's completeness is covered_s / 3600)."""

    count: int
    usable: int
    total: float
    minimum: float | None
    maximum: float | None
    last: float | None
    covered_s: float


def hour_totals(readings: Sequence[RainReport], hours: Iterable[datetime], *,
                interval_s: float) -> dict[datetime, HourTotal | None]:
    """Roll up (ts, value, flag) readings into the given hours (each the start of (h, h + 1 h]);
    None for an hour with no reading. `readings` must include the one before each hour's first
    (the predecessor sets how much time that report stands for)."""
    ordered = sorted(readings)
    interval = timedelta(seconds=interval_s)
    covers: list[float] = []
    for i, (ts, _value, _flag) in enumerate(ordered):
        start = ts - interval if i == 0 else max(ordered[i - 1][0], ts - interval)
        covers.append((ts - start).total_seconds())
    times = [ts for ts, _v, _f in ordered]
    out: dict[datetime, HourTotal | None] = {}
    for hour in hours:
        lo = bisect.bisect_right(times, hour)
        hi = bisect.bisect_right(times, hour + timedelta(hours=1))
        if lo == hi:
            out[hour] = None
            continue
        usable = [(ordered[i][1], covers[i]) for i in range(lo, hi)
                  if ordered[i][2] in USABLE_FLAGS]
        values = [v for v, _c in usable]
        out[hour] = HourTotal(hi - lo, len(usable), math.fsum(values),
                              min(values, default=None), max(values, default=None),
                              values[-1] if values else None,
                              math.fsum(c for _v, c in usable))
    return out
