"""Sign-in, tokens, CSRF, rate limit, and the role check on every endpoint."""

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dispatch.core import auth
from dispatch.core.auth import access_of
from dispatch.core.choices import Role
from dispatch.core.db import db, utcnow
from dispatch.core.errors import BadRequest
from dispatch.core.models import ApiToken, AuditEntry, LoginFailure, User
from tests.conftest import CHEAP_PASSWORD_HASH, PASSWORD, csrf_of

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
    short = client.post("/password", data={"current_password": one_time, "new_password": "short",
                                           "new_password2": "short", "csrf_token": csrf})
    assert short.status_code == 200 and b"10" in short.data
    done = client.post("/password", data={"current_password": one_time,
                                          "new_password": "a new one 1234",
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


# --- what ends access (issue #18 §2) ----------------------------------------------------------

SESSION_COOKIE = "rescuehub_session"


def _token(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username,
                                                       "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def _me(client, headers: dict | None = None) -> int:
    return client.get("/api/v1/me", headers=headers or {}).status_code


def _audit_actions(entity_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_id == entity_id).order_by(AuditEntry.seq)))


def test_logout_ends_the_session_on_the_server(app, client, login):
    user = login("dispatcher")
    stolen = client.get_cookie(SESSION_COOKIE).value
    assert _me(client) == 200
    assert client.post("/logout", headers={"X-CSRF-Token": csrf_of(client)}).status_code == 302
    client.set_cookie(SESSION_COOKIE, stolen)  # a copy taken before the sign-out
    assert _me(client) == 401
    fresh = app.test_client()  # the person signs in again: the old copy stays dead
    fresh.get("/login")
    assert fresh.post("/login", data={"username": user.username, "password": PASSWORD,
                                      "csrf_token": csrf_of(fresh)}).status_code == 302
    assert _me(fresh) == 200
    client.set_cookie(SESSION_COOKIE, stolen)
    assert _me(client) == 401


def test_password_change_revokes_tokens_and_other_sessions(app, client, login):
    user = login("dispatcher")
    other_browser = app.test_client()
    other_browser.set_cookie(SESSION_COOKIE, client.get_cookie(SESSION_COOKIE).value)
    old_token = _token(app.test_client(), user.username)
    changed = client.post("/password", data={
        "current_password": PASSWORD, "new_password": "a brand new one 42",
        "new_password2": "a brand new one 42", "csrf_token": csrf_of(client)})
    assert changed.status_code == 302
    assert _me(client) == 200  # this browser stays signed in
    assert _me(other_browser) == 401
    refused = client.get("/api/v1/me", headers=old_token)
    assert refused.status_code == 401 and refused.json["error"] == "bad_token"


def test_api_password_change_revokes_tokens(client, make_user):
    user = make_user("viewer")
    old_token = _token(client, user.username)
    assert client.post("/api/v1/auth/password", json={
        "username": user.username, "password": PASSWORD,
        "new_password": "another long one"}).status_code == 200
    assert _me(client, old_token) == 401
    assert _me(client, _token(client, user.username, "another long one")) == 200


def test_reset_password_revokes_tokens_and_sessions(app, client, login):
    user = login("commander")
    token = _token(app.test_client(), user.username)
    with db.transaction() as s:
        auth.reset_password(s, user.username, actor="test")
    assert _me(client) == 401
    assert _me(client, token) == 401
    assert _audit_actions(user.username)[-1] == "user.reset_password"


def test_web_password_form_needs_the_current_password(client, login):
    user = login("keeper")
    client.get("/lang/en")
    for current in ("", "not my password"):
        refused = client.post("/password", data={
            "current_password": current, "new_password": "taken over 12345",
            "new_password2": "taken over 12345", "csrf_token": csrf_of(client)})
        assert refused.status_code == 200
        assert b"current password is wrong" in refused.data
    assert _me(client, _token(client, user.username)) == 200  # the password did not change


def test_disabled_user_is_out_at_once_and_enabling_brings_nothing_old_back(app, client,
                                                                           login):
    user = login("dispatcher")
    token = _token(app.test_client(), user.username)
    cookie = client.get_cookie(SESSION_COOKIE).value
    with db.transaction() as s:
        assert auth.set_user_active(s, user.username.upper(), False, actor="test")
        assert not auth.set_user_active(s, user.username, False, actor="test")
    assert _me(client) == 401
    assert _me(client, token) == 401
    refused = client.post("/api/v1/auth/token", json={"username": user.username,
                                                      "password": PASSWORD})
    assert refused.status_code == 401 and refused.json["error"] == "bad_credentials"
    with db.transaction() as s:
        assert auth.set_user_active(s, user.username, True, actor="test")
    client.set_cookie(SESSION_COOKIE, cookie)
    assert _me(client) == 401 and _me(client, token) == 401
    assert _me(client, _token(client, user.username)) == 200
    assert _audit_actions(user.username)[-2:] == ["user.disable", "user.enable"]
    with db.transaction() as s, pytest.raises(BadRequest):
        auth.set_user_active(s, "nobody-here", False, actor="test")


def test_disabled_gateway_token_stops_working(app, client):
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-off", actor="test", mqtt_hash=str)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).json["kind"] == "gateway"
    with db.transaction() as s:
        assert auth.disable_gateway(s, "gw-OFF", actor="test")
        assert not auth.disable_gateway(s, "GW-off", actor="test")
    assert _me(client, headers) == 401
    assert _audit_actions("GW-off")[-1] == "gateway.disable"


@pytest.mark.parametrize("name", ["rescuehub", "RescueHub", "rescuehub-worker", "RESCUEHUB-2"])
def test_gateway_cannot_take_the_hubs_own_mqtt_names(app, name):
    with db.transaction() as s, pytest.raises(BadRequest) as refused:
        auth.create_gateway(s, name, actor="test", mqtt_hash=str)
    assert refused.value.code == "reserved_name"


# --- guessing passwords (issue #18 §2) --------------------------------------------------------

@pytest.fixture
def hash_checks(monkeypatch):
    """Count password-hash checks; each takes 50 ms, as a real hash's ~100 ms does, so that
    concurrent attempts overlap."""
    checked = []
    lock = threading.Lock()
    real = auth.check_password_hash

    def counting(stored: str, password: str) -> bool:
        with lock:
            checked.append(stored)
        time.sleep(0.05)
        return real(stored, password)

    monkeypatch.setattr(auth, "check_password_hash", counting)
    return checked


def test_parallel_wrong_passwords_reach_the_hash_at_most_the_limit(app, make_user,
                                                                   hash_checks):
    user = make_user("commander")
    hash_checks.clear()  # make_user's own
    limit = app.config["SETTINGS"].web.login_max_failures
    attempts = 40
    start = threading.Barrier(attempts)
    statuses: list[int] = []

    def guess(n: int) -> None:
        guesser = app.test_client()
        start.wait()
        response = guesser.post("/api/v1/auth/token", json={"username": user.username,
                                                            "password": f"guess {n}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == attempts
    assert len(hash_checks) <= limit
    assert statuses.count(401) == len(hash_checks) and statuses.count(429) >= attempts - limit
    # The refused attempts left no rows: only the checked ones count as failures.
    assert len(db.session.scalars(select(LoginFailure.id)).all()) == len(hash_checks)


def test_unknown_and_disabled_names_are_hashed_too(client, make_user, hash_checks):
    refused = client.post("/api/v1/auth/token", json={"username": "nobody",
                                                      "password": "whatever it is"})
    assert refused.status_code == 401 and refused.json["error"] == "bad_credentials"
    assert len(hash_checks) == 1
    assert hash_checks[0].startswith(CHEAP_PASSWORD_HASH + "$")  # the configured method
    user = make_user("viewer")
    hash_checks.clear()  # make_user's own
    with db.transaction() as s:
        auth.set_user_active(s, user.username, False, actor="test")
    assert client.post("/api/v1/auth/token", json={"username": user.username,
                                                   "password": PASSWORD}).status_code == 401
    assert len(hash_checks) == 1


def test_a_right_password_after_failures_is_not_held_against_the_limit(app, client,
                                                                       make_user):
    user = make_user("viewer")
    limit = app.config["SETTINGS"].web.login_max_failures
    for _ in range(limit - 1):
        client.post("/api/v1/auth/token", json={"username": user.username, "password": "no"})
    for _ in range(limit + 1):  # each success clears the failures
        assert client.post("/api/v1/auth/token", json={
            "username": user.username, "password": PASSWORD}).status_code == 200


def test_passwords_are_hashed_with_the_configured_method(make_user):
    user = make_user("viewer")
    stored = db.session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored.startswith(CHEAP_PASSWORD_HASH + "$")
