"""Every API input strict, no 500s (issue #18 §2): one strict JSON reader for every body, ids
past 2^63, times past the calendar's ends, one rule for codes, 405's Allow, gunicorn's own
errors as JSON, and private files in the data directory."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest
import requests
from geoalchemy2.shape import from_shape
from gunicorn.http.errors import (
    InvalidHeader,
    InvalidRequestLine,
    LimitRequestHeaders,
    LimitRequestLine,
)
from shapely.geometry import LineString
from sqlalchemy import select

from dispatch.core import auth, keys, realtime
from dispatch.core.codes import is_code
from dispatch.core.db import db, make_engine
from dispatch.core.server import HubWorker
from maps.models import RoadSegment, Village
from telemetry import service as sensors
from tests.conftest import PASSWORD, csrf_of
from tests.fixtures.hub import start_hub
from tests.maps.test_layers import shelter, square, village

NAN_BODIES = {
    "NaN": b'{"properties": {"elevation_m": NaN}}',
    "Infinity": b'{"properties": {"elevation_m": Infinity}}',
    "-Infinity": b'{"properties": {"elevation_m": -Infinity}}',
    "1e400": b'{"properties": {"elevation_m": 1e400}}',
    "-1e400": b'{"properties": {"elevation_m": -1e400}}',
    "integer of 400 digits": b'{"properties": {"population": 1' + b"0" * 400 + b"}}",
}
BAD_BODIES = {
    **NAN_BODIES,
    "duplicate key": b'{"properties": {"population": 1, "population": 2}}',
    "nested 1,000 deep": b'{"properties": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "nested 65 deep": b"[" * 65 + b"]" * 65,
    "not UTF-8": b'{"properties": {"name_zh": "\xff"}}',
    "trailing text": b'{"properties": {}} {}',
    "NUL escape": b'{"username": "a\\u0000b", "password": "x"}',
    "lone surrogate": b'{"username": "\\ud800", "password": "x"}',
}
# Every API endpoint that reads a JSON body (the objects need not exist: the body is read first).
JSON_ENDPOINTS = [
    ("POST", "/api/v1/villages"), ("PATCH", "/api/v1/villages/V1"),
    ("POST", "/api/v1/shelters"), ("PATCH", "/api/v1/shelters/S1"),
    ("POST", "/api/v1/hazards"), ("PATCH", "/api/v1/hazards/H1"),
    ("PATCH", "/api/v1/roads/R1"),
    ("POST", "/api/v1/sensors"), ("PATCH", "/api/v1/sensors/RG-1"),
    ("POST", "/api/v1/dead-letters/1/reprocess"),
    ("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/password"),
]


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


def send(client, method: str, url: str, raw: bytes, headers: dict):
    return client.open(url, method=method, data=raw,
                       headers={**headers, "Content-Type": "application/json"})


def strictly_serialisable(payload) -> bool:
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError:
        return False
    return True


@pytest.fixture
def road(app):
    with db.transaction() as s:
        s.add(RoadSegment(code="R1", geometry=from_shape(LineString([(109, 33), (109.01, 33)]),
                                                         srid=4326),
                          road_class="county", length_m=930.0, speed_kmh=40.0, source=1,
                          target=2))
    return "R1"


# --- one strict JSON reader -------------------------------------------------------------------

def test_a_village_takes_no_nan_nor_infinity_and_no_map_gets_one(client, editor):
    assert client.post("/api/v1/villages", json=village("V1", 109.0, 33.0, elevation_m=420.5),
                       headers=editor).status_code == 201
    for name, raw in NAN_BODIES.items():
        response = send(client, "PATCH", "/api/v1/villages/V1", raw, editor)
        assert response.status_code == 400, (name, response.json)
        assert response.json["error"] == "bad_json" and response.json["message"]
    assert db.session.scalar(select(Village.elevation_m)) == 420.5
    assert db.session.scalar(select(Village.population)) == 500
    # The replay buffer every map reconnects from: a bare NaN there broke each open map.
    with realtime._recent_lock:
        payloads = [e.payload for e in realtime._recent]
    assert all(strictly_serialisable(p) for p in payloads)


def test_a_road_speed_of_nan_is_a_400_not_a_500(client, editor, road):
    response = send(client, "PATCH", f"/api/v1/roads/{road}",
                    b'{"speed_kmh": NaN, "is_open": false}', editor)
    assert response.status_code == 400 and response.json["error"] == "bad_json"
    assert db.session.scalar(select(RoadSegment.speed_kmh)) == 40.0
    assert send(client, "PATCH", f"/api/v1/roads/{road}", b'{"speed_kmh": 30}',
                editor).status_code == 200


def test_every_json_endpoint_reads_bodies_strictly(client, editor):
    wrong = []
    for method, url in JSON_ENDPOINTS:
        for name, raw in BAD_BODIES.items():
            response = send(client, method, url, raw, editor)
            if response.status_code != 400 or response.json.get("error") != "bad_json" \
                    or not response.json.get("message"):
                wrong.append((method, url, name, response.status_code, response.json))
    assert wrong == []


def test_bad_json_says_why_in_the_language_of_the_request(client, editor):
    chinese = send(client, "PATCH", "/api/v1/villages/V1", NAN_BODIES["NaN"], editor).json
    assert chinese == {"error": "bad_json", "message":
                       "请求正文不是有效的 JSON：NaN 不是 JSON 数字：只能发送有限的数值。"}
    client.get("/lang/en")
    english = send(client, "PATCH", "/api/v1/villages/V1", BAD_BODIES["nested 65 deep"],
                   editor).json
    assert english["message"] == ("The body is not valid JSON: arrays and objects are nested "
                                  "more than 64 deep.")
    duplicate = send(client, "PATCH", "/api/v1/villages/V1", BAD_BODIES["duplicate key"],
                     editor).json
    assert duplicate["message"] == ("The body is not valid JSON: the key “population” appears "
                                    "twice.")


def test_nesting_up_to_64_is_json_and_the_service_judges_it(client, editor):
    within = b'{"properties": {"name_zh": ' + b"[" * 62 + b"]" * 62 + b"}}"
    response = send(client, "PATCH", "/api/v1/villages/V1", within, editor)
    assert response.status_code == 400 and response.json["error"] == "bad_field"


def test_a_body_must_be_sent_as_json(client, editor):
    form = client.post("/api/v1/villages", data=json.dumps(village("V1", 109, 33)),
                       headers={**editor, "Content-Type": "text/plain"})
    assert form.status_code == 415 and form.json["error"] == "unsupported_type"
    # A missing body reaches the service, which says what it wants.
    assert client.post("/api/v1/villages", headers=editor).json["error"] == "bad_feature"
    token = client.post("/api/v1/auth/token", data=b"[1]",
                        headers={"Content-Type": "application/json"})
    assert token.status_code == 400 and token.json["error"] == "bad_json"
    # Optional bodies: the dead-letter action defaults, but a list is no object.
    listed = send(client, "POST", "/api/v1/dead-letters/1/reprocess", b"[]", editor)
    assert listed.status_code == 400 and listed.json["error"] == "bad_json"
    assert client.post("/api/v1/dead-letters/1/reprocess", headers=editor).status_code == 404


def test_good_bodies_still_work_everywhere(client, editor, make_user):
    assert client.post("/api/v1/villages", json=village("V1", 109, 33, elevation_m=1e-300),
                       headers=editor).status_code == 201
    assert client.post("/api/v1/shelters", json=shelter("S1", 109.005, 33.005),
                       headers=editor).status_code == 201
    user = make_user("viewer")
    token = client.post("/api/v1/auth/token", data=json.dumps(
        {"username": user.username, "password": PASSWORD}).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"})
    assert token.status_code == 200
    # A BOM is tolerated (RFC 8259 §8.1), and escaped text that is storable is kept.
    named = send(client, "PATCH", "/api/v1/villages/V1",
                 b'\xef\xbb\xbf{"name_zh": "\\u4e1c\\u6751 \\ud83c\\udf0a"}', editor)
    assert named.status_code == 200 and named.json["properties"]["name"] == "东村 🌊"


# --- ids past 2^63 and times past the calendar --------------------------------------------------

def test_ids_past_a_bigint_are_not_found_or_refused(client, editor):
    for letter in ("9223372036854775808", "99999999999999999999999999", "9" * 5000):
        response = client.post(f"/api/v1/dead-letters/{letter}/reprocess", json={},
                               headers=editor)
        assert response.status_code == 404, (letter[:30], response.json)
    assert client.post("/api/v1/dead-letters/9223372036854775807/reprocess", json={},
                       headers=editor).status_code == 404
    for before in ("9223372036854775808", "1" + "0" * 30, "9" * 5000):
        listing = client.get(f"/api/v1/dead-letters?before={before}", headers=editor)
        assert listing.status_code == 400, (before[:30], listing.json)
        assert (listing.json["error"], listing.json["parameter"]) == ("bad_parameter", "before")
    top = client.get("/api/v1/dead-letters?before=9223372036854775807", headers=editor)
    assert top.status_code == 200 and top.json["items"] == []


@pytest.fixture
def gauge(app):
    with db.transaction() as s:
        auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
        sensors.register(s, {"code": "RG-1", "kind": "rain_gauge", "unit": "mm",
                             "gateway": "GW-1", "lon": 109.05, "lat": 33.15}, actor="test")
    return "RG-1"


EXTREME_TIMES = [
    "until=0001-01-01T00:00:00Z",
    "until=0001-01-01T00:00:00%2B08:00",
    "until=0001-01-01T12:00:00Z",
    "since=0001-01-01T00:00:00%2B08:00",
    "since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59-08:00",
    "until=9999-12-31T23:59:59-08:00",
    "until=9999-12-31T23:59:59Z",
]


def test_times_at_the_ends_of_the_calendar_answer_and_are_empty(client, editor, gauge):
    for series in ("readings", "hourly"):
        for query in EXTREME_TIMES:
            response = client.get(f"/api/v1/sensors/{gauge}/{series}?{query}", headers=editor)
            assert response.status_code == 200, (series, query, response.json)
            assert response.json["items"] == []


def test_since_past_the_calendar_after_until_is_a_clear_400(client, editor, gauge):
    response = client.get(f"/api/v1/sensors/{gauge}/readings?since=9999-12-31T23:59:59-08:00",
                          headers=editor)
    assert response.status_code == 400
    assert (response.json["error"], response.json["parameter"]) == ("bad_parameter", "since")


# --- one rule for codes -----------------------------------------------------------------------

BAD_CODES = {
    "slash": "V/1", "NUL": "V\x001", "control": "V\x071", "newline": "V1\n2",
    "right-to-left override": "V\u202e1", "isolate": "\u2066V1", "zero-width space": "V\u200b1",
    "zero-width joiner": "V\u200d1", "BOM": "\ufeffV1", "Cyrillic A": "\u0410-1",
    "space inside": "V 1", "dot": ".", "dot dot": "..", "too long": "V" * 33,
}


@pytest.mark.parametrize("code", BAD_CODES.values(), ids=BAD_CODES)
def test_the_kernel_code_rule(code):
    assert not is_code(code, 32)
    assert is_code("T000-V001", 32) and not is_code("T000-V001", 8)


def test_codes_are_refused_on_every_registry(client, editor, gauge):
    # NUL never reaches a registry through JSON: the body reader refuses it first (above).
    for name, code in ((n, c) for n, c in BAD_CODES.items() if n != "NUL"):
        bodies = {
            "/api/v1/villages": village(code, 109, 33),
            "/api/v1/shelters": shelter(code, 109, 33),
            "/api/v1/hazards": {"type": "Feature", "geometry": square(109, 33),
                                "properties": {"code": code, "kind": "landslide"}},
            "/api/v1/sensors": {"code": code, "kind": "rain_gauge", "unit": "mm",
                                "gateway": "GW-1", "lon": 109.05, "lat": 33.15},
        }
        for url, body in bodies.items():
            if url == "/api/v1/sensors" and name == "too long":
                continue  # sensor codes may be 64 long
            response = client.post(url, json=body, headers=editor)
            assert response.status_code == 400, (name, url, response.json)
            assert (response.json["error"], response.json["field"]) == ("bad_field", "code")
    assert db.session.scalar(select(Village.id)) is None


def test_a_csv_import_with_a_bad_code_is_refused_row_by_row(client, editor):
    text = ("code,name_zh,kind,lon,lat,capacity_day,capacity_night\n"
            "S\u202e1,学校,school,109.0,33.0,10,10\n"
            "S2,学校,school,109.0,33.0,10,10\n"
            "S\x003,学校,school,109.0,33.0,10,10\n")
    response = client.post("/api/v1/shelters/import", data=text.encode("utf-8"),
                           headers={**editor, "Content-Type": "text/csv"})
    assert response.status_code == 422, response.json
    assert [row["line"] for row in response.json["rows"]] == [2, 4]


def test_well_formed_codes_are_kept(client, editor):
    for code in ("V1", "T000-V001", "610102001001", "a.b_c-D"):
        assert client.post("/api/v1/villages", json=village(code, 109, 33),
                           headers=editor).status_code == 201


# --- HTTP details -----------------------------------------------------------------------------

def test_405_names_the_methods_the_address_takes(client, editor):
    response = client.put("/api/v1/villages", headers=editor)
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    page = client.delete("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]


class _Log:
    def __init__(self):
        self.lines = []

    def warning(self, msg, *args):
        self.lines.append(msg % args if args else msg)

    def exception(self, msg, *args):
        self.lines.append(msg % args if args else msg)

    debug = warning


def _worker_answer(exc: Exception, app=None) -> tuple[bytes, dict]:
    worker = HubWorker.__new__(HubWorker)  # handle_error needs only its log (and the app)
    worker.log = _Log()
    if app is not None:
        worker.wsgi = app
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker.handle_error(None, ours, ("127.0.0.1", 5555), exc)
        ours.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := theirs.recv(65536):
            raw += chunk
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"Content-Type: application/json" in head.split(b"\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


@pytest.mark.parametrize(("exc", "status", "code"), [
    (LimitRequestLine(9000, 4094), b"HTTP/1.1 414 URI Too Long", "uri_too_long"),
    (LimitRequestHeaders("limit request headers fields"),
     b"HTTP/1.1 431 Request Header Fields Too Large", "headers_too_large"),
    (InvalidRequestLine("GET / HTTP/1.1 x"), b"HTTP/1.1 400 Bad Request", "bad_request"),
    (InvalidHeader("X-Broken"), b"HTTP/1.1 400 Bad Request", "bad_request"),
    (RuntimeError("boom"), b"HTTP/1.1 500 Internal Server Error", "internal_error"),
])
def test_the_workers_own_errors_are_json(exc, status, code):
    line, body = _worker_answer(exc)
    assert line == status
    assert body["error"] == code and body["message"]


def test_the_workers_own_errors_speak_the_hubs_language(app):
    _, body = _worker_answer(LimitRequestLine(9000, 4094), app)
    assert body["message"] == "请求地址太长：较长的内容请放在请求正文中发送。"


# --- private files ----------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_spatialite_file_is_private(tmp_path):
    path = tmp_path / "var" / "rescuehub.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE t (x)")
        assert _mode(path.with_name("rescuehub.sqlite-wal")) == 0o600
    engine.dispose()
    assert _mode(path) == 0o600
    # One made readable by an older hub (or a copy) is tightened when the hub opens it.
    path.chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600


def test_the_secrets_folder_and_files_are_private(tmp_path):
    keys.stored_secret(tmp_path, "secret_key")
    assert _mode(tmp_path / "secrets") == 0o700
    assert _mode(tmp_path / "secrets" / "secret_key") == 0o600
    # Made by hand, restored from a backup, or left by an older hub: tightened on use.
    (tmp_path / "secrets").chmod(0o755)
    (tmp_path / "secrets" / "secret_key").chmod(0o644)
    keys.stored_secret(tmp_path, "secret_key")
    assert _mode(tmp_path / "secrets") == 0o700
    assert _mode(tmp_path / "secrets" / "secret_key") == 0o600
    written = tmp_path / "secrets" / "gateway-GW-1.json"
    written.write_text("{}")
    written.chmod(0o644)
    keys.write_secret(tmp_path, "gateway-GW-1.json", "{}")
    assert _mode(written) == 0o600


@pytest.mark.slow
def test_a_running_hub_answers_json_and_keeps_its_files_private(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    hub = start_hub(data_dir)
    try:
        assert hub.process.poll() is None, hub.output()
        long_uri = requests.get(hub.url + "/api/v1/villages?q=" + "x" * 9000, timeout=10)
        assert long_uri.status_code == 414
        assert long_uri.headers["Content-Type"] == "application/json"
        assert long_uri.json()["error"] == "uri_too_long"
        many = {f"X-Filler-{i}": "x" for i in range(200)}
        headers = requests.get(hub.url + "/healthz", headers=many, timeout=10)
        assert headers.status_code == 431 and headers.json()["error"] == "headers_too_large"
        with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
            answer = raw.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "bad_request"
        assert _mode(data_dir / "rescuehub.sqlite") == 0o600
        assert _mode(data_dir / "secrets") == 0o700
        assert all(_mode(p) == 0o600 for p in (data_dir / "secrets").iterdir())
    finally:
        hub.stop()


def test_nul_in_an_address_or_a_parameter_is_a_400_on_both_databases(client, editor):
    # PostgreSQL text cannot hold NUL: each of these lookups answered 500 on PostGIS.
    for url in ("/api/v1/villages/%00", "/api/v1/sensors/%00", "/api/v1/sensors/%00/readings",
                "/api/v1/sensors?gateway=%00", "/api/v1/sensors?kind=a%00",
                "/api/v1/dead-letters?sensor=%00", "/api/v1/dead-letters/summary?gateway=%00",
                "/api/v1/villages?x%00=1"):
        response = client.get(url, headers=editor)
        assert response.status_code == 400, (url, response.json)
        assert response.json["error"] == "bad_request"
    for method in ("PATCH", "DELETE"):
        assert client.open("/api/v1/roads/R%001", method=method, json={},
                           headers=editor).status_code == 400
    client.get("/login")
    signed_in = client.post("/login", data={"username": "a\x00b", "password": "x",
                                            "csrf_token": csrf_of(client)})
    assert signed_in.status_code == 400
