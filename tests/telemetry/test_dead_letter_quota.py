"""The dead-letter quota: past a gateway's letters or bytes a minute, rejections are counted but
their payloads are not kept; resolved letters are pruned after the retention (both databases,
HTTP and MQTT ingest)."""

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dispatch import create_app
from dispatch.core import auth, metrics
from dispatch.core.db import db
from dispatch.core.runtime import Background
from dispatch.core.settings import SettingsError, load_settings
from dispatch.jobs import SUBSCRIBERS
from telemetry import jobs, service
from telemetry.ingest import Ingest, IngestLimits, Message
from telemetry.models import DeadLetter
from telemetry.quota import HEAD_KEPT, DeadLetterQuota, quota_of
from tests.conftest import empty_tables
from tests.telemetry.http_ingest import post, ts

LETTERS, BYTES = 3, 10_000


@pytest.fixture
def overrides(overrides):
    return {**overrides, "ingest": {"dead_letters_per_minute": LETTERS,
                                    "dead_letter_bytes_per_minute": BYTES}}


@pytest.fixture
def one_window(app):
    """This process's quota with a window longer than any test (no minute boundary mid-test)."""
    quota = quota_of(app)
    quota.window_s = 10**9
    return quota


def dropped_metric(gateway: str, reason: str) -> float:
    return metrics.registry.get_sample_value(
        "rescuehub_dead_letters_dropped_total", {"gateway": gateway, "reason": reason}) or 0.0


def letters(**where) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.id)
    for key, value in where.items():
        query = query.where(getattr(DeadLetter, key) == value)
    return list(db.session.scalars(query))


def test_http_past_the_letter_quota_rejections_are_counted_not_kept(client, gateways, bearer,
                                                                    one_window):
    before = dropped_metric("GW-A", "bad_json")
    answers = [post(client, gateways["GW-A"], b"{bad json %d" % i + b"x" * 1000)
               for i in range(5)]
    # The gateway is answered the same whether or not the payload was kept.
    assert {(a.status_code, a.json["error"]) for a in answers} == {(400, "bad_json")}
    kept = letters(gateway="GW-A", reason="bad_json")
    assert [d.payload[:11] for d in kept] == [b"{bad json 0", b"{bad json 1", b"{bad json 2"]
    [summary] = letters(reason="over_quota")
    assert (summary.gateway, summary.dropped_count, summary.dropped_bytes) == ("GW-A", 2, 2022)
    assert summary.payload == (b"{bad json 3" + b"x" * 1000)[:HEAD_KEPT]
    assert "bad_json 2" in summary.detail
    assert dropped_metric("GW-A", "bad_json") - before == 2
    # Another gateway's quota is its own.
    post(client, gateways["GW-B"], b"not json")
    assert len(letters(gateway="GW-B", reason="bad_json")) == 1

    office = bearer("dispatcher")
    listed = client.get("/api/v1/dead-letters?reason=over_quota", headers=office).json["items"]
    assert [(d["gateway"], d["dropped_count"], d["dropped_bytes"]) for d in listed] == [
        ("GW-A", 2, 2022)]
    states = {g["code"]: g["dead_letters"]
              for g in client.get("/api/v1/gateways", headers=office).json["items"]}
    assert states["GW-A"]["over_quota"] is True and states["GW-A"]["dropped"] == 2
    assert states["GW-B"] == {"over_quota": False, "dropped": 0, "dropped_since": None}


def test_http_byte_quota_and_one_summary_per_gateway_and_window(client, gateways, one_window):
    for _ in range(4):
        post(client, gateways["GW-A"], b"[" + b"1" * 3999)   # 4,000 bytes each
    assert len(letters(reason="bad_json")) == 2                 # 8,000 of 10,000 bytes
    [summary] = letters(reason="over_quota")
    assert (summary.dropped_count, summary.dropped_bytes) == (2, 8000)


def test_a_batch_of_unknown_sensors_keeps_its_payload_only_up_to_the_quota(client, gateways,
                                                                           one_window):
    """Each rejected reading of a batch keeps the whole message: 1,000 of them once stored
    1,000 copies (one 475 KiB message grew the database by 488 MB)."""
    body = {"readings": [{"sensor": f"RG-X{i}", "ts": ts(5), "value": 1.0} for i in range(30)]}
    answer = post(client, gateways["GW-A"], body)
    assert answer.status_code == 200 and len(answer.json["rejected"]) == 30
    assert len(letters(reason="unknown_sensor")) == LETTERS
    [summary] = letters(reason="over_quota")
    assert summary.dropped_count == 27 and "unknown_sensor 27" in summary.detail


def test_over_quota_letter_can_only_be_dismissed_and_a_new_one_follows(client, gateways, bearer,
                                                                       one_window):
    for _ in range(LETTERS + 1):
        post(client, gateways["GW-A"], b"nope")
    [summary] = letters(reason="over_quota")
    office = bearer("dispatcher")
    url = f"/api/v1/dead-letters/{summary.id}/reprocess"
    refused = client.post(url, json={"action": "reprocess"}, headers=office)
    assert refused.status_code == 400 and refused.json["error"] == "bad_action"
    assert client.post(url, json={"action": "dismiss"}, headers=office).status_code == 200
    post(client, gateways["GW-A"], b"nope")
    db.session.expire_all()
    first, second = letters(reason="over_quota")
    assert first.resolution == "dismissed" and first.dropped_count == 1
    assert second.resolved_at is None and second.dropped_count == 1


def test_the_next_window_keeps_payloads_again(app, gateways):
    quota = DeadLetterQuota(2, 10**6, window_s=60)
    start = datetime(2026, 7, 1, 8, 0, 5, tzinfo=UTC)

    def send(now, n):
        with db.transaction() as s:
            ingest = Ingest(s, IngestLimits(), quota=quota)
            ingest.messages([Message(b"bad", "http", "GW-A", f"m{i}") for i in range(n)],
                            now=now)
            ingest.finish()
        ingest.apply()

    send(start, 3)
    send(start + timedelta(seconds=50), 1)
    send(start + timedelta(seconds=60), 3)
    assert len(letters(reason="bad_json")) == 4
    assert [d.dropped_count for d in letters(reason="over_quota")] == [2, 1]


def test_100_messages_of_500_kib_grow_the_store_by_the_byte_quota_only(app, gateways):
    """The finding: 100 × 500 KiB from one gateway stored 51 MB of payloads. With the default
    quota (2 MiB a minute) what is kept is bounded by it."""
    settings = load_settings()
    quota = DeadLetterQuota(settings.ingest.dead_letters_per_minute,
                            settings.ingest.dead_letter_bytes_per_minute, window_s=10**9)
    now = datetime.now(UTC)
    with db.transaction() as s:
        ingest = Ingest(s, IngestLimits(), quota=quota)
        results = ingest.messages([Message(b"{" + os.urandom(256 * 1024).hex().encode()[1:], "http",
                                           "GW-A", f"m{i}") for i in range(100)], now=now)
        ingest.finish()
    assert [r.rejected for r in results] == [[(None, "bad_json")]] * 100
    kept = db.session.scalar(select(func.sum(func.length(DeadLetter.payload))))
    assert kept <= settings.ingest.dead_letter_bytes_per_minute + HEAD_KEPT
    [summary] = letters(reason="over_quota")
    assert summary.dropped_count == 100 - len(letters(reason="bad_json")) > 90


def test_resolved_letters_are_pruned_after_the_retention(app, gateways):
    now = datetime.now(UTC)
    with db.transaction() as s:
        for age_days, resolved in ((40, True), (40, False), (10, True)):
            s.add(DeadLetter(topic="http", gateway="GW-A", message_id=f"m{age_days}{resolved}",
                             reason="bad_json", payload=b"x", received_at=now - timedelta(
                                 days=age_days + 1),
                             resolved_at=now - timedelta(days=age_days) if resolved else None,
                             resolution="dismissed" if resolved else None))
    with db.transaction() as s:
        assert jobs.prune_resolved_letters(s, now=now, retention_days=30) == 1
    left = {(d.message_id) for d in letters()}
    assert left == {"m40False", "m10True"}


def test_the_prune_job_uses_the_setting(app, gateways):
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(DeadLetter(topic="http", gateway="GW-A", message_id="old", reason="bad_json",
                         payload=b"x", received_at=now - timedelta(days=40),
                         resolved_at=now - timedelta(days=31), resolution="dismissed"))
    jobs.prune_dead_letters()
    assert letters() == []


@pytest.mark.parametrize("name", ["dead_letters_per_minute", "dead_letter_bytes_per_minute",
                                  "dead_letter_retention_days"])
def test_quota_settings_must_be_positive(name):
    with pytest.raises(SettingsError, match=name):
        load_settings({"ingest": {name: 0}}, environ={})


@pytest.fixture
def worker(database_url, broker, tmp_path):
    """The background work (MQTT + the ingest writer process) with a quota of 3 letters."""
    app = create_app({"database": {"url": database_url}, "data": {"dir": str(tmp_path)},
                      "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}", "managed": False,
                               "password": broker.hub_password,
                               "client_id": f"test-worker-{time.monotonic_ns()}"},
                      "ingest": {"dead_letters_per_minute": LETTERS}})
    with app.app_context():
        empty_tables(db.engine)
        with db.transaction() as s:
            auth.create_gateway(s, "GW-A", actor="test", mqtt_hash=str)
            service.register(s, {"code": "RG-A", "kind": "rain_gauge", "unit": "mm",
                                 "gateway": "GW-A", "lon": 109.05, "lat": 33.15}, actor="test")
        db.remove()
    background = Background(app, [], SUBSCRIBERS)
    background.start()
    assert background.mqtt.wait_connected(10)
    yield app
    background.stop()
    with app.app_context():
        db.engine.dispose()


def test_mqtt_past_the_quota_rejections_are_counted_not_kept(worker, broker):
    before = dropped_metric("GW-A", "bad_json")
    password = broker.add_gateway("GW-A")
    gateway = broker.probe("GW-A", password, "GW-A")
    assert not gateway.connect().is_failure
    sent = 10
    for i in range(sent):
        gateway.publish("rescuehub/v1/readings/GW-A", b"{not json %d" % i)
    # A good reading after them: once it is stored, every earlier message was written.
    gateway.publish("rescuehub/v1/readings/GW-A", json.dumps(
        {"sensor": "RG-A", "ts": ts(1), "value": 1.0}).encode())
    deadline = time.monotonic() + 15
    with worker.app_context():
        while True:
            kept = letters(reason="bad_json")
            dropped = sum(d.dropped_count for d in letters(reason="over_quota"))
            if len(kept) + dropped == sent or time.monotonic() > deadline:
                break
            db.remove()
            time.sleep(0.05)
        db.remove()
    # At most one minute boundary falls within the test: at most two windows of 3 letters.
    assert len(kept) + dropped == sent and len(kept) <= 2 * LETTERS
    deadline = time.monotonic() + 5
    while dropped_metric("GW-A", "bad_json") - before < dropped and time.monotonic() < deadline:
        time.sleep(0.05)  # counted by the receiving process after the writer's reply
    assert dropped_metric("GW-A", "bad_json") - before == dropped
