"""A field-gateway simulator: a design storm over the township and one accelerating slope,
published over MQTT exactly as real gateways publish (`rescuehub simulate storm`).

The rain is a Chicago-type hyetograph (Keifer & Chu 1957) from the IDF curve i = a / (t + b)^c
(i in mm/min, t in min), scaled per gauge by its distance from the storm centre, so part of the
township gets over 100 mm in 3 h (a CMA red rainstorm signal) and the rest less. The slope
follows Fukuzono's law (Fukuzono 1985): inverse velocity falls linearly to zero at the failure
time.

The drill, as the hub sees it (the warning rules evaluate the windows ending now on the hub's
clock, and a late or replayed old reading never raises an alert: DESIGN §5 "Alerts"):

1. Spin-up. First every gateway catches up on the 24 h before the storm, as gateways do after
   an outage: every rain gauge reports 0.0 mm and every water-level, displacement and tilt
   sensor its steady value (slopes creep at 0.2 mm/day), every 5 minutes on the clock's
   5-minute grid, oldest first, in batches of at most 1,000 readings, plus one report at the
   moment the drill starts. The rolling windows ending now are then complete (telemetry.rain:
   completeness is the time the reports stand for over the window) and dry, so the storm is
   the only rain the rules see. The values depend on the sensor and the timestamp only: a
   second drill within 24 h sends the same (sensor, ts, value) again, which the hub counts as
   duplicates, never as conflicts (the first drill's storm stays in the hub's windows: it is
   data).
2. The storm, in real time. With --speed S the design storm (6 h by default) falls in 6/S real
   hours: every step_min/S real minutes each gauge reports the rain of step_min minutes of the
   design storm, stamped with the real time the report is sent (RFC 3339 in UTC, with
   milliseconds when a step is shorter than a second, so (sensor, ts) stays unique and
   increasing). Rain intensities are therefore S times the design's: this is a drill of the
   warning chain, not a weather simulation; --speed 1 is the design storm in real time. A
   storm stamp is never on the 5-minute grid, so no later spin-up can contradict it. Water
   level rises with the rain reported so far.
3. The slope, in real time. On the moving slope, displacement follows 1/v = a·(t_f − t), t the
   real time since the storm began and t_f a tenth of the storm's real length after its end.
   Its velocity over the rules' 6 h window (the displacement gained in the window over the
   time it spans) passes 10, 50 and 200 mm/day in that order at about 7 %, 29 % and 78 % of
   the storm, whatever the speed; the other slopes keep creeping at 0.2 mm/day. Tilt meters
   follow their slope (0.02° per mm of displacement). Between two consecutive drill reports
   the velocity is S times a real slope's, as the rain is S times as intense.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

# IDF parameters giving ~114 mm in the wettest 3 h and ~143 mm over 6 h at the storm centre.
IDF_A, IDF_B, IDF_C = 25.0, 10.0, 0.7
PEAK_RATIO = 0.4

# Spin-up: a day of dry, still readings before the storm, on the grid gateways report on (every
# rain gauge's registered interval, 300 s), so a repeated drill repeats the same stamps.
SPIN_UP = timedelta(hours=24)
GRID = timedelta(minutes=5)
# At most this many readings in one MQTT message (DESIGN §5).
BATCH_MAX = 1000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Steady values are functions of the timestamp alone, counted from a fixed day.
CREEP_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
CREEP_MM_PER_DAY = 0.2  # a stable slope: well below the 10 mm/day of a first attention level
TILT_DEG_PER_DAY = 0.001
# A river at its base stage, with a small daily swing (±2 cm) so it never looks stuck (QC flat
# line test: 36 equal reports, telemetry.choices.DEFAULT_QC).
BASE_STAGE_M, STAGE_SWING_M = 1.2, 0.02
# Slope parameters of 1/v = a·(t_f − t): a (per mm) sets ~100 mm of movement by the storm's end
# (400 mm/day over a 6 h window), and failure comes a tenth of the storm's length after its end.
SLOPE_A = 0.024
FAILURE_AFTER = 1.1
TILT_DEG_PER_MM = 0.02
DISPLACEMENT_KINDS = frozenset({"crack_meter", "gnss"})


@dataclass(frozen=True)
class SimSensor:
    """A registered sensor the simulator reports for."""

    code: str
    kind: str
    gateway: str
    lon: float
    lat: float


@dataclass(frozen=True)
class StormPlan:
    """The drill: where the storm centres, how long it lasts (design minutes), the report
    interval (design minutes), and how many times faster than real time it runs."""

    centre: tuple[float, float]
    duration_min: int = 360
    step_min: int = 5
    radius_km: float = 3.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.speed < math.inf or not 0 < self.step_min <= self.duration_min:
            raise ValueError("speed must be at least 1 and the storm at least one step long")

    @property
    def steps(self) -> int:
        """How many reports each sensor sends during the storm."""
        return self.duration_min // self.step_min

    @property
    def step_s(self) -> float:
        """Real seconds between two storm reports."""
        return self.step_min * 60 / self.speed

    @property
    def real_s(self) -> float:
        """Real seconds the storm lasts."""
        return self.steps * self.step_s

    @property
    def failure_s(self) -> float:
        """Real seconds from the storm's start to the moving slope's failure (Fukuzono t_f)."""
        return self.real_s * FAILURE_AFTER

    @property
    def unit(self) -> timedelta:
        """The precision of storm timestamps: milliseconds when steps are under a second."""
        return timedelta(milliseconds=1) if self.step_s < 1 else timedelta(seconds=1)


def chicago_intensity(t_min: float, duration_min: float, r: float = PEAK_RATIO) -> float:
    """Rain intensity (mm/min) at t minutes into a Chicago design storm."""
    peak = r * duration_min
    if t_min <= peak:
        tb = (peak - t_min) / r
        return IDF_A * ((1 - IDF_C) * tb + IDF_B) / (tb + IDF_B) ** (1 + IDF_C)
    ta = (t_min - peak) / (1 - r)
    return IDF_A * ((1 - IDF_C) * ta + IDF_B) / (ta + IDF_B) ** (1 + IDF_C)


def rain_between(t0: float, t1: float, duration_min: float, steps: int = 20) -> float:
    """Rain (mm) at the storm centre between t0 and t1 minutes (midpoint rule)."""
    dt = (t1 - t0) / steps
    return sum(chicago_intensity(t0 + (i + 0.5) * dt, duration_min) for i in range(steps)) * dt


def spatial_factor(sensor: SimSensor, plan: StormPlan) -> float:
    """How much of the centre's rain falls at a gauge (Gaussian fall-off, at least 15 %)."""
    dx = (sensor.lon - plan.centre[0]) * 111.32 * math.cos(math.radians(plan.centre[1]))
    dy = (sensor.lat - plan.centre[1]) * 110.57
    return max(0.15, math.exp(-(dx * dx + dy * dy) / (2 * plan.radius_km ** 2)))


def slope_displacement(t: float, failure: float, a: float = SLOPE_A) -> float:
    """Displacement (mm) t after the start with 1/v = a·(t_f − t): d = ln(t_f/(t_f − t))/a
    (t and t_f in any one unit: d depends on their ratio only)."""
    remaining = max(failure - t, failure / 100)  # the slope has failed: no faster than that
    return math.log(failure / remaining) / a


def steady_value(sensor: SimSensor, ts: datetime) -> float | None:
    """A quiet sensor's value at ts, from the time alone (so a repeat is a duplicate); None
    for kinds the simulator does not report."""
    days = max(0.0, (ts - CREEP_EPOCH).total_seconds() / 86400)
    if sensor.kind == "rain_gauge":
        return 0.0
    if sensor.kind == "water_level":
        return round(BASE_STAGE_M + STAGE_SWING_M * math.sin(2 * math.pi * days), 3)
    if sensor.kind in DISPLACEMENT_KINDS:
        return round(5.0 + CREEP_MM_PER_DAY * days, 4)
    if sensor.kind == "tilt":
        return round(0.2 + TILT_DEG_PER_DAY * days, 4)
    return None


def stamp_text(ts: datetime, unit: timedelta = timedelta(seconds=1)) -> str:
    """RFC 3339 in UTC with an offset, to the second or (unit under a second) millisecond."""
    return ts.astimezone(UTC).isoformat(
        timespec="milliseconds" if unit < timedelta(seconds=1) else "seconds")


def on_grid(ts: datetime) -> bool:
    """Whether ts is on the spin-up's 5-minute grid."""
    return (ts - _EPOCH) % GRID == timedelta(0)


def floor_to(ts: datetime, unit: timedelta) -> datetime:
    """ts cut down to a whole number of units (seconds, milliseconds)."""
    return _EPOCH + (ts - _EPOCH) // unit * unit


def next_stamp(now: datetime, previous: datetime | None, unit: timedelta) -> datetime:
    """The stamp of a report sent at now: now to the unit, after the previous stamp (unique and
    increasing per sensor), never on the 5-minute grid (where a later spin-up reports 0 mm)."""
    ts = floor_to(now, unit)
    if previous is not None and ts <= previous:
        ts = previous + unit
    if on_grid(ts):
        ts += unit
    return ts


def spin_up(sensors: Iterable[SimSensor], start: datetime,
            span: timedelta = SPIN_UP) -> list[tuple[str, dict]]:
    """(gateway, reading) pairs for the dry, still `span` before start, oldest first: every
    5-minute grid time in (start − span, start], then start itself when it is off the grid."""
    start = floor_to(start, timedelta(milliseconds=1))
    last = floor_to(start, GRID)
    times = [last - i * GRID for i in reversed(range(span // GRID))]
    if start != last:
        times.append(start)
    quiet = [s for s in sensors if steady_value(s, start) is not None]
    out = []
    for ts in times:
        text = stamp_text(ts, timedelta(milliseconds=1) if ts.microsecond else GRID)
        out.extend((s.gateway, {"sensor": s.code, "ts": text, "value": steady_value(s, ts)})
                   for s in quiet)
    return out


def batches(pairs: Iterable[tuple[str, dict]],
            size: int = BATCH_MAX) -> Iterator[tuple[str, list[dict]]]:
    """Per gateway, its readings in the order given, in messages of at most `size`."""
    by_gateway: dict[str, list[dict]] = {}
    for gateway, reading in pairs:
        by_gateway.setdefault(gateway, []).append(reading)
    for gateway, readings in by_gateway.items():
        for i in range(0, len(readings), size):
            yield gateway, readings[i:i + size]


def readings_at(step: int, ts: datetime, sensors: Iterable[SimSensor], plan: StormPlan,
                slope_codes: set[str], storm_start: datetime) -> Iterator[tuple[str, dict]]:
    """(gateway, reading) pairs for storm report `step` (design minutes step·step_min to
    (step+1)·step_min), sent at real time ts; the slope moves with the real time elapsed."""
    text = stamp_text(ts, plan.unit)
    step_rain = [rain_between(i * plan.step_min, (i + 1) * plan.step_min, plan.duration_min)
                 for i in range(step + 1)]
    centre_rain = step_rain[-1]
    # What the gauges reported so far, so the stage never falls while it rains.
    fallen = math.fsum(step_rain)
    moved = slope_displacement((ts - storm_start).total_seconds(), plan.failure_s)
    for sensor in sensors:
        steady = steady_value(sensor, ts)
        if steady is None:
            continue
        if sensor.kind == "rain_gauge":
            value = round(centre_rain * spatial_factor(sensor, plan), 2)
        elif sensor.kind == "water_level":
            # Stage rises with the rain fallen so far (a simple linear catchment response).
            value = round(steady + 0.02 * fallen * spatial_factor(sensor, plan), 3)
        elif sensor.code not in slope_codes:
            value = steady
        elif sensor.kind == "tilt":
            value = round(steady + TILT_DEG_PER_MM * moved, 4)
        else:
            value = round(steady + moved, 4)
        yield sensor.gateway, {"sensor": sensor.code, "ts": text, "value": value}


class GatewayLink:
    """One gateway's MQTT connection: status with a last will, QoS 1 batches."""

    def __init__(self, host: str, port: int, gateway: str, password: str):
        self.gateway = gateway
        # The broker makes the login the client id anyway (use_username_as_clientid): a real
        # gateway with this login, if one is connected, is pushed off for the drill.
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=gateway,
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set(gateway, password)
        self.client.will_set(f"rescuehub/v1/status/{gateway}",
                             json.dumps({"online": False}), qos=1, retain=True)
        self.client.max_inflight_messages_set(0)
        self._connected = threading.Event()
        self.refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c, _u, _f, reason, _p):
        if reason.is_failure:
            self.refused = str(reason)
        self._connected.set()

    def wait(self, timeout: float = 10) -> bool:
        return self._connected.wait(timeout) and self.refused is None

    def status(self, online: bool) -> None:
        body = {"online": online, "ts": datetime.now(UTC).isoformat(timespec="seconds"),
                "battery_v": 12.6}
        self.client.publish(f"rescuehub/v1/status/{self.gateway}", json.dumps(body), qos=1,
                            retain=True).wait_for_publish(10)

    def batch(self, readings: list[dict]) -> None:
        info = self.client.publish(f"rescuehub/v1/readings/{self.gateway}",
                                   json.dumps({"readings": readings}), qos=1)
        info.wait_for_publish(30)

    def close(self) -> None:
        self.status(False)
        self.client.disconnect()
        self.client.loop_stop()


class Link(Protocol):
    """What the drill needs of a gateway's connection (GatewayLink, or a test's recorder)."""

    def status(self, online: bool) -> None: ...

    def batch(self, readings: list[dict]) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def run_storm(links: dict[str, Link], sensors: list[SimSensor], plan: StormPlan,
              slope_codes: set[str], *, progress: Callable[[int, int, float], None],
              spun_up: Callable[[int], None] = lambda _n: None,
              clock: Callable[[], datetime] = _utcnow,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """Publish the drill (module docstring): the spin-up, then the storm in real time; returns
    how many readings were published."""
    for link in links.values():
        link.status(True)
    start = floor_to(clock(), plan.unit)
    sent = 0
    for gateway, readings in batches(spin_up(sensors, start)):
        links[gateway].batch(readings)
        sent += len(readings)
    spun_up(sent)
    # The storm's clock starts once the backlog is out: its first report then stands for the
    # time since the spin-up's last one, and the slope starts moving on time.
    storm_start = next_stamp(clock(), start, plan.unit)
    previous = storm_start
    centre_total = 0.0
    for step in range(plan.steps):
        due = storm_start + timedelta(seconds=(step + 1) * plan.step_s)
        sleep(max(0.0, (due - clock()).total_seconds()))
        ts = next_stamp(clock(), previous, plan.unit)
        sleep(max(0.0, (ts - clock()).total_seconds()))  # never stamped ahead of the clock
        for gateway, readings in batches(readings_at(step, ts, sensors, plan, slope_codes,
                                                     storm_start)):
            links[gateway].batch(readings)
            sent += len(readings)
        previous = ts
        centre_total += rain_between(step * plan.step_min, (step + 1) * plan.step_min,
                                     plan.duration_min)
        progress(step + 1, plan.steps, centre_total)
    return sent
