"""The warning lifecycle on both databases: readings in over HTTP, the evaluator judges the windows
ending now, alerts rise and never fall by themselves, people act on them, CAP messages follow,
and the village's warning level is on its row."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from alerts import service
from alerts.evaluate import Evaluator
from alerts.models import Alert, VillageThreshold
from dispatch.core import auth
from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from maps import service as maps_service
from maps.models import Village
from telemetry import service as telemetry_service
from telemetry.models import Sensor

XSD = Path(__file__).parent / "standards" / "cap-v1.2.xsd"
WORKED = {"gauges": ["RG-V"], "windows_h": [1, 3, 6],
          "prepare": {"dry": [45, 70, 100], "normal": [40, 65, 95], "wet": [35, 60, 90]},
          "evacuate": {"dry": [50, 75, 105], "normal": [45, 70, 100], "wet": [40, 65, 95]},
          "antecedent_mm": {"dry_below": 15, "wet_above": 50}}


def _square(lon, lat, d=0.02):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


@pytest.fixture
def village(app):
    """Village V-1 with a rain gauge RG-V inside, a threshold table, and the gateway's token."""
    with db.transaction() as s:
        kind = maps_service.KINDS["villages"]
        maps_service.create(s, kind, {"type": "Feature", "geometry": _square(109.0, 33.0),
                                      "properties": {"code": "V-1", "name_zh": "青山村",
                                                     "population": 800}}, actor="test")
        _, _, token = auth.create_gateway(s, "GW-V", actor="test", mqtt_hash=str)
        telemetry_service.register(s, {"code": "RG-V", "kind": "rain_gauge", "unit": "mm",
                                       "gateway": "GW-V", "lon": 109.01, "lat": 33.01},
                                   actor="test")
        row = s.scalar(select(Village).where(Village.code == "V-1"))
        s.add(VillageThreshold(village_id=row.id, table=WORKED))
    return {"Authorization": f"Bearer {token}"}


def _rain(client, headers, amounts: list[float], end: datetime, step_min: int = 5):
    """Reports every step_min minutes ending at `end` (the newest last)."""
    start = end - timedelta(minutes=step_min * (len(amounts) - 1))
    readings = [{"sensor": "RG-V", "ts": (start + timedelta(minutes=step_min * i)).isoformat(),
                 "value": mm} for i, mm in enumerate(amounts)]
    answer = client.post("/api/v1/readings", json={"readings": readings}, headers=headers)
    assert answer.status_code == 200 and answer.json["stored"] == len(readings), answer.json
    return answer.json


def _judge(app) -> service.Changes:
    return Evaluator(app, service.announce).run(set(), everything=True)


def _alerts(kind=None):
    query = select(Alert).order_by(Alert.id)
    if kind:
        query = query.where(Alert.kind == kind)
    return db.session.scalars(query).all()


def test_a_storm_raises_prepare_then_evacuate_and_the_level_never_falls(app, client, village,
                                                                        bearer):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    # Three dry hours (complete windows), then 61 mm in the last 3 h: prepare (no antecedent
    # rain is known, so the wet-soil row applies: 3 h >= 60, below 65 for evacuate) ...
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [1.8] * 35, now)
    _judge(app)
    flood = _alerts("flash_flood")
    assert [(a.level, a.state) for a in flood] == [("prepare", "raised")]
    assert db.session.scalar(select(Village.warning_level).where(Village.code == "V-1")) \
        == "prepare"
    # ... then a cloudburst: 45 mm in ten minutes -> evacuate, on the same alert.
    _rain(client, village, [22.5, 22.5], now + timedelta(minutes=2), step_min=1)
    _judge(app)
    db.session.expire_all()
    flood = _alerts("flash_flood")
    assert [(a.level, a.state) for a in flood] == [("evacuate", "raised")]
    alert = flood[0]
    assert alert.rule["source"].startswith("SL 675") and alert.rule["threshold_mm"] is not None
    assert alert.evidence and alert.evidence[0]["sensor"] == "RG-V"
    # Judged again with no new rain: the level stays (levels never fall by themselves).
    _judge(app)
    db.session.expire_all()
    assert _alerts("flash_flood")[0].level == "evacuate"
    detail = client.get(f"/api/v1/alerts/{alert.id}", headers=bearer("viewer")).json
    assert [h["level"] for h in detail["history"]][:2] == ["prepare", "evacuate"]
    assert detail["subject"] == {"type": "village", "code": "V-1", "name": "青山村"}
    assert detail["cap"]["status"] == "draft"
    # Every transition is in the audit chain.
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "alert")).all()
    assert "alert.raised" in actions and "alert.upgraded" in actions


def test_a_pass_for_a_gauges_readings_upgrades_the_alert_it_raised(app, client, village):
    """The readings' path judges only that gauge's subjects, with their active alerts: a pass
    that did not see them would try to raise a second alert instead of upgrading the first."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [1.8] * 35, now)
    evaluator = Evaluator(app, service.announce)
    gauge = db.session.scalar(select(Sensor.id).where(Sensor.code == "RG-V"))
    evaluator.run(set(), quiet={gauge})  # a dry reading, no alert active: nothing to judge
    assert evaluator.passes == 0
    evaluator.run({gauge})
    assert [a.level for a in _alerts("flash_flood")] == ["prepare"]
    # Its own raise drops the kept list of alerted subjects: the next dry reading is judged.
    evaluator.run(set(), quiet={gauge})
    assert evaluator.passes == 2
    _rain(client, village, [22.5, 22.5], now + timedelta(minutes=2), step_min=1)
    evaluator.run({gauge})
    db.session.expire_all()
    assert [(a.level, a.state) for a in _alerts("flash_flood")] == [("evacuate", "raised")]
    evaluator.run(set(), quiet={gauge})  # a dry reading: judged, since an alert is active
    db.session.expire_all()
    assert [(a.level, a.state) for a in _alerts("flash_flood")] == [("evacuate", "raised")]


def test_people_act_on_alerts_by_role_and_closed_alerts_refuse(app, client, village, bearer):
    now = datetime.now(UTC).replace(microsecond=0)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [3.0] * 35, now)
    _judge(app)
    alert = _alerts("flash_flood")[0]
    viewer, dispatcher, commander = bearer("viewer"), bearer("dispatcher"), bearer("commander")
    assert client.post(f"/api/v1/alerts/{alert.id}/ack", headers=viewer).status_code == 403
    acked = client.post(f"/api/v1/alerts/{alert.id}/ack", json={"note": "seen"},
                        headers=dispatcher)
    assert acked.status_code == 200 and acked.json["state"] == "acknowledged"
    assert client.post(f"/api/v1/alerts/{alert.id}/approve",
                       headers=dispatcher).status_code == 403
    assert client.post(f"/api/v1/alerts/{alert.id}/publish",
                       headers=commander).json["error"] == "not_approved"
    assert client.post(f"/api/v1/alerts/{alert.id}/approve", headers=commander).json[
        "cap"]["status"] == "approved"
    assert client.post(f"/api/v1/alerts/{alert.id}/publish", headers=commander).json[
        "cap"]["status"] == "published"
    no_reason = client.post(f"/api/v1/alerts/{alert.id}/clear", json={}, headers=commander)
    assert no_reason.status_code == 400
    cleared = client.post(f"/api/v1/alerts/{alert.id}/clear",
                          json={"reason": "rain stopped, river falling"}, headers=commander)
    assert cleared.status_code == 200 and cleared.json["state"] == "cleared"
    assert db.session.scalar(select(Village.warning_level).where(Village.code == "V-1")) \
        == "none"
    again = client.post(f"/api/v1/alerts/{alert.id}/ack", headers=dispatcher)
    assert (again.status_code, again.json["error"]) == (409, "alert_closed")
    # The CAP messages: Alert, then the AllClear Update referencing it, published at once
    # (the warning was public); each valid against the CAP 1.2 schema.
    messages = client.get(f"/api/v1/alerts/{alert.id}/cap", headers=viewer).json["items"]
    assert [(m["msg_type"], m["response"], m["status"]) for m in messages] == [
        ("Alert", "", "published"), ("Update", "AllClear", "published")]
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    for m in messages:
        schema.assertValid(etree.fromstring(m["xml"].encode()))
    assert messages[0]["identifier"] in messages[1]["xml"]
    feed = client.get("/api/v1/alerts.atom", headers=viewer)
    assert feed.status_code == 200 and feed.data.count(b"<entry>") == 2
    latest = client.get(f"/api/v1/alerts/{alert.id}.cap", headers=viewer)
    assert latest.mimetype == "application/cap+xml" and b"AllClear" in latest.data


def test_a_replayed_old_storm_never_raises_again(app, client, village):
    now = datetime.now(UTC).replace(microsecond=0)
    # Yesterday's storm arrives late (a gateway's backlog): windows ending now hold none of it.
    _rain(client, village, [5.0] * 36, now - timedelta(hours=20))
    _rain(client, village, [0.0] * 72, now)
    _judge(app)
    assert _alerts("flash_flood") == []


def test_a_silent_gauge_is_missing_data_not_zero_rain(app, client, village):
    _judge(app)
    data = _alerts("data")
    assert [(a.level, a.subject_code) for a in data] == [("missing", "V-1")]
    assert set(data[0].rule["windows"]) == {"1h", "3h", "6h"}
    assert _alerts("flash_flood") == []


def _judge_at(app, now: datetime) -> service.Changes:
    """One pass of the rules with the clock at `now` (time passing, without waiting)."""
    from alerts.evaluate import build_index, evaluate

    with db.transaction() as s:
        index = build_index(s, 5000)
        changes = evaluate(s, app, index, {}, None, now)
        changes.extend(service.escalate_due(s, now))
        service.prepare_announcement(s, changes)
    service.announce(changes)
    return changes


def test_unacknowledged_alerts_escalate_to_the_county_and_ack_stops_it(app, client, village):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [3.0] * 35, now)  # 105 mm in 3 h: evacuate
    _judge(app)
    alert = _alerts("flash_flood")[0]
    assert alert.level == "evacuate" and alert.escalation_due_at is not None
    raised = alert.level_at
    _judge_at(app, raised + timedelta(minutes=5, seconds=1))
    db.session.expire_all()
    alert = _alerts("flash_flood")[0]
    assert (alert.state, alert.escalation_step) == ("escalated", 1)
    # The hub was down past the next two steps: each is taken once, the county last.
    _judge_at(app, raised + timedelta(minutes=16))
    _judge_at(app, raised + timedelta(minutes=17))
    db.session.expire_all()
    alert = _alerts("flash_flood")[0]
    assert alert.escalation_step == 3 and alert.escalation_due_at is None
    steps = [h for h in service.describe(db.session, alert)["history"]
             if h["state"] == "escalated" and h["by"] == "hub"]
    # Three steps, the county last (乡呼县应, in either language), and no county webhook set.
    assert "乡呼县应" in steps[2]["note"] and "county_webhook" in steps[3]["note"]


def test_acknowledging_stops_escalation(app, client, village, bearer):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [3.0] * 35, now)
    _judge(app)
    alert = _alerts("flash_flood")[0]
    client.post(f"/api/v1/alerts/{alert.id}/ack", headers=bearer("dispatcher"))
    _judge_at(app, alert.level_at + timedelta(hours=1))
    db.session.expire_all()
    alert = _alerts("flash_flood")[0]
    assert (alert.state, alert.escalation_step) == ("acknowledged", 0)


def test_an_alert_clears_itself_after_the_hold_time(app, client, village):
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    # A storm 12 to 9 hours ago, then nine dry hours of 0 mm reports (the gauge kept talking).
    _rain(client, village, [0.0] * 36, t - timedelta(hours=12))
    _rain(client, village, [1.8] * 35, t - timedelta(hours=9))
    _rain(client, village, [0.0] * 108, t)
    _judge_at(app, t - timedelta(hours=9))
    assert _alerts("flash_flood")[0].level == "prepare"
    # Every window dry and complete: the hold clock starts ...
    _judge_at(app, t - timedelta(hours=2))
    db.session.expire_all()
    alert = _alerts("flash_flood")[0]
    assert alert.active_key is not None and alert.below_since is not None
    # ... and an hour below the lowest level clears it, and the village's warning.
    _judge_at(app, t - timedelta(minutes=58))
    db.session.expire_all()
    alert = _alerts("flash_flood")[0]
    assert alert.state == "cleared" and alert.active_key is None
    assert db.session.scalar(select(Village.warning_level).where(Village.code == "V-1")) \
        == "none"


@pytest.mark.parametrize(("table", "cells"), [
    # A gap: the normal row has two numbers for three windows.
    ({**WORKED, "prepare": {**WORKED["prepare"], "normal": [40, 65]}}, {"prepare.normal[2]"}),
    ({**WORKED, "evacuate": {**WORKED["evacuate"], "dry": [50, -1, 105]}},
     {"evacuate.dry[1]"}),
    # Not increasing along the windows.
    ({**WORKED, "prepare": {**WORKED["prepare"], "wet": [35, 30, 90]}}, {"prepare.wet[1]"}),
    # Evacuate below prepare.
    ({**WORKED, "evacuate": {**WORKED["evacuate"], "normal": [39, 70, 100]}},
     {"evacuate.normal[0]"}),
    ({**WORKED, "gauges": ["RG-NOPE"]}, {"gauges[0]"}),
])
def test_bad_threshold_tables_are_refused_naming_each_cell(client, village, bearer, table,
                                                           cells):
    answer = client.put("/api/v1/villages/V-1/thresholds", json=table,
                        headers=bearer("dispatcher"))
    assert answer.status_code == 422 and answer.json["error"] == "bad_thresholds"
    assert cells <= {c["path"] for c in answer.json["cells"]}, answer.json


def test_wet_above_dry_is_refused_and_a_good_table_is_audited(client, village, bearer):
    wet_above_dry = {**WORKED, "prepare": {**WORKED["prepare"], "wet": [46, 70, 100]}}
    answer = client.put("/api/v1/villages/V-1/thresholds", json=wet_above_dry,
                        headers=bearer("dispatcher"))
    assert answer.status_code == 422
    assert any(c["path"].startswith("prepare.") for c in answer.json["cells"])
    assert client.put("/api/v1/villages/V-1/thresholds", json=WORKED,
                      headers=bearer("viewer")).status_code == 403
    good = client.put("/api/v1/villages/V-1/thresholds", json=WORKED,
                      headers=bearer("dispatcher"))
    assert good.status_code == 200, good.json
    assert client.get("/api/v1/villages/V-1/thresholds", headers=bearer("viewer")).json[
        "windows_h"] == [1, 3, 6]
    assert db.session.scalar(select(AuditEntry.action).where(
        AuditEntry.action == "thresholds.village")) == "thresholds.village"


def test_threshold_csv_import_is_all_or_nothing(client, village, bearer):
    rows = ["village,level,soil,window_h,mm"]
    for level, table in (("prepare", WORKED["prepare"]), ("evacuate", WORKED["evacuate"])):
        for soil, values in table.items():
            rows += [f"V-1,{level},{soil},{w},{mm}" for w, mm in zip((1, 3, 6), values,
                                                                      strict=True)]
    good = client.post("/api/v1/thresholds/import", data="\n".join(rows),
                       content_type="text/csv", headers=bearer("dispatcher"))
    assert good.status_code == 200 and good.json["imported"] == ["V-1"], good.json
    bad = client.post("/api/v1/thresholds/import", data="\n".join(rows + ["V-9,prepare,dry,1,x"]),
                      content_type="text/csv", headers=bearer("dispatcher"))
    assert bad.status_code == 422 and any("line" in c["path"] for c in bad.json["cells"])


def test_the_office_hears_alerts_live_and_acknowledges_over_the_socket(app, client, village,
                                                                        login, sio):
    from dispatch.core.realtime import NAMESPACE

    login("dispatcher")
    office = sio()
    office.get_received(NAMESPACE)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    # One report of 45 mm is beyond the heaviest 5-minute rain: QC flags it suspect, and a
    # suspect reading still counts (DESIGN §6: only fail and missing are not data).
    _rain(client, village, [0.0] * 34 + [45.0], now)
    _judge(app)
    events = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "alert"]
    raised = [e for e in events if e["event"] == "raised" and e["alert"]["kind"] == "flash_flood"]
    assert raised and raised[0]["alert"]["level"] == "evacuate" and raised[0]["id"]
    alert_id = raised[0]["alert"]["id"]
    assert office.emit("ack_alert", {"id": alert_id, "note": "on it"}, namespace=NAMESPACE,
                       callback=True) == {"ok": True}
    assert office.emit("ack_alert", {"id": "x"}, namespace=NAMESPACE,
                       callback=True)["error"] == "bad_request"
    acked = [e["args"][0] for e in office.get_received(NAMESPACE) if e["name"] == "alert"]
    assert [e["event"] for e in acked] == ["acknowledged"]
    db.session.expire_all()
    assert db.session.get(Alert, alert_id).acknowledged_by


def test_a_cleared_alert_is_not_raised_again_until_the_rule_rearms(app, client, village, bearer):
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    _rain(client, village, [0.0] * 36, now - timedelta(hours=3))
    _rain(client, village, [1.8] * 35, now)
    _judge(app)
    first = _alerts("flash_flood")[0]
    assert first.level == "prepare"
    # The commander knows better (the gauge's funnel was flushed with a bucket): cleared while
    # the rule still sees 61 mm. The next passes raise nothing at prepare ...
    client.post(f"/api/v1/alerts/{first.id}/clear", json={"reason": "gauge was flushed"},
                headers=bearer("commander"))
    _judge(app)
    _judge(app)
    db.session.expire_all()
    assert [(a.id, a.state) for a in _alerts("flash_flood")] == [(first.id, "cleared")]
    # ... but a higher level is new danger: raised at once.
    _rain(client, village, [22.5, 22.5], now + timedelta(minutes=2), step_min=1)
    _judge(app)
    db.session.expire_all()
    flood = _alerts("flash_flood")
    assert [(a.level, a.state) for a in flood] == [("prepare", "cleared"),
                                                     ("evacuate", "raised")]
