"""telemetry.slope: displacement velocity and Fukuzono's inverse-velocity forecast (DESIGN §6)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.slope import (
    displacement_velocity,
    inverse_velocity_forecast,
    smoothed_inverse_velocity,
)

T0 = datetime(2026, 7, 27, 0, 0, tzinfo=UTC)


def test_displacement_velocity_at_interval_midpoints():
    series = [(T0 + timedelta(hours=24), 3.0), (T0, 0.0), (T0 + timedelta(hours=12), 1.0),
              (T0 + timedelta(hours=12), 1.0)]
    assert displacement_velocity(series) == [
        (T0 + timedelta(hours=6), 2.0), (T0 + timedelta(hours=18), 4.0)]
    assert displacement_velocity(series[:1]) == []


def accelerating_slope(noise: float = 0.0, *, until_day: float = 8.0) -> list:
    """1/v = A·(t_f − t) with A = 0.5 mm⁻¹ and t_f = 10 days: x = ln(t_f / (t_f − t)) / A."""
    rnd = random.Random(3)
    return [(T0 + timedelta(hours=h), 2 * math.log(10 / (10 - h / 24)) + rnd.uniform(-noise, noise))
            for h in range(round(until_day * 24) + 1)]


@pytest.mark.parametrize(("noise", "smooth", "window"), [(0.0, 3, 24), (0.005, 6, 36)])
def test_inverse_velocity_recovers_the_failure_time(noise, smooth, window):
    forecast = inverse_velocity_forecast(accelerating_slope(noise), window=window, smooth=smooth)
    assert forecast is not None
    failure, last = T0 + timedelta(days=10), T0 + timedelta(days=8)
    # Within 5 % of the time still left at the last observation (2 days → 2.4 h).
    assert abs(forecast.failure_time - failure) <= 0.05 * (failure - last)
    assert forecast.slope == pytest.approx(-0.5, rel=0.05)
    assert forecast.r2 > 0.95 and forecast.points == window


def test_smoothed_inverse_velocity_falls_towards_zero():
    inverse = smoothed_inverse_velocity(accelerating_slope(), smooth=3)
    assert inverse[0][1] == pytest.approx(5 - 0.5 * 1.5 / 24, rel=1e-3)  # 1/v at 1.5 h
    assert all(b[1] < a[1] for a, b in zip(inverse, inverse[1:], strict=False))


@pytest.mark.parametrize("series", [
    [(T0 + timedelta(hours=h), 0.5 * h) for h in range(48)],  # steady creep
    [(T0 + timedelta(hours=h), math.sqrt(h)) for h in range(48)],  # slowing down
    [(T0 + timedelta(hours=h), 1.0) for h in range(48)],  # not moving
    accelerating_slope()[:4],  # too few points
])
def test_no_forecast_when_inverse_velocity_is_not_falling(series):
    assert inverse_velocity_forecast(series) is None
