"""A field-gateway simulator: a design storm over the township and one accelerating slope,
published over MQTT exactly as real gateways publish (`rescuehub simulate storm`).

The rain is a Chicago-type hyetograph (Keifer & Chu 1957) from the IDF curve i = a / (t + b)^c
(i in mm/min, t in min), scaled per gauge by its distance from the storm centre, so part of the
township gets over 100 mm in 3 h (a CMA red rainstorm signal) and the rest less. The slope
follows Fukuzono's law: inverse velocity falls linearly to zero at the failure time.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

# IDF parameters giving ~114 mm in the wettest 3 h and ~143 mm over 6 h at the storm centre.
IDF_A, IDF_B, IDF_C = 25.0, 10.0, 0.7
PEAK_RATIO = 0.4


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
    """The storm: where it centres, how long it lasts, and the report interval."""

    centre: tuple[float, float]
    duration_min: int = 360
    step_min: int = 5
    radius_km: float = 3.0


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


def slope_displacement(t_min: float, failure_min: float, a: float = 0.02) -> float:
    """Cumulative displacement (mm) with 1/v = a·(t_f − t) (v in mm/min): d = ln(t_f/(t_f−t))/a."""
    remaining = max(failure_min - t_min, 1.0)
    return math.log(failure_min / remaining) / a


def readings_at(step: int, sensors: list[SimSensor], plan: StormPlan, slope_hazard_codes: set,
                start: datetime) -> Iterator[tuple[str, dict]]:
    """(gateway, reading) pairs for one report step of the simulated storm."""
    t1 = (step + 1) * plan.step_min
    t0 = t1 - plan.step_min
    ts = (start + timedelta(minutes=t1)).isoformat(timespec="seconds")
    failure = plan.duration_min + 120
    centre_rain = rain_between(t0, t1, plan.duration_min)
    for sensor in sensors:
        if sensor.kind == "rain_gauge":
            value = round(centre_rain * spatial_factor(sensor, plan), 2)
        elif sensor.kind == "water_level":
            # Stage rises with the rain fallen so far (a simple linear catchment response).
            fallen = rain_between(0, t1, plan.duration_min, 40)
            value = round(1.2 + 0.02 * fallen * spatial_factor(sensor, plan), 3)
        elif sensor.code in slope_hazard_codes and sensor.kind in {"crack_meter", "gnss"}:
            value = round(5.0 + slope_displacement(t1, failure), 2)
        elif sensor.kind in {"crack_meter", "gnss"}:
            value = round(5.0 + 0.001 * t1, 3)
        elif sensor.kind == "tilt":
            value = round(0.2 + (0.5 if sensor.code in slope_hazard_codes else 0.0) * t1
                          / plan.duration_min, 3)
        else:
            continue
        yield sensor.gateway, {"sensor": sensor.code, "ts": ts, "value": value}


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


def run_storm(links: dict[str, GatewayLink], sensors: list[SimSensor], plan: StormPlan,
              slope_codes: set, *, speed: float,
              progress: Callable[[int, int, float], None]) -> int:
    """Publish the whole storm; timestamps end at about now (never in the future)."""
    steps = plan.duration_min // plan.step_min
    real_start = datetime.now(UTC)
    # Simulated time runs `speed` times faster and is placed so its last report is about now.
    start = real_start - timedelta(minutes=plan.duration_min * (1 - 1 / speed))
    sent = 0
    centre_total = 0.0
    for link in links.values():
        link.status(True)
    for step in range(steps):
        due = time.monotonic() + plan.step_min * 60 / speed
        by_gateway: dict[str, list[dict]] = {}
        for gateway, reading in readings_at(step, sensors, plan, slope_codes, start):
            by_gateway.setdefault(gateway, []).append(reading)
        for gateway, readings in by_gateway.items():
            links[gateway].batch(readings)
            sent += len(readings)
        centre_total += rain_between(step * plan.step_min, (step + 1) * plan.step_min,
                                     plan.duration_min)
        progress(step + 1, steps, centre_total)
        time.sleep(max(0.0, due - time.monotonic()))
    return sent
