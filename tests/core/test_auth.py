"""Sign-in, tokens, CSRF, rate limit, and the role check on every endpoint."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from dispatch.core import auth
from dispatch.core.auth import access_of
from dispatch.core.choices import Role
from dispatch.core.db import db, utcnow
from dispatch.core.models import ApiToken
from tests.conftest import PASSWORD, csrf_of

ALL_ROLES = [str(r) for r in Role]


def _token_for(role: str) -> str:
    with db.transaction() as s:
        if role == "gateway":
            _, _, token = auth.create_gateway(s, f"GW-{role}", actor="test", mqtt_hash=str)
            return token
        user, _ = auth.create_user(s, f"tok-{role}", role, actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 3600)
        return token


def _concrete(rule: str) -> str:
    def value(m: re.Match) -> str:
        if m[1] == "int":
            return "1"
        return {"code": "en"}.get(m[2], "x")

    return re.sub(r"<(?:([a-z]+):)?([a-z_]+)>", value, rule)


def test_every_view_declares_its_access(app):
    views = app.view_functions
    undeclared = [rule.endpoint for rule in app.url_map.iter_rules()
                  if not rule.endpoint.endswith("static")
                  and access_of(views[rule.endpoint]) is None]
    assert undeclared == []


def test_undeclared_view_is_refused(app, client):
    app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: "secret")
    response = client.get("/api/v1/forgotten")
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_every_role_on_every_endpoint(app, client):
    tokens = {role: _token_for(role) for role in ALL_ROLES}
    checked = 0
    for rule in app.url_map.iter_rules():
        allowed = access_of(app.view_functions[rule.endpoint])
        if rule.endpoint.endswith("static") or allowed == ():
            continue
        path = _concrete(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            anonymous = client.open(path, method=method, headers={"Accept": "application/json"})
            assert anonymous.status_code == 401, (method, path)
            for role, token in tokens.items():
                response = client.open(path, method=method, json={},
                                       headers={"Authorization": f"Bearer {token}"})
                if role in allowed:
                    # Let in, and answered: a 5xx here is a crash, not a pass.
                    assert response.status_code not in (401, 403), (method, path, role)
                    assert response.status_code < 500, (method, path, role, response.text)
                else:
                    assert response.status_code == 403, (method, path, role)
                    assert response.json["error"] == "forbidden"
                checked += 1
    assert checked >= len(ALL_ROLES) * 3


def test_login_page_flow_with_one_time_password(app, client):
    with db.transaction() as s:
        _, one_time = auth.create_user(s, "wang", "dispatcher", actor="test")
    page = client.get("/login")
    assert page.status_code == 200
    csrf = csrf_of(client)
    response = client.post("/login", data={"username": "wang", "password": one_time,
                                           "csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith("/password")
    # Until the one-time password is replaced, nothing else is open.
    assert client.get("/", headers={"Accept": "application/json"}).status_code == 403
    csrf = csrf_of(client)
    short = client.post("/password", data={"new_password": "short", "new_password2": "short",
                                           "csrf_token": csrf})
    assert short.status_code == 200 and b"10" in short.data
    done = client.post("/password", data={"new_password": "a new one 1234",
                                          "new_password2": "a new one 1234",
                                          "csrf_token": csrf_of(client)})
    assert done.status_code == 302
    assert client.get("/").status_code == 200
    me = client.get("/api/v1/me").json
    assert me == {"kind": "user", "name": "wang", "role": "dispatcher",
                  "must_change_password": False}


def test_login_needs_csrf(app, client, make_user):
    user = make_user("viewer")
    client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 403


def test_cookie_session_unsafe_request_needs_csrf(app, client, login):
    login("commander")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": csrf_of(client)}).status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password(client, make_user):
    from dispatch.core import metrics

    user = make_user("viewer")
    before = metrics.login_failures._value.get()
    response = client.post("/api/v1/auth/token",
                           json={"username": user.username, "password": "nope"})
    assert response.status_code == 401
    assert response.json["error"] == "bad_credentials"
    assert metrics.login_failures._value.get() == before + 1


@pytest.mark.parametrize("body", [None, [], {"username": 1, "password": "x"}, {"username": "a"}])
def test_token_request_malformed(client, body):
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 400
    assert set(response.json) >= {"error", "message"}


def test_token_lifecycle(app, client, make_user):
    user = make_user("dispatcher")
    response = client.post("/api/v1/auth/token",
                           json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 43200
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/me", headers=headers).json["role"] == "dispatcher"
    # Expired: refused with a clear code.
    with db.transaction() as s:
        s.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = client.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401 and expired.json["error"] == "bad_token"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer rh_nonsense"}
                      ).status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_one_time_password_gets_no_token_until_changed(client):
    with db.transaction() as s:
        _, one_time = auth.create_user(s, "li", "team_leader", actor="test")
    refused = client.post("/api/v1/auth/token", json={"username": "li", "password": one_time})
    assert refused.status_code == 403 and refused.json["error"] == "password_change_required"
    changed = client.post("/api/v1/auth/password", json={
        "username": "li", "password": one_time, "new_password": "my own password"})
    assert changed.status_code == 200
    assert client.post("/api/v1/auth/token", json={
        "username": "li", "password": "my own password"}).status_code == 200


def test_login_rate_limit(app, client, make_user):
    user = make_user("keeper")
    limit = app.config["SETTINGS"].web.login_max_failures
    for _ in range(limit):
        assert client.post("/api/v1/auth/token", json={
            "username": user.username, "password": "wrong"}).status_code == 401
    blocked = client.post("/api/v1/auth/token",
                          json={"username": user.username, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json["error"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0
    # Another address is not blocked by this one's failures.
    other = client.post("/api/v1/auth/token", json={"username": user.username,
                                                    "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_no_open_redirect_after_login(client, make_user):
    user = make_user("viewer")
    client.get("/login")
    response = client.post("/login?next=//evil.example/x", data={
        "username": user.username, "password": PASSWORD, "csrf_token": csrf_of(client)})
    assert response.headers["Location"] == "/"


def test_errors_are_json_without_traces(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    response = client.post("/api/v1/me", headers={"Accept": "application/json"})
    assert response.status_code == 405
    assert "Traceback" not in response.get_data(as_text=True)


def test_pages_redirect_to_login_and_speak_chinese_by_default(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = client.get("/login").get_data(as_text=True)
    assert "登录" in page
    client.get("/lang/en")
    assert "Sign in" in client.get("/login").get_data(as_text=True)


def test_openapi_lists_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            assert path in doc["paths"], path
    assert doc["paths"]["/api/v1/me"]["get"]["x-roles"]
