"""The dead-letter office's API: filters, paging, the per-reason summary, parameter checks, and
payloads shown as text (cut at 4 KiB, invalid bytes marked), on both databases."""

import json
from datetime import datetime

import pytest
from sqlalchemy import delete, func, select

from dispatch.core.db import db
from dispatch.core.models import AuditEntry
from telemetry.metrics import LETTER_REASONS
from telemetry.models import DeadLetter, Reading
from tests.telemetry.http_ingest import post, ts


@pytest.fixture
def office(bearer):
    return bearer("dispatcher")


@pytest.fixture
def letters(client, gateways):
    """Dead letters of several reasons from both gateways; returns the conflict's reading time."""
    when = ts(3)
    post(client, gateways["GW-A"], b"not json")                                 # bad_json
    post(client, gateways["GW-A"], {"readings": [
        {"sensor": "RG-X", "ts": ts(10), "value": 1.0},                         # unknown_sensor
        {"sensor": "RG-A", "ts": ts(9), "value": 900.0},                        # out_of_range
        {"sensor": "RG-A", "ts": when, "value": 2.0}]})
    post(client, gateways["GW-A"], {"sensor": "RG-A", "ts": when, "value": 2.5})  # conflict
    post(client, gateways["GW-B"], {"sensor": "RG-Y", "ts": ts(8), "value": 1})   # unknown_sensor
    return when


def listing(client, headers, query: str = "") -> dict:
    response = client.get("/api/v1/dead-letters" + query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_filters_by_reason_gateway_sensor_and_resolution(client, letters, office):
    everything = listing(client, office)["items"]
    assert [d["reason"] for d in everything] == [
        "unknown_sensor", "conflict", "out_of_range", "unknown_sensor", "bad_json"]
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    assert [d["sensor"] for d in listing(client, office, "?reason=unknown_sensor")["items"]] == [
        "RG-Y", "RG-X"]
    assert {d["gateway"] for d in listing(client, office, "?gateway=GW-B")["items"]} == {"GW-B"}
    by_sensor = listing(client, office, "?sensor=RG-A")["items"]
    assert [d["reason"] for d in by_sensor] == ["conflict", "out_of_range"]
    assert listing(client, office, "?gateway=GW-B&reason=bad_json")["items"] == []

    conflict = by_sensor[0]
    assert conflict["resolved"] is False and conflict["resolved_by"] is None
    done = client.post(f"/api/v1/dead-letters/{conflict['id']}/reprocess",
                       json={"action": "keep"}, headers=office)
    assert done.status_code == 200, done.json
    open_ = listing(client, office, "?resolved=0")["items"]
    assert conflict["id"] not in [d["id"] for d in open_] and len(open_) == 4
    [settled] = listing(client, office, "?resolved=1")["items"]
    assert settled["id"] == conflict["id"] and settled["resolved"] is True
    assert settled["resolution"] == "kept"
    assert settled["resolved_by"].startswith("user:dispatcher-")
    datetime.fromisoformat(settled["resolved_at"])


def test_paging_with_next_before(client, letters, office):
    ids = [d["id"] for d in listing(client, office)["items"]]
    first = listing(client, office, "?limit=2")
    assert [d["id"] for d in first["items"]] == ids[:2] and first["next_before"] == ids[1]
    second = listing(client, office, f"?limit=2&before={first['next_before']}")
    assert [d["id"] for d in second["items"]] == ids[2:4]
    third = listing(client, office, f"?limit=2&before={second['next_before']}")
    assert [d["id"] for d in third["items"]] == ids[4:] and third["next_before"] is None
    exact = listing(client, office, f"?limit={len(ids)}")
    assert exact["next_before"] is None  # nothing older: no cursor, even when the page is full


def test_summary_counts_per_reason(client, letters, office):
    summary = client.get("/api/v1/dead-letters/summary", headers=office).json
    assert set(summary["reasons"]) == set(LETTER_REASONS)  # every chip, zeros included
    assert summary["reasons"]["unknown_sensor"] == {"unresolved": 2, "total": 2}
    assert summary["reasons"]["bad_json"] == {"unresolved": 1, "total": 1}
    assert summary["reasons"]["too_old"] == {"unresolved": 0, "total": 0}
    assert summary["total"] == 5 and summary["unresolved"] == 5
    newest = db.session.scalar(select(DeadLetter.id).order_by(DeadLetter.id.desc()))
    assert summary["latest_id"] == newest

    conflict = listing(client, office, "?reason=conflict")["items"][0]["id"]
    client.post(f"/api/v1/dead-letters/{conflict}/reprocess", json={"action": "replace"},
                headers=office)
    after = client.get("/api/v1/dead-letters/summary", headers=office).json
    assert after["reasons"]["conflict"] == {"unresolved": 0, "total": 1}
    assert after["unresolved"] == 4 and after["total"] == 5
    gateway_b = client.get("/api/v1/dead-letters/summary?gateway=GW-B", headers=office).json
    assert gateway_b["total"] == 1 and gateway_b["reasons"]["unknown_sensor"]["total"] == 1


@pytest.mark.parametrize(("query", "parameter"), [
    ("?limit=abc", "limit"), ("?limit=0", "limit"), ("?limit=1001", "limit"),
    ("?limit=-5", "limit"), ("?limit=%EF%BC%95", "limit"),  # a full-width digit five
    ("?before=x", "before"), ("?reason=nonsense", "reason"), ("?reason=CONFLICT", "reason"),
    ("?resolved=yes", "resolved"),
])
def test_bad_parameters_are_named(client, gateways, office, query, parameter):
    response = client.get("/api/v1/dead-letters" + query, headers=office)
    assert response.status_code == 400
    assert response.json["error"] == "bad_parameter" and response.json["parameter"] == parameter
    assert parameter in response.json["message"]


def test_summary_checks_resolved_too(client, office):
    response = client.get("/api/v1/dead-letters/summary?resolved=2", headers=office)
    assert response.status_code == 400 and response.json["parameter"] == "resolved"


def test_payload_is_text_cut_at_4_kib_with_invalid_bytes_marked(client, gateways, office):
    post(client, gateways["GW-A"], b"\xff\xfe<b>\x00</b>")                          # bad_encoding
    post(client, gateways["GW-A"], b'{"sensor": "RG-A", "value": "' + "雨".encode() * 3000)
    cut, invalid = listing(client, office)["items"]
    assert invalid["reason"] == "bad_encoding" and invalid["payload_utf8"] is False
    assert invalid["payload"] == "\ufffd\ufffd<b>\x00</b>" and invalid["payload_bytes"] == 10
    assert invalid["payload_truncated"] is False
    assert cut["payload_bytes"] == 29 + 9000 and cut["payload_truncated"] is True
    # 4,096 bytes end inside a three-byte character: it is dropped, not shown as invalid.
    assert cut["payload_utf8"] is True and cut["payload"].endswith("雨")
    assert len(cut["payload"].encode()) == 29 + (4096 - 29) // 3 * 3


def test_roles(client, letters, bearer):
    for role in ("commander", "dispatcher", "viewer"):
        assert client.get("/api/v1/dead-letters/summary",
                          headers=bearer(role)).status_code == 200
    for role in ("team_leader", "keeper"):
        assert client.get("/api/v1/dead-letters/summary",
                          headers=bearer(role)).status_code == 403
    letter = listing(client, bearer("viewer"))["items"][0]["id"]
    refused = client.post(f"/api/v1/dead-letters/{letter}/reprocess",
                          json={"action": "reprocess"}, headers=bearer("viewer"))
    assert refused.status_code == 403


def test_every_reason_has_a_label():
    from telemetry.pages import DEAD_LETTER_REASONS

    # The chips' order is DESIGN's, then the per-gateway quota summaries.
    assert list(DEAD_LETTER_REASONS) == [*LETTER_REASONS, "over_quota"]


@pytest.mark.parametrize(("role", "status", "acts"), [
    ("commander", 200, True), ("dispatcher", 200, True), ("viewer", 200, False),
    ("team_leader", 403, False), ("keeper", 403, False),
])
def test_page_by_role(client, login, role, status, acts):
    login(role)
    page = client.get("/dead-letters")
    assert page.status_code == status
    home = client.get("/").get_data(as_text=True)
    assert ('href="/dead-letters"' in home) == (status == 200)  # the nav link only where it opens
    if status != 200:
        return
    html = page.get_data(as_text=True)
    config = json.loads(html.split('id="dead-letters-config">')[1].split("</script>")[0])
    assert config["canAct"] is acts
    assert ('id="dl-readonly"' in html) is not acts
    nav = html.split('class="mainnav"')[1].split("</nav>")[0]
    assert 'href="/dead-letters"\n           aria-current="page"' in nav


def _letter(reason: str) -> DeadLetter:
    return db.session.scalar(select(DeadLetter).where(DeadLetter.reason == reason)
                             .order_by(DeadLetter.id))


def resolve(client, headers, letter_id: int, action: str):
    return client.post(f"/api/v1/dead-letters/{letter_id}/reprocess", json={"action": action},
                       headers=headers)


def test_a_reprocess_still_refused_writes_no_second_letter(client, letters, office):
    unknown = _letter("unknown_sensor")
    before = db.session.scalar(select(func.count(DeadLetter.id)))
    answer = resolve(client, office, unknown.id, "reprocess")
    assert answer.status_code == 200
    assert answer.json["resolution"] is None
    assert answer.json["rejected"] == [{"index": None, "reason": "unknown_sensor"}]
    db.session.expire_all()
    assert db.session.scalar(select(func.count(DeadLetter.id))) == before


def test_hopeless_letters_are_dismissed_and_audited(client, letters, office):
    bad = _letter("bad_json")
    assert resolve(client, office, bad.id, "reprocess").json["resolution"] is None
    answer = resolve(client, office, bad.id, "dismiss")
    assert answer.status_code == 200 and answer.json["resolution"] == "dismissed"
    assert resolve(client, office, bad.id, "dismiss").status_code == 409
    assert db.session.scalar(select(AuditEntry.actor).where(
        AuditEntry.action == "dead_letter.resolve")).startswith("user:dispatcher")


def test_replacing_a_conflict_updates_the_sensors_last_value(client, letters, office):
    conflict = _letter("conflict")
    assert client.get("/api/v1/sensors/RG-A", headers=office).json["last_value"] == 2.0
    assert resolve(client, office, conflict.id, "replace").json["resolution"] == "replaced"
    assert client.get("/api/v1/sensors/RG-A", headers=office).json["last_value"] == 2.5
    items = client.get("/api/v1/sensors/RG-A/readings", headers=office).json["items"]
    assert [i["value"] for i in items] == [2.5]
    assert client.get("/api/v1/sensors/RG-A/sums",
                      headers=office).json["windows"]["10m"]["mm"] == 2.5


def test_replacing_a_pruned_reading_says_so(client, letters, office):
    conflict = _letter("conflict")
    with db.transaction() as s:
        s.execute(delete(Reading))
    answer = resolve(client, office, conflict.id, "replace")
    assert answer.status_code == 409 and answer.json["error"] == "gone"
    assert "dismiss" in answer.json["message"]


def test_a_batch_items_letter_keeps_that_item_alone_and_can_be_reprocessed(client, gateways,
                                                                            office):
    # Each rejected item kept its whole batch: 1,000 unknown sensors in a 475 KiB batch wrote
    # 1,000 copies of it (488 MB). Now each letter holds its own item.
    items = [{"sensor": "RG-A", "ts": ts(30 - i), "value": 1.0} for i in range(50)]
    items[7] = {"sensor": "RG-NEW", "ts": ts(40), "value": 4.5, "note": "雨"}
    post(client, gateways["GW-A"], {"readings": items})
    letter = _letter("unknown_sensor")
    assert letter.item == 7
    assert json.loads(letter.payload) == items[7]
    shown = listing(client, office, "?reason=unknown_sensor")["items"][0]
    assert json.loads(shown["payload"]) == items[7]

    registered = client.post("/api/v1/sensors", headers=office, json={
        "code": "RG-NEW", "kind": "rain_gauge", "unit": "mm", "gateway": "GW-A",
        "lon": 109.05, "lat": 33.15})
    assert registered.status_code == 201, registered.json
    answer = resolve(client, office, letter.id, "reprocess")
    assert answer.status_code == 200 and answer.json["resolution"] == "reprocessed"
    assert answer.json["stored"] == 1
