"""Quality control of readings, QARTOD style (DESIGN §6 "Data quality"), pure.

Each reading gets a flag from the tests of the U.S. IOOS QARTOD manuals, named as they name them:
gross range, spike, rate of change and flat line here, per reading; the timing/gap test is
`is_silent`, per sensor. The flag scheme is QARTOD's: pass (here `good`, code 1), suspect (3),
fail (4), missing (9); the worst flag of the tests wins, tests that cannot run yet (no history:
QARTOD's "not evaluated", 2) pass. The instrument's hard range is not tested here: DESIGN §5
refuses a reading outside it at ingest (`out_of_range`); `fail_min`/`fail_max` exist for a
stricter, per-site limit that should still keep the reading.

The tests that look at history use only consecutive data: readings before this one in time
(a late reading is judged against its own predecessors), back to the first gap that would have
made the sensor missing, so a sensor coming back after an outage is not a spike.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any


class Flag(StrEnum):
    """A reading's quality flag (QARTOD flag scheme; the value is what is stored)."""

    GOOD = "good"
    SUSPECT = "suspect"
    FAIL = "fail"
    MISSING = "missing"

    @property
    def qartod_code(self) -> int:
        """The QARTOD flag code: 1 pass, 3 suspect, 4 fail, 9 missing."""
        return {"good": 1, "suspect": 3, "fail": 4, "missing": 9}[self.value]


# Worst wins: missing > fail > suspect > good (the order of the QARTOD codes).
SEVERITY = {Flag.GOOD: 0, Flag.SUSPECT: 1, Flag.FAIL: 2, Flag.MISSING: 3}

RAIN_GAUGE = "rain_gauge"


@dataclass(frozen=True)
class QcParams:
    """One sensor's QARTOD-style test parameters; a test whose parameters are None is off."""

    # Timing/gap test: the reporting interval, and after how many intervals silence is missing.
    expected_interval_s: float
    silence_factor: float = 3.0
    # Gross range test: outside the suspect band is suspect, outside the fail band is fail.
    suspect_min: float | None = None
    suspect_max: float | None = None
    fail_min: float | None = None
    fail_max: float | None = None
    # Spike test: |value - reference| above the threshold is suspect; above the fail one, fail.
    spike_threshold: float | None = None
    spike_fail_threshold: float | None = None
    # How many preceding values give the spike reference (their median).
    spike_window: int = 3
    # Rate of change test: |Δvalue| / Δt above this (units per second) is suspect.
    rate_of_change_max: float | None = None
    # Flat line test: this many consecutive values within the tolerance are suspect (fail count:
    # fail). A rain gauge reporting 0 is exempt: a dry gauge legitimately reports 0.
    stuck_count: int | None = None
    stuck_fail_count: int | None = None
    stuck_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not self.expected_interval_s > 0 or not self.silence_factor > 0:
            raise ValueError("expected_interval_s and silence_factor must be positive")
        for name in ("stuck_count", "stuck_fail_count"):
            count = getattr(self, name)
            if count is not None and count < 2:
                raise ValueError(f"{name} must be at least 2")
        if self.spike_window < 1:
            raise ValueError("spike_window must be at least 1")

    @classmethod
    def from_mapping(cls, qc: Mapping[str, Any], expected_interval_s: float) -> QcParams:
        """Build from a sensor's stored `qc` settings (ValueError on an unknown key)."""
        known = {f.name for f in fields(cls)}
        unknown = set(qc) - known
        if unknown:
            raise ValueError(f"unknown QC parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{"expected_interval_s": expected_interval_s, **qc})

    @cached_property
    def history_needed(self) -> int:
        """How many preceding values the tests look at (spike window, rate of change, flat
        line): a reading is judged the same with only that many consecutive predecessors."""
        return max(self.spike_window, 1, (self.stuck_count or 0) - 1,
                   (self.stuck_fail_count or 0) - 1)

    @cached_property
    def silence_s(self) -> float:
        """Seconds without a report after which the sensor is missing."""
        return self.silence_factor * self.expected_interval_s

    @cached_property
    def silence(self) -> timedelta:
        """silence_s as a timedelta (compared with time differences as they are)."""
        return timedelta(seconds=self.silence_s)

    @cached_property
    def only_flat_line_looks_back(self) -> bool:
        """Whether the flat line test is the only one that may read the history (a rain
        gauge's dry 0 then needs none: it is exempt from that test)."""
        return (self.spike_threshold is None and self.spike_fail_threshold is None
                and self.rate_of_change_max is None)

    @cached_property
    def looks_back(self) -> bool:
        """Whether any test that reads the history is on (spike, rate of change, flat line)."""
        return not self.only_flat_line_looks_back or self.stuck_count is not None \
            or self.stuck_fail_count is not None


@dataclass(frozen=True)
class QcResult:
    """A reading's flag and the names of the tests that raised it."""

    flag: Flag
    reasons: tuple[str, ...] = ()


def _worst(flags: Sequence[Flag]) -> Flag:
    return max(flags, key=SEVERITY.__getitem__, default=Flag.GOOD)


def _gross_range(value: float, p: QcParams) -> Flag:
    """QARTOD gross range test (sensor limits → fail, user limits → suspect)."""
    if (p.fail_min is not None and value < p.fail_min) or \
            (p.fail_max is not None and value > p.fail_max):
        return Flag.FAIL
    if (p.suspect_min is not None and value < p.suspect_min) or \
            (p.suspect_max is not None and value > p.suspect_max):
        return Flag.SUSPECT
    return Flag.GOOD


def _spike(value: float, history: Sequence[tuple[datetime, float]], p: QcParams) -> Flag:
    """QARTOD spike test, real-time form.

    QARTOD's reference is the mean of the two neighbours, which needs the next value; in real
    time only the past is known, so the reference is the median of the last `spike_window`
    values (robust to an earlier spike)."""
    if not history or (p.spike_threshold is None and p.spike_fail_threshold is None):
        return Flag.GOOD
    reference = statistics.median(v for _, v in history[-p.spike_window:])
    spike = abs(value - reference)
    if p.spike_fail_threshold is not None and spike > p.spike_fail_threshold:
        return Flag.FAIL
    if p.spike_threshold is not None and spike > p.spike_threshold:
        return Flag.SUSPECT
    return Flag.GOOD


def _rate_of_change(value: float, ts: datetime, history: Sequence[tuple[datetime, float]],
                    p: QcParams) -> Flag:
    """QARTOD rate of change test, with a fixed limit in units per second."""
    if not history or p.rate_of_change_max is None:
        return Flag.GOOD
    last_ts, last_value = history[-1]
    seconds = (ts - last_ts).total_seconds()
    if abs(value - last_value) / seconds > p.rate_of_change_max:
        return Flag.SUSPECT
    return Flag.GOOD


def _flat_line(value: float, history: Sequence[tuple[datetime, float]], p: QcParams,
               kind: str) -> Flag:
    """QARTOD flat line test: the last n values (this one included) all within the tolerance."""
    if kind == RAIN_GAUGE and value == 0:
        return Flag.GOOD

    def flat(count: int | None) -> bool:
        if count is None or len(history) < count - 1:
            return False
        return all(abs(v - value) <= p.stuck_tolerance for _, v in history[-(count - 1):])

    if flat(p.stuck_fail_count):
        return Flag.FAIL
    if flat(p.stuck_count):
        return Flag.SUSPECT
    return Flag.GOOD


def _consecutive(ts: datetime, previous: Sequence[tuple[datetime, float]],
                 p: QcParams, ordered: bool) -> Sequence[tuple[datetime, float]]:
    """The readings before ts, oldest first, back to the first gap longer than silence; at most
    the `history_needed` last of them (the tests look no further)."""
    if ordered:
        earlier = previous
    else:
        earlier = [r for r in previous if r[0] < ts]
        earlier.sort()
    start, silence = len(earlier), p.silence
    stop = max(0, start - p.history_needed)
    if start == stop or ts - earlier[stop][0] <= silence:
        # All of them within one silence of ts: no gap between two of them can be longer.
        return earlier[stop:]
    after = ts
    while start > stop and after - earlier[start - 1][0] <= silence:
        start -= 1
        after = earlier[start][0]
    return earlier[start:]


# The result of most readings (one object, not one per reading).
_GOOD = QcResult(Flag.GOOD, ())
_TESTS = ("gross_range", "spike", "rate_of_change", "flat_line")


def check(value: float, ts: datetime, previous: Sequence[tuple[datetime, float]],
          params: QcParams, kind: str, *, ordered: bool = False) -> QcResult:
    """Flag one reading from its value, its time and the sensor's recent (ts, value) history;
    `ordered` says the history is in time order and all of it before ts (the usual case)."""
    if not math.isfinite(value):
        return QcResult(Flag.FAIL, ("gross_range",))
    gross = _gross_range(value, params)
    # The history is read only for a test that is on and that this reading does not skip (a
    # rain gauge's dry 0 skips the flat line test): the writer flags every reading.
    if not params.looks_back or (value == 0 and kind == RAIN_GAUGE
                                 and params.only_flat_line_looks_back):
        if gross is Flag.GOOD:
            return _GOOD
        return QcResult(gross, ("gross_range",))
    history = _consecutive(ts, previous, params, ordered)
    flags = (gross, _spike(value, history, params), _rate_of_change(value, ts, history, params),
             _flat_line(value, history, params, kind))
    if flags == (Flag.GOOD,) * 4:
        return _GOOD
    return QcResult(_worst(flags),
                    tuple(name for name, f in zip(_TESTS, flags, strict=True)
                          if f is not Flag.GOOD))


def is_silent(last_ts: datetime | None, now: datetime, params: QcParams) -> bool:
    """QARTOD timing/gap test: no report for more than silence_factor × the interval."""
    if last_ts is None:
        return True
    return (now - last_ts).total_seconds() > params.silence_s
