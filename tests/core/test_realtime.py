"""The /live namespace: authenticated connect, rooms, notify(), replay of missed events."""

import pytest

from dispatch.core import auth, realtime
from dispatch.core.db import db
from dispatch.core.realtime import NAMESPACE, notify, socketio
from tests.conftest import PASSWORD


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
    assert hello["role"] == "dispatcher" and hello["rooms"] == ["office"]
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


def test_keeper_is_not_in_office_room(app, login, sio):
    login("keeper")
    c = sio()
    assert c.is_connected(NAMESPACE)
    notify("alert", {"level": "evacuate"})
    assert _events(c, "alert") == []


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
