"""Health, readiness and metrics."""

from datetime import timedelta

from dispatch import create_app
from dispatch.core import auth
from dispatch.core.db import db, utcnow
from dispatch.core.models import Heartbeat
from tests.conftest import PASSWORD

METRIC_NAMES = (
    "rescuehub_readings_received_total", "rescuehub_readings_stored_total",
    "rescuehub_readings_duplicate_total", 'rescuehub_readings_rejected_total{reason="bad_json"}',
    'rescuehub_readings_rejected_total{reason="conflict"}', "rescuehub_ingest_queue_depth",
    "rescuehub_mqtt_connected",
)


def _viewer_token() -> str:
    with db.transaction() as s:
        user, _ = auth.create_user(s, "prometheus", "viewer", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 600)
    return token


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_mqtt_down_without_worker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "up", "mqtt": "down"}


def test_readyz_reads_worker_heartbeat(client):
    with db.transaction() as s:
        s.add(Heartbeat(name="worker", at=utcnow(), mqtt_connected=True, pid=1))
    assert client.get("/readyz").status_code == 200
    with db.transaction() as s:
        s.get(Heartbeat, "worker").at = utcnow() - timedelta(minutes=5)
    assert client.get("/readyz").json["checks"]["mqtt"] == "down"


def test_readyz_when_database_is_down(tmp_path):
    app = create_app({"database": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
                      "data": {"dir": str(tmp_path)}})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "down"


def test_metrics_names_and_access(client):
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers={"Authorization": f"Bearer {_viewer_token()}"}
                      ).get_data(as_text=True)
    for name in METRIC_NAMES:
        assert name in text, name
