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
