"""The /live namespace: authenticated connect, rooms, notify(), replay of missed events."""

import pytest

from dispatch.core import auth, realtime
from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE, notify, socketio
from tests.conftest import PASSWORD

# Pages, sockets and translations: no backend-specific SQL (conftest: any_backend).
pytestmark = pytest.mark.any_backend


def _events(client, name):
    return [e["args"][0] for e in client.get_received(NAMESPACE) if e["name"] == name]


def test_refused_without_sign_in(app, sio):
    c = sio()
    assert not c.is_connected(NAMESPACE)


def test_connect_with_session_cookie_joins_office(app, login, sio):
    login("dispatcher")
    c = sio()
    assert c.is_connected(NAMESPACE)
    hello = _events(c, "hello")[0]
    assert hello["role"] == "dispatcher" and hello["rooms"] == ["office", "township"]
    event_id = notify("sensor_status", {"sensor": "RG-001", "status": "missing"})
    received = _events(c, "sensor_status")
    assert received[0]["id"] == event_id
    assert received[0]["sensor"] == "RG-001" and received[0]["ts"].endswith("+00:00")


def test_connect_with_token(app):
    with db.transaction() as s:
        user, _ = auth.create_user(s, "tablet", "viewer", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 60)
    c = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    assert c.is_connected(NAMESPACE)
    c.disconnect(NAMESPACE)
    bad = socketio.test_client(app, namespace=NAMESPACE, auth={"token": "rh_forged"})
    assert not bad.is_connected(NAMESPACE)


def test_gateway_token_cannot_join(app):
    with db.transaction() as s:
        _, _, token = auth.create_gateway(s, "GW-1", actor="test", mqtt_hash=str)
    c = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    assert not c.is_connected(NAMESPACE)


@pytest.mark.parametrize("role", ["keeper", "team_leader"])
def test_field_roles_get_the_township_events_but_not_the_office_ones(app, login, sio, role):
    # Their pages show the map and the sensors: a team leader's map must not stay "missing".
    login(role)
    c = sio()
    assert c.is_connected(NAMESPACE)
    assert _events(c, "hello")[0]["rooms"] == \
        {"keeper": ["depot", "township"], "team_leader": ["township"]}[role]
    notify("alert", {"level": "evacuate"}, rooms=("office",))
    assert _events(c, "alert") == []
    notify("sensor_status", {"sensor": "RG-001", "status": "missing"})
    assert [e["sensor"] for e in _events(c, "sensor_status")] == ["RG-001"]


@pytest.mark.parametrize("origin, allowed", [
    ("http://evil.example", False),
    ("http://localhost.evil.example", False),
    ("http://localhost", True),
])
def test_live_refuses_pages_of_other_origins(app, client, login, origin, allowed):
    # A page on another site must not use a signed-in viewer's cookie to join the live rooms.
    login("viewer")
    response = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})
    assert (response.status_code == 200) is allowed, response.get_data(as_text=True)


def test_live_takes_the_configured_extra_origins(overrides):
    from dispatch import create_app

    overrides["web"] = {"allowed_origins": "https://hub.example.gov.cn/, https://b.example"}
    app = create_app(overrides)
    with app.test_client() as client:
        ok = client.get("/socket.io/?EIO=4&transport=polling",
                        headers={"Origin": "https://hub.example.gov.cn"})
        refused = client.get("/socket.io/?EIO=4&transport=polling",
                             headers={"Origin": "https://c.example"})
    assert ok.status_code == 200 and refused.status_code == 400


def test_reconnecting_client_gets_what_it_missed(app, login, sio):
    login("commander")
    first = sio()
    seen = notify("task", {"task": 1})
    first.disconnect(NAMESPACE)
    notify("task", {"task": 2})
    notify("task", {"task": 3})
    again = sio(auth={"since": seen})
    assert [e["task"] for e in _events(again, "task")] == [2, 3]
    assert again.emit("resume", {"since": seen}, namespace=NAMESPACE, callback=True) == {"ok": True}
    assert [e["task"] for e in _events(again, "task")] == [2, 3]


def test_every_client_event_checks_role(app):
    handlers = socketio.server.handlers[NAMESPACE]
    for name, handler in handlers.items():
        if name in {"connect", "disconnect"}:
            continue
        assert getattr(handler, "_access", None), f"socket event {name} declares no roles"


@pytest.mark.parametrize("since", [None, 5, {"x": 1}, "zzzz"])
def test_resume_with_bad_since_is_harmless(app, login, sio, since):
    login("viewer")
    c = sio()
    assert c.emit("resume", {"since": since}, namespace=NAMESPACE, callback=True) == {"ok": True}
    assert realtime.missed_since("zzzz", {"office"}) == []


def test_event_ids_sort_in_the_order_they_were_made(monkeypatch):
    # Within one millisecond the counter decides; "…-10" must sort after "…-f".
    import itertools
    import time

    monkeypatch.setattr(realtime, "_counter", itertools.count(0xF))
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000_000_000)
    ids = [realtime._event_id() for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_open_sockets_end_when_their_sign_in_no_longer_holds(app, client, login, sio):
    from tests.conftest import csrf_of

    login("viewer")
    by_cookie = sio()
    with db.transaction() as s:
        user, _ = auth.create_user(s, "tablet2", "team_leader", actor="test")
        auth.change_password(s, user, PASSWORD)
        token, _ = auth.issue_user_token(s, user, 600)
    by_token = socketio.test_client(app, namespace=NAMESPACE, auth={"token": token})
    assert by_cookie.is_connected(NAMESPACE) and by_token.is_connected(NAMESPACE)
    assert realtime.sweep(app) == 0  # nothing changed: nobody is dropped

    # The viewer signs out (in this or any browser): the socket opened with the cookie ends.
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    realtime.sweep(app)  # (the process's own sweep may have come first: the state counts)
    assert not by_cookie.is_connected(NAMESPACE) and by_token.is_connected(NAMESPACE)

    # The team leader is disabled: the socket opened with the token ends too.
    with db.transaction() as s:
        auth.set_user_active(s, "tablet2", False, actor="test")
    realtime.sweep(app)
    assert not by_token.is_connected(NAMESPACE)
