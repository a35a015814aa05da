"""Slope movement, pure: displacement velocity, smoothed inverse velocity and Fukuzono's
failure forecast from a cumulative displacement series (DESIGN §6)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

Series = Sequence[tuple[datetime, float]]


def _distinct(series: Series) -> list[tuple[datetime, float]]:
    """Sorted by time, one point per time (the last given wins)."""
    return sorted(dict(series).items())


def _velocities(points: list[tuple[datetime, float]], span: int) -> list[tuple[datetime, float]]:
    out = []
    for (t0, x0), (t1, x1) in zip(points, points[span:], strict=False):
        days = (t1 - t0).total_seconds() / 86400
        # The mean velocity over [t0, t1] belongs to its midpoint, not its end.
        out.append((t0 + (t1 - t0) / 2, (x1 - x0) / days))
    return out


def displacement_velocity(series: Series) -> list[tuple[datetime, float]]:
    """Velocity (mm/day) between consecutive points of a cumulative displacement series (mm)."""
    return _velocities(_distinct(series), 1)


def smoothed_inverse_velocity(series: Series, smooth: int = 3) -> list[tuple[datetime, float]]:
    """Inverse velocity (day/mm) of the moving-average velocity over `smooth` intervals.

    The mean velocity over k intervals is the moving average of the k velocities weighted by
    their durations; points not moving forward (v ≤ 0) have no inverse and are left out."""
    if smooth < 1:
        raise ValueError("smooth must be at least 1")
    return [(t, 1 / v) for t, v in _velocities(_distinct(series), smooth) if v > 0]


@dataclass(frozen=True)
class FailureForecast:
    """Fukuzono's inverse-velocity forecast: where the fitted 1/v line reaches zero."""

    failure_time: datetime
    # Trend of 1/v, (day/mm) per day; negative: accelerating.
    slope: float
    r2: float
    points: int


def inverse_velocity_forecast(series: Series, *, window: int = 12,
                              smooth: int = 3) -> FailureForecast | None:
    """Forecast failure from the last `window` smoothed 1/v points (Fukuzono 1985); None if
    1/v is not decreasing or there are fewer than 3 points."""
    recent = smoothed_inverse_velocity(series, smooth)[-window:]
    if len(recent) < 3:
        return None
    origin = recent[0][0]
    days = [(t - origin).total_seconds() / 86400 for t, _ in recent]
    inverse = [y for _, y in recent]
    slope, intercept = statistics.linear_regression(days, inverse)
    # Not decreasing, or flatter than rounding (a steady creep): no forecast.
    if not slope < -1e-9 * statistics.fmean(inverse):
        return None
    r = statistics.correlation(days, inverse)
    try:
        failure = origin + timedelta(days=-intercept / slope)
    except OverflowError:
        return None  # a trend so flat that the line meets zero beyond the calendar
    return FailureForecast(failure, slope, r * r, len(recent))
