"""The hazard page's data (GET /api/v1/hazards/<code>/charts) on both databases: the rain event
as the rules judge it (DESIGN §6 worked example: 30 mm in 10 h is above Guzzetti 2008, below
Caine 1980), the curves with their sources, dry and silent gauges, a slope accelerating towards
failure with its Fukuzono forecast, the zone's active alerts, and the page itself."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts import service, tables
from alerts.evaluate import Evaluator
from dispatch.core import auth
from dispatch.core.db import db
from maps import service as maps_service
from maps.models import HazardZone
from telemetry import service as telemetry_service

ZONE = "HZ-1"
STEP = timedelta(minutes=5)
# Fukuzono: 1/v falls linearly, 1/v = A·τ with τ the days left before failure (A in d/mm a day),
# so the cumulative displacement is x = −ln(τ)/A + X0.
A = 0.2
X0 = 10.0
THRESHOLDS = {"attention": 5.0, "warning": 20.0, "alarm": 50.0}


def _square(lon, lat, d=0.02):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


@pytest.fixture
def zone(app):
    """Hazard zone HZ-1 with rain gauge RG-H inside, a silent gauge RG-Q inside, crack meter
    CM-H registered with the zone, and the gateway's token."""
    with db.transaction() as s:
        maps_service.create(s, maps_service.KINDS["hazards"], {
            "type": "Feature", "geometry": _square(109.0, 33.0),
            "properties": {"code": ZONE, "kind": "landslide", "name_zh": "后山滑坡",
                           "people": 120, "households": 35}}, actor="test")
        _, _, token = auth.create_gateway(s, "GW-H", actor="test", mqtt_hash=str)
        for code, kind, unit, lon in (("RG-H", "rain_gauge", "mm", 109.01),
                                      ("RG-Q", "rain_gauge", "mm", 109.015),
                                      ("CM-H", "crack_meter", "mm", 109.005)):
            telemetry_service.register(s, {"code": code, "kind": kind, "unit": unit,
                                           "gateway": "GW-H", "lon": lon, "lat": 33.01,
                                           "hazard": ZONE, "interval_s": 300}, actor="test")
    return {"Authorization": f"Bearer {token}"}


def _table(app, **extra):
    body = {"gauges": [], "prepare": {"alpha": 2.20, "beta": 0.44},
            "evacuate": {"alpha": 14.82, "beta": 0.39}, "min_duration_h": 1, **extra}
    from alerts import thresholds

    with db.transaction() as s:
        table = thresholds.hazard_thresholds(body, rain_gauges={"RG-H", "RG-Q"},
                                             displacement_sensors={"CM-H"})
        zone = s.scalar(select(HazardZone).where(HazardZone.code == ZONE))
        tables.store_hazard_table(s, zone, table.as_json(), actor="test")


def _post(client, headers, readings):
    answer = client.post("/api/v1/readings", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200 and answer.json["stored"] == len(readings), answer.json
    return answer.json


def _rain(client, headers, mm: float, hours: float, end: datetime, sensor="RG-H"):
    """Reports of `mm` every 5 minutes over the `hours` ending at `end`: the event starts
    `hours` before `end` (the first report stands for the 5 minutes before it)."""
    n = round(hours * 12)
    _post(client, headers, [{"sensor": sensor, "ts": (end - STEP * (n - 1 - i)).isoformat(),
                             "value": mm} for i in range(n)])


def _charts(client, bearer, code=ZONE):
    answer = client.get(f"/api/v1/hazards/{code}/charts", headers=bearer("viewer"))
    assert answer.status_code == 200, answer.json
    return answer.json


# mm every 5 min for hours → (D h, I mm/h, level); thresholds from DESIGN §6.
EVENTS = [
    pytest.param(0.25, 10, 30.0, "prepare", id="worked-example-30mm-10h"),
    pytest.param(1.0, 3, 36.0, "evacuate", id="36mm-3h-above-caine"),
    pytest.param(0.02, 10, 2.4, None, id="2.4mm-10h-below-guzzetti"),
]


@pytest.mark.parametrize(("mm", "hours", "total", "level"), EVENTS)
def test_the_event_point_and_level_are_the_rules(app, client, zone, bearer, mm, hours, total,
                                                 level):
    _table(app)
    now = datetime.now(UTC).replace(microsecond=0)
    _rain(client, zone, mm, hours, now)
    data = _charts(client, bearer)
    rain = data["rain"]
    gauge = next(g for g in rain["gauges"] if g["code"] == "RG-H")
    assert gauge["state"] == "event"
    event = gauge["event"]
    assert event["mm"] == pytest.approx(total)
    # D runs from the event's first rain to now (the request's now, a moment after `now`).
    assert hours <= event["duration_h"] < hours + 0.05
    assert event["intensity_mm_h"] == pytest.approx(total / event["duration_h"], rel=1e-3)
    assert rain["level"] == level
    if level == "prepare":
        # Guzzetti 2008 at D = 10 h: 2.20·10^−0.44 = 0.80 mm/h.
        assert rain["rule"]["threshold_mm_h"] == pytest.approx(0.80, abs=0.01)
    assert rain["rule"]["gauge"] == "RG-H"
    assert rain["unknown"] == ["RG-Q"]  # the other gauge never reported: unknown, not dry
    assert data["table"] == "configured"


def test_without_a_table_the_default_curves_are_shown_and_named(app, client, zone, bearer):
    data = _charts(client, bearer)
    assert data["table"] == "none"
    assert data["rain"]["prepare"] == {"alpha": 2.2, "beta": 0.44,
                                       "source": "Guzzetti et al. 2008"}
    assert data["rain"]["evacuate"] == {"alpha": 14.82, "beta": 0.39, "source": "Caine 1980"}
    assert data["rain"]["min_duration_h"] == 1.0
    assert {g["code"]: g["state"] for g in data["rain"]["gauges"]} == {"RG-H": "unknown",
                                                                       "RG-Q": "unknown"}
    assert data["zone"] == {"code": ZONE, "name": "后山滑坡", "kind": "landslide",
                            "people": 120, "households": 35, "warning_level": "none"}
    assert data["slope"]["velocity_mm_d"] == {"attention": None, "warning": None, "alarm": None}


def test_a_zone_own_curves_and_gauges_come_from_its_table(app, client, zone, bearer):
    _table(app, gauges=["RG-Q"], prepare={"alpha": 3.0, "beta": 0.5},
           evacuate={"alpha": 20.0, "beta": 0.4}, min_duration_h=2)
    data = _charts(client, bearer)
    assert data["rain"]["prepare"] == {"alpha": 3.0, "beta": 0.5, "source": None}
    assert data["rain"]["min_duration_h"] == 2.0
    assert [g["code"] for g in data["rain"]["gauges"]] == ["RG-Q"]


def test_a_short_event_counts_the_minimum_duration(app, client, zone, bearer):
    _table(app, min_duration_h=2)
    now = datetime.now(UTC).replace(microsecond=0)
    _rain(client, zone, 2.0, 0.5, now)  # 12 mm in 30 min
    event = _charts(client, bearer)["rain"]["gauges"][0]["event"]
    assert event["duration_h"] == 2.0 and event["intensity_mm_h"] == pytest.approx(6.0)
    assert event["rain_duration_h"] == pytest.approx(0.5)  # its first report stands for 5 min


def test_a_gauge_seen_dry_is_dry(app, client, zone, bearer):
    now = datetime.now(UTC).replace(microsecond=0)
    _rain(client, zone, 0.0, 2, now)
    gauges = {g["code"]: g for g in _charts(client, bearer)["rain"]["gauges"]}
    assert gauges["RG-H"]["state"] == "dry" and gauges["RG-H"]["event"] is None


def _slope_readings(now: datetime, failure: datetime, hours: int = 48, step_min: int = 30):
    out = []
    for k in range(hours * 60 // step_min, -1, -1):
        ts = now - timedelta(minutes=k * step_min)
        tau = (failure - ts) / timedelta(days=1)
        out.append({"sensor": "CM-H", "ts": ts.isoformat(), "value": X0 - math.log(tau) / A})
    return out


def test_an_accelerating_slope_has_a_falling_inverse_velocity_and_a_forecast(
        app, client, zone, bearer):
    _table(app, velocity_mm_d=THRESHOLDS)
    now = datetime.now(UTC).replace(microsecond=0)
    failure = now + timedelta(hours=12)
    _post(client, zone, _slope_readings(now, failure))
    slope = _charts(client, bearer)["slope"]
    assert slope["velocity_mm_d"] == THRESHOLDS
    assert slope["agree"] == 1 and slope["window_h"] == 6.0
    (sensor,) = slope["sensors"]
    assert sensor["code"] == "CM-H" and sensor["readings"] == 97
    inverse = [v for _, v in sensor["inverse"]]
    # 94 points (3-interval moving average), every one positive and each lower than the last.
    assert len(inverse) == 94 and min(inverse) > 0
    assert all(b < a for a, b in zip(inverse, inverse[1:], strict=False))
    # 1/v = A·τ: 2.5 days before failure 0.5 d/mm, 0.5 days before 0.1 d/mm.
    assert inverse[0] == pytest.approx(A * 2.47, rel=0.02)
    assert inverse[-1] == pytest.approx(A * 0.53, rel=0.05)
    forecast = sensor["forecast"]
    assert forecast["points"] == 12 and forecast["r2"] > 0.99
    predicted = datetime.fromisoformat(forecast["failure_time"])
    assert abs(predicted - failure) < timedelta(hours=1)
    assert forecast["slope"] == pytest.approx(-A, rel=0.05)
    fitted = [t for t, _ in sensor["inverse"]][-12:]
    assert forecast["fit_from"] == fitted[0] and forecast["fit_to"] == fitted[-1]
    # Over the last 6 h: x(τ=0.5) − x(τ=0.75) = ln(1.5)/A = 2.03 mm in 0.25 d ≈ 8.1 mm/d.
    assert sensor["velocity_mm_d"] == pytest.approx(math.log(1.5) / A / 0.25, rel=0.01)
    assert slope["level"] == "attention"


def test_a_steady_creep_has_no_forecast(app, client, zone, bearer):
    now = datetime.now(UTC).replace(microsecond=0)
    _post(client, zone, [{"sensor": "CM-H", "ts": (now - timedelta(hours=k)).isoformat(),
                          "value": 20.0 - 0.05 * k} for k in range(24, -1, -1)])
    (sensor,) = _charts(client, bearer)["slope"]["sensors"]
    assert sensor["forecast"] is None
    assert [v for _, v in sensor["inverse"]] == pytest.approx([1 / 1.2] * 22)


def test_the_zone_active_alerts_are_listed(app, client, zone, bearer):
    _table(app, velocity_mm_d=THRESHOLDS)
    now = datetime.now(UTC).replace(microsecond=0)
    _rain(client, zone, 0.25, 10, now)
    _post(client, zone, _slope_readings(now, now + timedelta(hours=12)))
    Evaluator(app, service.announce).run(set(), everything=True)
    data = _charts(client, bearer)
    assert {(a["kind"], a["level"]) for a in data["alerts"]} == {
        ("landslide_rain", "prepare"), ("slope_movement", "attention")}
    assert all(a["subject"]["code"] == ZONE for a in data["alerts"])
    assert data["zone"]["warning_level"] == "prepare"


def test_the_page_gives_its_module_the_urls_and_words(client, zone, login):
    login("viewer")
    page = client.get(f"/hazards/{ZONE}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="hazard-config">(.*?)</script>',
                      html, re.S).group(1)
    config = json.loads(block)
    assert config["urls"]["charts"] == f"/api/v1/hazards/{ZONE}/charts"
    assert config["axes"] == {"duration_h": [0.1, 240.0], "intensity_mm_h": [0.1, 200.0]}
    assert config["levels"]["slope_movement:alarm"]["colour"] == "#d7191c"
    assert "<script>" not in html and "innerHTML" not in html
    assert re.search(r'src="/static/hazards/hazard\.js\?v=[0-9a-f]+"', html)


@pytest.mark.parametrize(("path", "status"), [
    ("/api/v1/hazards/NOPE/charts", 404),
    ("/hazards/NOPE", 404),
])
def test_an_unknown_zone_is_not_found(client, bearer, path, status):
    answer = client.get(path, headers=bearer("viewer"))
    assert answer.status_code == status


def test_the_charts_need_a_person(client, zone):
    assert client.get(f"/api/v1/hazards/{ZONE}/charts").status_code == 401
    assert client.get(f"/api/v1/hazards/{ZONE}/charts", headers=zone).status_code == 403
