"""Quality control on ingest, rolling sums, hourly roll-ups, pruning and the silence check,
through the HTTP API on both databases."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatch.core import auth
from dispatch.core.db import db, utcnow
from dispatch.core.models import Gateway
from dispatch.core.realtime import NAMESPACE
from telemetry import jobs, service
from telemetry.ingest import Ingest, IngestLimits, hour_of
from telemetry.models import Reading, ReadingHour, ReadingHourDirty, Sensor
from telemetry.sensor_memory import TelemetryState, state_of


@pytest.fixture
def gateway(app):
    """Gateway GW-S with a rain gauge, a water-level gauge and a crack meter."""
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-S", actor="test", mqtt_hash=str)
        for code, kind, unit in (("RG-S", "rain_gauge", "mm"), ("WL-S", "water_level", "m"),
                                 ("CM-S", "crack_meter", "mm")):
            service.register(s, {"code": code, "kind": kind, "unit": unit, "gateway": "GW-S",
                                 "lon": 109.05, "lat": 33.15, "interval_s": 300}, actor="test")
    return {"Authorization": f"Bearer {token}"}


def later():
    """A time after every fresh roll-up mark has settled."""
    return utcnow() + timedelta(seconds=jobs.KEEP_MARK_S + 1)


def post(client, headers, readings):
    response = client.post("/api/v1/readings", data=json.dumps({"readings": readings}),
                           headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 200, response.json
    return response.json


def at(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def five_minutes_before(now: datetime, count: int) -> list[datetime]:
    """`count` report times every 5 minutes, the last one on the last whole 5 minutes."""
    last = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    return [last - timedelta(minutes=5 * i) for i in reversed(range(count))]


def test_a_spike_is_stored_flagged_suspect_with_its_reasons(client, gateway, bearer):
    times = five_minutes_before(utcnow(), 4)
    values = [1.0, 1.1, 1.0, 5.0]
    stored = post(client, gateway, [{"sensor": "WL-S", "ts": at(t), "value": v}
                                    for t, v in zip(times, values, strict=True)])
    assert stored["stored"] == 4 and stored["rejected"] == []
    items = client.get("/api/v1/sensors/WL-S/readings", headers=bearer("viewer")).json["items"]
    assert [i["flag"] for i in items] == ["good", "good", "good", "suspect"]
    assert set(items[-1]["qc"]) == {"spike", "rate_of_change"}
    sensor = client.get("/api/v1/sensors/WL-S", headers=bearer("viewer")).json
    assert sensor["last_flag"] == "suspect" and sensor["status"] == "reporting"


def test_a_sensors_own_qc_parameters_apply_and_are_checked(client, gateway, bearer):
    editor = bearer("dispatcher")
    for bad in ({"bogus": 1}, {"spike_threshold": "3"}, {"stuck_count": 1},
                {"spike_threshold": True}, []):
        response = client.patch("/api/v1/sensors/RG-S", json={"qc": bad}, headers=editor)
        assert response.status_code == 400, bad
        assert response.json["error"] == "bad_field"
    response = client.patch("/api/v1/sensors/RG-S", json={"qc": {"fail_max": 10}},
                            headers=editor)
    assert response.status_code == 200
    times = five_minutes_before(utcnow(), 2)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(times[0]), "value": 12.0},
                           {"sensor": "RG-S", "ts": at(times[1]), "value": 2.0}])
    items = client.get("/api/v1/sensors/RG-S/readings", headers=editor).json["items"]
    assert [(i["value"], i["flag"]) for i in items] == [(12.0, "fail"), (2.0, "good")]
    # A failed report is not rain: the hour holds 2 mm, and only half its time is covered.
    window = client.get("/api/v1/sensors/RG-S/sums", headers=editor).json["windows"]["10m"]
    assert window["mm"] == 2.0 and window["complete"] == 0.5


def test_sums_follow_a_hyetograph_with_a_gap_and_a_late_report(client, gateway, bearer):
    now = utcnow()
    times = five_minutes_before(now, 36)  # the last 3 hours
    rain = [round(0.5 + (i % 7) * 0.8, 1) for i in range(36)]
    late = 30  # held back, sent after the rest
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": mm}
                           for i, (t, mm) in enumerate(zip(times, rain, strict=True))
                           if i != late])
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=bearer("viewer")).json
    assert sums["windows"]["3h"]["mm"] == pytest.approx(math.fsum(rain) - rain[late])
    assert sums["windows"]["3h"]["complete"] < 1
    post(client, gateway, [{"sensor": "RG-S", "ts": at(times[late]), "value": rain[late]}])
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=bearer("viewer")).json
    newest = now - times[-1]
    assert sums["windows"]["3h"]["mm"] == pytest.approx(math.fsum(rain))
    assert sums["windows"]["3h"]["complete"] == pytest.approx(1.0)
    one_hour = [mm for t, mm in zip(times, rain, strict=True) if t > now - timedelta(hours=1)]
    assert sums["windows"]["1h"]["mm"] == pytest.approx(math.fsum(one_hour))
    # Six hours of window, three of them with data: half complete, never padded with zeros.
    assert sums["windows"]["6h"]["complete"] == pytest.approx(0.5, abs=0.02)
    assert sums["windows"]["24h"]["mm"] == pytest.approx(math.fsum(rain))
    assert sums["event_mm"] == pytest.approx(math.fsum(rain))
    assert sums["event"]["duration_h"] == pytest.approx(3.0)
    assert newest < timedelta(minutes=5)


def test_another_process_storing_a_reading_is_seen(app, client, gateway, bearer):
    """The hub's memory of a gauge reloads when the sensor's revision moved elsewhere."""
    times = five_minutes_before(utcnow(), 2)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(times[0]), "value": 1.0}])
    assert client.get("/api/v1/sensors/RG-S/sums",
                      headers=bearer("viewer")).json["windows"]["1h"]["mm"] == 1.0
    with db.transaction() as s:  # a `worker` process with its own memory
        ingest = Ingest(s, IngestLimits(), TelemetryState())
        ingest.message(json.dumps({"sensor": "RG-S", "ts": at(times[1]), "value": 2.5}).encode(),
                       topic="rescuehub/v1/readings/GW-S", gateway="GW-S", message_id="m1",
                       now=utcnow())
        ingest.finish()
    assert client.get("/api/v1/sensors/RG-S/sums",
                      headers=bearer("viewer")).json["windows"]["1h"]["mm"] == 3.5
    assert state_of(app) is state_of(app)


def test_hours_roll_up_and_are_redone_after_a_late_reading(app, client, gateway, bearer):
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    times = [start + timedelta(minutes=5 * i) for i in range(1, 25)]  # two whole hours
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": 1.0}
                           for i, t in enumerate(times) if i != 5])
    with db.transaction() as s:
        assert jobs.roll_up(s, now=utcnow())[0] > 0
        # Marks stay a while (ingest trusts a recent mark), then go once settled.
        assert s.scalar(select(func.count()).select_from(ReadingHourDirty)) > 0
        assert jobs.roll_up(s, now=later())[1] > 0
        assert s.scalar(select(func.count()).select_from(ReadingHourDirty)) == 0
    hours = client.get("/api/v1/sensors/RG-S/hourly", headers=bearer("viewer")).json["items"]
    assert [(h["hour"], h["total"], h["count"]) for h in hours] == [
        (at(start), 11.0, 11), (at(start + timedelta(hours=1)), 12.0, 12)]
    assert hours[0]["complete"] == pytest.approx(11 / 12, abs=1e-4)
    state_of(app).forget()  # what the hub remembers of its marks lasts a minute: it is later
    post(client, gateway, [{"sensor": "RG-S", "ts": at(times[5]), "value": 1.0}])
    with db.transaction() as s:
        jobs.roll_up(s, now=later())
    hours = client.get("/api/v1/sensors/RG-S/hourly", headers=bearer("viewer")).json["items"]
    assert [(h["total"], h["complete"]) for h in hours] == [(12.0, 1.0), (12.0, 1.0)]
    assert hour_of(start + timedelta(hours=1)) == start  # (h, h + 1 h]: 10:00 ends 09-10


def test_the_roll_up_job_takes_every_mark_once_in_short_transactions(app, client, gateway,
                                                                    monkeypatch):
    """Marks too young to remove still get rolled up, each once per run, chunk after chunk
    (each chunk its own transaction), however many share one marked_at."""
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    times = [start + timedelta(minutes=30 * i) for i in range(1, 10)]
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": 0.5} for t in times])
    with db.transaction() as s:
        marks = set(s.execute(select(ReadingHourDirty.sensor_id, ReadingHourDirty.hour)).all())
    assert len(marks) >= 5
    seen, after = [], None
    while True:
        with db.transaction() as s:
            done, settled, after = jobs.roll_up(s, now=utcnow(), limit=2, after=after)
        assert settled == 0  # all young
        if not done:
            break
        seen.append(after)
    assert len(seen) == -(-len(marks) // 2) and len(set(seen)) == len(seen)
    db.session.execute(ReadingHour.__table__.delete())
    db.session.commit()
    monkeypatch.setattr(jobs, "ROLL_UP_CHUNK", 2)
    commits = []
    monkeypatch.setattr(db, "transaction", _counting(db.transaction, commits))
    jobs.roll_up_hours()
    assert len(commits) == -(-len(marks) // 2) + (len(marks) % 2 == 0)
    with db.transaction() as s:
        rolled = set(s.execute(select(ReadingHour.sensor_id, ReadingHour.hour)).all())
    (sensor_id,) = {sid for sid, _ in marks}
    assert rolled == {(sensor_id, hour_of(t)) for t in times}


def _counting(transaction, calls: list):
    import contextlib

    @contextlib.contextmanager
    def counted():
        with transaction() as s:
            yield s
        calls.append(1)

    return counted


def test_pruning_keeps_hourly_sums_and_the_antecedent_index(client, gateway, bearer):
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    daily = {1: 10.0, 2: 20.0, 4: 5.0}  # days before today -> rain
    readings = []
    for days, mm in daily.items():
        day = today - timedelta(days=days)
        readings += [{"sensor": "RG-S", "ts": at(day + timedelta(hours=h, minutes=30)),
                      "value": mm / 4} for h in range(4)]
    post(client, gateway, readings)
    with db.transaction() as s:
        jobs.roll_up(s, now=later())
        removed = jobs.prune_raw(s, now=utcnow(), retention_days=1)
    assert removed == sum(1 for r in readings
                          if datetime.fromisoformat(r["ts"]) <= utcnow() - timedelta(days=1))
    assert db.session.scalar(select(func.sum(ReadingHour.total))) == pytest.approx(35.0)
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=bearer("viewer")).json
    expected = math.fsum(0.85 ** d * mm for d, mm in daily.items())
    assert sums["antecedent_mm"] == pytest.approx(expected, abs=1e-3)
    # 12 readings over 15 days: the index says how little of that time was observed.
    assert sums["antecedent_complete"] == pytest.approx(12 * 300 / (15 * 86400), abs=1e-4)
    # Many gauges in one query (the warning rules' storm start): the same figures, and a gauge
    # without roll-ups gets 0 with nothing observed.
    from telemetry import series
    from telemetry.models import Sensor

    sensor = db.session.scalar(select(Sensor).where(Sensor.code == "RG-S"))
    one = series.antecedent(db.session, sensor, utcnow(), 15, 0.85)
    many = series.antecedents(db.session, [sensor.id, 10**9], utcnow(), 15, 0.85)
    assert many == {sensor.id: one, 10**9: (0.0, 0.0)}
    assert one[0] == pytest.approx(expected, abs=1e-3)


def go_silent(app, client, gateway) -> datetime:
    """RG-S reported and GW-S was seen two hours ago; the silence job runs. Returns that time."""
    old = utcnow() - timedelta(hours=2)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(old), "value": 0.0}])
    with db.transaction() as s:
        s.execute(Gateway.__table__.update().values(last_seen_at=old))
    with app.app_context():
        jobs.mark_silent()
    return old


def test_silent_sensors_go_missing_and_come_back(app, client, gateway, bearer, login, sio):
    login("viewer")
    live = sio()
    old = go_silent(app, client, gateway)
    events = [e["args"][0] for e in live.get_received(NAMESPACE) if e["name"] == "sensor_status"]
    missing = {e["sensor"]: e for e in events if e.get("status") == "missing"}
    assert missing["RG-S"]["since"] == at(old)
    # Sensors that never reported go missing once the silence limit passed since registration
    # (not yet here: registered a moment ago).
    assert set(missing) == {"RG-S"}
    assert {"gateway": "GW-S", "online": False, "reason": "silent"}.items() <= next(
        e for e in events if e.get("gateway") == "GW-S").items()
    layer = client.get("/api/v1/layers/sensors", headers=bearer("viewer")).json
    rg = next(f for f in layer["features"] if f["properties"]["code"] == "RG-S")
    assert rg["properties"]["last_flag"] == "missing"
    post(client, gateway, [{"sensor": "RG-S", "ts": at(utcnow()), "value": 0.2}])
    events = [e["args"][0] for e in live.get_received(NAMESPACE) if e["name"] == "sensor_status"]
    assert {"sensor": "RG-S", "status": "reporting"}.items() <= events[-1].items()
    assert db.session.scalar(select(Gateway.online).where(Gateway.code == "GW-S")) is True
    assert db.session.scalar(select(Sensor.status).where(Sensor.code == "RG-S")) == "reporting"


def test_displacement_sums_forecast_an_accelerating_slope(client, gateway, bearer):
    start = utcnow() - timedelta(hours=20)
    failure_h = 24.0
    # Inverse velocity falling linearly to zero at failure: x(t) = -A ln(1 - t/T).
    points = [(start + timedelta(hours=h), 100 * -math.log(1 - h / failure_h))
              for h in range(0, 20)]
    post(client, gateway, [{"sensor": "CM-S", "ts": at(t), "value": round(x, 3)}
                           for t, x in points])
    sums = client.get("/api/v1/sensors/CM-S/sums", headers=bearer("viewer")).json
    assert sums["velocity_mm_d"] > 0 and sums["inverse_velocity_d_mm"] > 0
    forecast = datetime.fromisoformat(sums["forecast"]["failure_time"])
    assert abs(forecast - (start + timedelta(hours=failure_h))) < timedelta(hours=1.5)


@pytest.mark.parametrize(("query", "parameter"), [
    ("since=yesterday", "since"), ("until=2026-01-01T00:00:00", "until"),
    ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
    ("limit=0", "limit"), ("limit=abc", "limit"), ("limit=20001", "limit"),
    ("limit=%C2%B2", "limit"),  # "²": a digit to str.isdigit(), not to int()
])
def test_bad_time_ranges_are_refused_with_the_parameter(client, gateway, bearer, query,
                                                        parameter):
    response = client.get(f"/api/v1/sensors/RG-S/readings?{query}", headers=bearer("viewer"))
    assert response.status_code == 400
    assert response.json["error"] == "bad_parameter"
    assert parameter in response.json["message"]


def test_readings_in_a_range_and_cut_at_the_limit(client, gateway, bearer):
    times = five_minutes_before(utcnow(), 6)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": 0.5} for t in times])
    url = (f"/api/v1/sensors/RG-S/readings?since={at(times[1]).replace('+', '%2B')}"
           f"&until={at(times[4]).replace('+', '%2B')}")
    body = client.get(url, headers=bearer("viewer")).json
    assert [i["ts"] for i in body["items"]] == [at(t) for t in times[2:5]]
    assert body["truncated"] is False
    body = client.get(url + "&limit=2", headers=bearer("viewer")).json
    assert len(body["items"]) == 2 and body["truncated"] is True
    assert client.get("/api/v1/sensors/NOPE/readings",
                      headers=bearer("viewer")).status_code == 404


def test_gateway_status_sets_online_and_battery(app):
    from telemetry.writer_process import gateway_status as _status

    with db.transaction() as s:
        auth.create_gateway(s, "GW-T", actor="test", mqtt_hash=str)
    with app.test_request_context(), db.transaction() as s:
        now = datetime.now(UTC)
        assert _status(s, "GW-T", b'{"online": true, "battery_v": 12.6}', now) == [
            {"gateway": "GW-T", "online": True, "reason": None, "since": now.isoformat()}]
        assert _status(s, "GW-T", b'{"online": "yes"}', now) == []
        assert _status(s, "GW-NONE", b'{"online": true}', now) == []
        assert _status(s, "GW-T", b'{"online": false}', now)[0]["reason"] == "reported"
    gateway = db.session.scalar(select(Gateway).where(Gateway.code == "GW-T"))
    assert (gateway.online, gateway.offline_reason, gateway.battery_v) == (
        False, "reported", 12.6)
    assert db.session.scalar(select(func.count(Reading.id))) == 0


def test_gateways_list_their_state(client, gateway, bearer):
    post(client, gateway, [{"sensor": "RG-S", "ts": at(utcnow()), "value": 0.0}])
    items = client.get("/api/v1/gateways", headers=bearer("viewer")).json["items"]
    assert [(g["code"], g["online"], g["sensors"]) for g in items] == [("GW-S", True, 3)]
    assert items[0]["last_seen_at"] is not None
    assert client.get("/api/v1/gateways", headers=gateway).status_code == 403


def test_sums_say_unknown_not_zero_without_data(client, gateway, bearer):
    """A gauge with no data: every window, the event and the antecedent index are null
    (unknown), never 0 mm; "no rain event" (0.0) needs reports that show it dry."""
    viewer = bearer("viewer")
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=viewer).json
    assert set(sums["windows"]) >= {"10m", "1h", "3h", "6h", "24h"}
    assert all(w == {"mm": None, "complete": 0.0} for w in sums["windows"].values()), sums
    assert sums["event_mm"] is None and sums["event"] is None
    assert sums["antecedent_mm"] is None and sums["antecedent_complete"] == 0.0

    # Only old dry reports (8 h ago, beyond the 6 h dry gap): still unknown now.
    old = five_minutes_before(utcnow() - timedelta(hours=8), 3)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": 0.0} for t in old])
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=viewer).json
    assert sums["windows"]["1h"]["mm"] is None and sums["windows"]["24h"]["mm"] == 0.0
    assert sums["event_mm"] is None

    # Recent reports of 0 mm: observed dry, so 0.0 and no event.
    recent = five_minutes_before(utcnow(), 3)
    post(client, gateway, [{"sensor": "RG-S", "ts": at(t), "value": 0.0} for t in recent])
    sums = client.get("/api/v1/sensors/RG-S/sums", headers=viewer).json
    assert sums["windows"]["1h"]["mm"] == 0.0 and 0 < sums["windows"]["1h"]["complete"] < 1
    assert sums["event_mm"] == 0.0 and sums["event"] is None


SENSOR_SHAPE = {"sensor", "status", "flag", "retired", "since"}
GATEWAY_SHAPE = {"gateway", "online", "reason", "since"}


def test_sensor_status_has_one_shape_per_variant(app, client, gateway, login, sio):
    """Every sender builds its `sensor_status` through telemetry.live: a registry change, a
    sensor reporting again, a silent sensor and gateway, a gateway's status topic."""
    from telemetry.writer_process import gateway_status
    from tests.conftest import csrf_of

    login("dispatcher")
    live = sio()
    created = client.post("/api/v1/sensors", headers={"X-CSRF-Token": csrf_of(client)}, json={
        "code": "RG-T", "kind": "rain_gauge", "unit": "mm", "gateway": "GW-S", "lon": 109.05,
        "lat": 33.15})
    assert created.status_code == 201
    go_silent(app, client, gateway)
    with db.transaction() as s:
        reported = gateway_status(s, "GW-S", b'{"online": true}', utcnow())
    events = [e["args"][0] for e in live.get_received(NAMESPACE) if e["name"] == "sensor_status"]
    shapes = [set(e) - {"id", "ts"} for e in events + reported]
    assert SENSOR_SHAPE in shapes and GATEWAY_SHAPE in shapes
    assert all(shape in (SENSOR_SHAPE, GATEWAY_SHAPE) for shape in shapes), shapes
    by_sensor = {(e.get("sensor"), e.get("status")) for e in events}
    assert {("RG-T", "new"), ("RG-S", "reporting"), ("RG-S", "missing")} <= by_sensor
