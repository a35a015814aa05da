"""Alerts' notification channels against a real Mosquitto and real HTTP servers: the retained
village warnings, the terminals' ACL, the webhooks with their retries, history and counters."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from alerts import channels
from alerts.channels import NEVER_WARNED, queue_county, queue_deliveries, village_topic
from alerts.models import Alert, AlertHistory, Delivery, Terminal
from dispatch import create_app
from dispatch.core import runtime
from dispatch.core.broker import hash_mqtt_password
from dispatch.core.db import db, utcnow
from dispatch.core.metrics import registry
from dispatch.core.runtime import Background
from dispatch.core.settings import Settings
from maps.models import Village
from tests.conftest import empty_tables
from tests.fixtures.broker import free_port

NOT_AUTHORIZED = 135
QS_TOPIC = "rescuehub/v1/warnings/QS"
XX_TOPIC = "rescuehub/v1/warnings/XX"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0):
    """Poll until condition() is truthy and return it (the bound only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return result


def seed(session) -> Alert:
    """Villages QS (青山村) and XX (西溪村), never warned, and an active alert on QS."""
    for code, zh, pinyin, lon in (("QS", "青山村", "Qingshan", 109.0),
                                  ("XX", "西溪村", "Xixi", 109.1)):
        session.add(Village(code=code, name_zh=zh, name_pinyin=pinyin, population=300,
                            boundary=from_shape(MultiPolygon([box(lon, 33.0, lon + 0.05, 33.05)]),
                                                srid=4326),
                            centre=from_shape(Point(lon + 0.025, 33.025), srid=4326)))
    alert = Alert(kind="flash_flood", level="evacuate", state="raised", subject_type="village",
                  subject_code="QS", subject_name="青山村", active_key="flash_flood:QS",
                  villages=["QS"], people=300)
    session.add(alert)
    session.flush()
    return alert


def alert_json(alert: Alert) -> dict:
    return {"id": alert.id, "kind": alert.kind, "level": alert.level, "state": alert.state,
            "subject": {"type": "village", "code": "QS", "name": "青山村"}, "villages": ["QS"]}


def deliveries_count(channel: str, outcome: str) -> float:
    return registry.get_sample_value("rescuehub_alert_deliveries_total",
                                     {"channel": channel, "outcome": outcome})


# --- a webhook receiver --------------------------------------------------------------------------

@dataclass
class Received:
    path: str  # without the query
    headers: Message
    body: bytes


@dataclass
class WebhookServer:
    """Local HTTP endpoints: /ok answers 200; /flaky 500 once, then 200; /hang holds every
    request until `release` is set, then answers 200."""

    url: str
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: threading.Event = field(default_factory=threading.Event)  # a /hang request waits
    answered_hang: threading.Event = field(default_factory=threading.Event)

    def received(self, path: str) -> list[Received]:
        return [r for r in list(self.requests) if r.path == path]


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    server_state: WebhookServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            path = self.path.split("?")[0]
            server_state.requests.append(Received(path, self.headers, body))
            status = 200
            if path == "/flaky" and len(server_state.received("/flaky")) == 1:
                status = 500
            elif path == "/hang":
                server_state.hanging.set()
                server_state.release.wait(30)
                server_state.answered_hang.set()
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:  # the hub gave up waiting and closed the connection
                pass

        def log_message(self, *_args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state = WebhookServer(f"http://127.0.0.1:{httpd.server_port}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server_state.release.set()
    httpd.shutdown()
    httpd.server_close()


# --- the hub's MQTT owner with its channels ------------------------------------------------------

@dataclass
class Hub:
    app: object
    background: Background | None = None
    alert_id: int = 0

    def start(self) -> Hub:
        self.background = Background(self.app, [], [channels.attach])
        self.background.start()
        assert self.background.mqtt.wait_connected(10)
        return self

    def village(self, code: str) -> Village:
        with self.app.app_context():
            try:
                return db.session.scalar(select(Village).where(Village.code == code))
            finally:
                db.remove()

    def warn(self, code: str, level: str, alert_id: int | None) -> datetime:
        """Set a village's warning level as alerts' service does, and nudge."""
        at = utcnow()
        with self.app.app_context():
            with db.transaction() as s:
                village = s.scalar(select(Village).where(Village.code == code))
                village.warning_level, village.warning_alert_id = level, alert_id
                village.warning_at = at
            db.remove()
        channels.nudge(self.app)
        return at

    def published(self, code: str, at: datetime) -> bool:
        return self.village(code).warning_sent_at == at

    def queue(self, event: str = "raised", cap_xml: bytes | None = None) -> int:
        with self.app.app_context():
            with db.transaction() as s:
                alert = s.get(Alert, self.alert_id)
                n = queue_deliveries(s, alert_json(alert), event,
                                     settings=self.app.config["SETTINGS"], cap_xml=cap_xml)
            db.remove()
        channels.nudge(self.app)
        return n

    def deliveries(self) -> list[Delivery]:
        with self.app.app_context():
            try:
                return list(db.session.scalars(select(Delivery).order_by(Delivery.id)))
            finally:
                db.remove()

    def history(self) -> list[AlertHistory]:
        with self.app.app_context():
            try:
                return list(db.session.scalars(select(AlertHistory).order_by(AlertHistory.id)))
            finally:
                db.remove()


@pytest.fixture
def make_hub(database_url, broker, tmp_path, webhook_server) -> Iterator[Callable[..., Hub]]:
    """An app on the test broker with villages QS and XX and an alert; `.start()` runs the
    worker's MQTT client with alerts' channels attached (and nothing else)."""
    made: list[Hub] = []

    def make(**alerts) -> Hub:
        app = create_app({"database": {"url": database_url}, "data": {"dir": str(tmp_path)},
                          "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}", "managed": False,
                                   "password": broker.hub_password, "session_expiry_s": 60},
                          "alerts": {"webhook_backoff_s": 0.05, **alerts}})
        with app.app_context():
            empty_tables(db.engine)
            with db.transaction() as s:
                alert_id = seed(s).id
            db.remove()
        hub = Hub(app, alert_id=alert_id)
        made.append(hub)
        return hub

    yield make
    webhook_server.release.set()  # a held POST would hold the channels' stop
    for hub in made:
        if hub.background is not None:
            hub.background.stop()
        with hub.app.app_context():
            db.engine.dispose()


def retained(broker, topic: str, name: str = "test-observer") -> dict:
    """The retained message of a topic as a fresh subscriber gets it."""
    with broker.observer(name) as probe:
        probe.subscribe(topic)
        message = probe.next_message(timeout=10)
        assert message.retain and message.topic == topic
        return json.loads(message.payload)


# --- the retained village warnings ---------------------------------------------------------------

def test_a_changed_level_is_retained_on_the_villages_topic(make_hub, broker):
    hub = make_hub().start()
    # On connect every village is published, a never-warned one as "none", and marked.
    wait_for(lambda: hub.village("XX").warning_sent_at == NEVER_WARNED, "XX published")
    assert retained(broker, XX_TOPIC) | {"ts": None} == {
        "level": "none", "alert": None, "ts": None,
        "text": {"zh": "西溪村：目前没有预警。", "en": "Xixi: no warning."}}

    at = hub.warn("QS", "evacuate", hub.alert_id)
    wait_for(lambda: hub.published("QS", at), "QS marked published")
    assert retained(broker, QS_TOPIC) == {
        "level": "evacuate", "alert": hub.alert_id,
        "text": {"zh": "青山村：立即转移。", "en": "Qingshan: evacuate now."},
        "ts": at.astimezone(channels.BEIJING).isoformat(timespec="seconds")}
    assert retained(broker, QS_TOPIC)["ts"].endswith("+08:00")

    cleared = hub.warn("QS", "none", None)
    wait_for(lambda: hub.published("QS", cleared), "QS cleared")
    assert retained(broker, QS_TOPIC)["text"] == {"zh": "青山村：预警解除。",
                                                   "en": "Qingshan: warning lifted."}
    assert hub.village("XX").warning_sent_at == NEVER_WARNED  # untouched by QS's changes


def test_nothing_is_marked_while_mqtt_is_down_and_all_is_republished_after(make_hub, broker):
    """A broker restart may lose retained messages (here its persistence file is removed):
    on reconnect the hub publishes every village again; while it is down nothing is marked."""
    hub = make_hub().start()
    at = hub.warn("QS", "evacuate", hub.alert_id)
    wait_for(lambda: hub.published("QS", at), "QS marked published")
    wait_for(lambda: hub.village("XX").warning_sent_at == NEVER_WARNED, "XX published")

    broker.managed.stop()
    (broker.broker_dir / "mosquitto.db").unlink(missing_ok=True)
    wait_for(lambda: not hub.background.mqtt.connected, "the hub sees the broker gone")
    prepared = hub.warn("QS", "prepare", hub.alert_id)
    # A pass while the broker is down publishes nothing acknowledged, so marks nothing.
    with hub.app.app_context():
        assert channels.publish_warnings(hub.background.mqtt, timeout=0.5) is False
        db.remove()
    assert hub.village("QS").warning_sent_at == at
    broker.managed.start()
    wait_for(lambda: hub.background.mqtt.connected, "the hub reconnected")
    wait_for(lambda: hub.published("QS", prepared), "QS marked after the reconnect")
    # ...and the broker, which lost everything, has every village's level again.
    assert retained(broker, QS_TOPIC)["level"] == "prepare"
    assert retained(broker, XX_TOPIC)["level"] == "none"


def test_a_terminal_reads_its_village_only_and_publishes_nothing(make_hub, broker):
    hub = make_hub()
    with hub.app.app_context():
        with db.transaction() as s:
            terminal, password = channels.register_terminal(
                s, "QS", actor="test", name="village square", mqtt_hash=hash_mqtt_password)
        # Through the kernel's hook, as the managed broker's files are written.
        accounts = [a for a in runtime.broker_accounts(hub.app.config["SETTINGS"])
                    if a.role == "terminal"]
        db.remove()
    assert [(a.username, a.topics) for a in accounts] == [("T-QS-1", (QS_TOPIC,))]
    broker.install(accounts[0], password)
    hub.start()
    wait_for(lambda: hub.village("XX").warning_sent_at == NEVER_WARNED, "villages published")

    with broker.probe("T-QS-1", password, "T-QS-1") as speaker:
        assert not speaker.connect().is_failure
        # Every village's warnings are refused at the SUBSCRIBE (the broker's dynamic security
        # plugin); its own village's topic is granted.
        assert [c.value for c in speaker.subscribe("rescuehub/v1/warnings/#")] == [NOT_AUTHORIZED]
        assert not any(c.is_failure for c in speaker.subscribe(QS_TOPIC))
        first = speaker.next_message()
        assert (first.topic, first.retain) == (QS_TOPIC, True)
        # Another village changes, then its own: one hub connection publishes in order, so
        # XX's message was handled (and refused) before QS's arrives.
        xx_at = hub.warn("XX", "evacuate", None)
        wait_for(lambda: hub.published("XX", xx_at), "XX published")
        qs_at = hub.warn("QS", "evacuate", hub.alert_id)
        wait_for(lambda: hub.published("QS", qs_at), "QS published")
        second = speaker.next_message()
        assert (second.topic, json.loads(second.payload)["level"]) == (QS_TOPIC, "evacuate")
        with pytest.raises(queue.Empty):
            speaker.next_message(timeout=0.1)
        for topic in (QS_TOPIC, XX_TOPIC, "rescuehub/v1/readings/T-QS-1",
                      "rescuehub/v1/status/T-QS-1", "owntracks/T-QS-1/phone",
                      "rescuehub/v1/hub/status"):
            assert speaker.publish(topic, b'{"level": "none"}').value == NOT_AUTHORIZED, topic
    # Its own village's topic still says what the hub said.
    assert retained(broker, QS_TOPIC)["level"] == "evacuate"


@pytest.mark.parametrize(("level", "lifted", "zh", "en"), [
    ("evacuate", True, "青山村：立即转移。", "Qingshan: evacuate now."),
    ("prepare", True, "青山村：准备转移。", "Qingshan: prepare to evacuate."),
    ("none", True, "青山村：预警解除。", "Qingshan: warning lifted."),
    ("none", False, "青山村：目前没有预警。", "Qingshan: no warning."),
])
def test_warning_payload_speaks_both_languages(level, lifted, zh, en):
    at = datetime(2026, 7, 27, 13, 5, 0, 400000, tzinfo=UTC)
    body = json.loads(channels.warning_payload("QS", "青山村", "Qingshan", level, 7, at,
                                               lifted=lifted))
    assert body == {"level": level, "alert": 7, "text": {"zh": zh, "en": en},
                    "ts": "2026-07-27T21:05:00+08:00"}


def test_warning_payload_falls_back_to_the_code_and_refuses_unknown_levels():
    at = datetime(2026, 7, 27, 13, 5, tzinfo=UTC)
    body = json.loads(channels.warning_payload("V-9", "", "", "prepare", None, at))
    assert body["text"] == {"zh": "V-9：准备转移。", "en": "V-9: prepare to evacuate."}
    assert body["alert"] is None
    for level in ("alarm", "red", "", "EVACUATE"):
        with pytest.raises(ValueError, match="unknown warning level"):
            channels.warning_payload("QS", "青山村", "Qingshan", level, None, at)
    assert village_topic("QS") == QS_TOPIC


# --- webhooks ------------------------------------------------------------------------------------

def test_a_webhook_answering_500_is_tried_again_then_sent(make_hub, webhook_server):
    hooks = [{"url": webhook_server.url + "/flaky?token=secret"}]
    hub = make_hub(webhooks=json.dumps(hooks))
    before = {o: deliveries_count("webhook", o) for o in ("sent", "retry", "failed")}
    # Queued before the worker starts, as if it had restarted: the row is what gets sent.
    assert hub.queue("raised") == 1
    hub.start()
    wait_for(lambda: hub.deliveries()[0].state == "sent", "the delivery sent")

    first, second = webhook_server.received("/flaky")
    assert first.body == second.body and first.headers["X-Rescuehub-Delivery"] == str(
        hub.deliveries()[0].id) == second.headers["X-Rescuehub-Delivery"]
    assert first.headers["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(first.body)
    assert body["event"] == "raised" and body["alert"]["id"] == hub.alert_id
    assert body["alert"]["subject"]["name"] == "青山村"
    delivery = hub.deliveries()[0]
    assert (delivery.attempts, delivery.channel, delivery.last_error) == (2, "webhook", "")
    shown = webhook_server.url + "/flaky"  # the query (a token) is not shown
    assert [(h.state, h.level, h.by, h.note) for h in hub.history()] == [
        ("raised", "evacuate", "hub",
         f"webhook {shown} answered 500 (attempt 1 of 6); next try 0.05 s"),
        ("raised", "evacuate", "hub", f"webhook {shown} answered 200 (attempt 2 of 6): sent")]
    assert deliveries_count("webhook", "retry") == before["retry"] + 1
    assert deliveries_count("webhook", "sent") == before["sent"] + 1
    assert deliveries_count("webhook", "failed") == before["failed"]


def test_a_refused_connection_is_retried_recorded_and_given_up(make_hub):
    url = f"http://127.0.0.1:{free_port()}/hook"
    hub = make_hub(webhooks=json.dumps([{"url": url}]), webhook_attempts=2).start()
    before = {o: deliveries_count("webhook", o) for o in ("sent", "retry", "failed")}
    hub.queue("raised")
    wait_for(lambda: hub.deliveries()[0].state == "failed", "the delivery given up")
    delivery = hub.deliveries()[0]
    assert delivery.attempts == 2 and delivery.next_at is None and delivery.sent_at is None
    assert delivery.last_error == "could not be reached (Connection refused)"
    assert [h.note for h in hub.history()] == [
        f"webhook {url} could not be reached (Connection refused) (attempt 1 of 2); "
        "next try 0.05 s",
        f"webhook {url} could not be reached (Connection refused) (attempt 2 of 2); given up"]
    assert deliveries_count("webhook", "retry") == before["retry"] + 1
    assert deliveries_count("webhook", "failed") == before["failed"] + 1
    assert deliveries_count("webhook", "sent") == before["sent"]


def test_a_webhook_that_times_out_is_tried_again(make_hub, webhook_server):
    url = webhook_server.url + "/hang"
    hub = make_hub(webhooks=json.dumps([{"url": url}]), webhook_timeout_s=0.3).start()
    hub.queue("escalated")
    wait_for(lambda: hub.history(), "the first try's outcome")
    assert hub.history()[0].note == (f"webhook {url} did not answer within 0.3 s (attempt 1 "
                                     "of 6); next try 0.05 s")
    assert not webhook_server.answered_hang.is_set()  # it timed out, nobody answered
    webhook_server.release.set()
    wait_for(lambda: hub.deliveries()[0].state == "sent", "sent once the endpoint answers")
    attempts = hub.deliveries()[0].attempts
    assert hub.history()[-1].note.endswith(f"answered 200 (attempt {attempts} of 6): sent")


def test_a_hanging_webhook_does_not_delay_another(make_hub, webhook_server):
    hooks = [{"url": webhook_server.url + "/hang"}, {"url": webhook_server.url + "/ok"}]
    hub = make_hub(webhooks=json.dumps(hooks), webhook_timeout_s=60).start()
    assert hub.queue("raised") == 2
    wait_for(lambda: hub.deliveries()[1].state == "sent", "the good webhook's delivery")
    # Sent while the other was still held open, unanswered and untried to the end.
    assert webhook_server.hanging.is_set() and not webhook_server.answered_hang.is_set()
    assert (hub.deliveries()[0].state, hub.deliveries()[0].attempts) == ("pending", 0)
    webhook_server.release.set()
    wait_for(lambda: hub.deliveries()[0].state == "sent", "the slow webhook's delivery")
    assert hub.deliveries()[0].attempts == 1


# --- what is queued ------------------------------------------------------------------------------

HOOKS = [
    {"url": "https://all.example/hook"},
    {"url": "https://floods.example/hook", "kinds": ["flash_flood"], "levels": ["evacuate"]},
    {"url": "https://slopes.example/hook", "kinds": ["slope_movement"]},
    {"url": "https://cap.example/hook", "body": "cap"},
]


@pytest.mark.parametrize(("kind", "level", "cap", "expected"), [
    ("flash_flood", "evacuate", False, ["https://all.example/hook",
                                        "https://floods.example/hook"]),
    ("flash_flood", "evacuate", True, ["https://all.example/hook", "https://floods.example/hook",
                                       "https://cap.example/hook"]),
    ("flash_flood", "prepare", True, ["https://all.example/hook", "https://cap.example/hook"]),
    ("slope_movement", "alarm", False, ["https://all.example/hook",
                                        "https://slopes.example/hook"]),
    ("rainstorm", "red", False, ["https://all.example/hook"]),
])
def test_deliveries_go_to_the_webhooks_that_want_them(app, kind, level, cap, expected):
    values = app.config["SETTINGS"].as_dict()
    values["alerts"]["webhooks"] = json.dumps(HOOKS)
    settings = Settings(values)
    cap_xml = "<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>青山村</alert>".encode()
    with db.transaction() as s:
        alert = seed(s)
        alert.kind, alert.level = kind, level
        n = queue_deliveries(s, alert_json(alert), "upgraded", settings=settings,
                             cap_xml=cap_xml if cap else None)
    rows = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert n == len(rows) and [r.url for r in rows] == expected
    for row in rows:
        assert (row.state, row.attempts, row.channel) == ("pending", 0, "webhook")
        assert row.next_at is not None and row.alert_id == alert.id
        if row.body_format == "cap":
            assert row.body == cap_xml.decode()
        else:
            assert json.loads(row.body) == {"event": "upgraded", "alert": alert_json(alert)}


def test_the_county_step_is_a_delivery_only_when_configured(app):
    values = app.config["SETTINGS"].as_dict()
    with db.transaction() as s:
        alert = seed(s)
        assert queue_county(s, alert_json(alert), settings=Settings(values)) is False
        values["alerts"]["county_webhook"] = "https://county.example/yingji"
        assert queue_county(s, alert_json(alert), settings=Settings(values)) is True
        assert queue_county(s, alert_json(alert), settings=Settings(values),
                            cap_xml=b"<alert/>") is True
    json_row, cap_row = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert (json_row.channel, json_row.url, json_row.body_format) == (
        "county", "https://county.example/yingji", "json")
    assert json.loads(json_row.body)["event"] == "escalated"
    assert (cap_row.body_format, cap_row.body) == ("cap", "<alert/>")


def test_nudge_is_a_no_op_without_channels(app):
    channels.nudge(app)  # a web process: the worker's sweep catches up
    assert channels.EXTENSION not in app.extensions


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@county.example:8443/hook?token=abc", "https://county.example:8443/hook"),
    ("http://127.0.0.1/x", "http://127.0.0.1/x"),
    ("http://[::1]:9000/y#frag", "http://[::1]:9000/y"),
])
def test_history_shows_webhooks_without_credentials(url, shown):
    assert channels.shown_url(url) == shown


# --- terminals on the command line ---------------------------------------------------------------

def test_terminal_add_list_and_disable(app, runner):
    with db.transaction() as s:
        seed(s)
    db.remove()
    result = runner.invoke("terminal", "add", "QS", "--name", "village square")
    assert result.exit_code == 0, result.output
    assert "terminal T-QS-1 registered for village QS" in result.output
    assert "user T-QS-1" in result.output and QS_TOPIC in result.output
    assert "the broker is external" in result.output  # the runner's hub has no managed broker
    password = result.output.split("password ", 1)[1].split()[0]
    assert runner.invoke("terminal", "add", "QS").exit_code == 0
    db.remove()
    terminals = db.session.scalars(select(Terminal).order_by(Terminal.code)).all()
    assert [(t.code, t.village_code, t.active) for t in terminals] == [
        ("T-QS-1", "QS", True), ("T-QS-2", "QS", True)]
    digest = terminals[0].mqtt_password_hash
    assert digest.startswith("$7$") and password not in digest
    db.remove()

    listed = runner.invoke("terminal", "list")
    assert listed.exit_code == 0 and "T-QS-1\tQS\tactive" in listed.output

    disabled = runner.invoke("terminal", "disable", "T-QS-1")
    assert disabled.exit_code == 0 and "terminal T-QS-1 disabled" in disabled.output
    assert "already" in runner.invoke("terminal", "disable", "T-QS-1").output
    assert "T-QS-1\tQS\tdisabled" in runner.invoke("terminal", "list").output
    db.remove()
    accounts = channels.terminal_accounts(app.config["SETTINGS"])
    assert [a.username for a in accounts] == ["T-QS-2"]


@pytest.mark.parametrize("args", [("terminal", "add", "NOPE"), ("terminal", "add", "qs"),
                                  ("terminal", "disable", "T-NOPE-1")])
def test_terminal_commands_refuse_unknown_villages_and_terminals(app, runner, args):
    with db.transaction() as s:
        seed(s)
    db.remove()
    result = runner.invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output in {f"rescuehub: No village {args[2]}: give the code of a village on "
                             "the map.\n", f"rescuehub: No terminal {args[2]}.\n"}
    db.remove()
    assert db.session.scalars(select(Terminal)).all() == []


def test_terminal_login_skips_names_taken_by_gateways(app):
    from dispatch.core import auth

    with db.transaction() as s:
        seed(s)
        auth.create_gateway(s, "t-qs-1", actor="test", mqtt_hash=hash_mqtt_password)
        terminal, _password = channels.register_terminal(s, "QS", actor="test",
                                                         mqtt_hash=hash_mqtt_password)
    assert terminal.code == "T-QS-2"


def test_warning_marks_are_compare_and_set(app):
    """A village that changed after it was read for publishing is not marked."""
    with db.transaction() as s:
        seed(s)
        village = s.scalar(select(Village).where(Village.code == "QS"))
        read_at = datetime(2026, 7, 27, 13, 0, tzinfo=UTC)
        village.warning_level, village.warning_at = "prepare", read_at
    published = channels._Published(village.id, "prepare", None, read_at, None)
    with db.transaction() as s:
        village = s.scalar(select(Village).where(Village.code == "QS"))
        village.warning_level, village.warning_at = "evacuate", read_at + timedelta(minutes=1)
    with db.transaction() as s:
        channels._compare_and_mark(s, published)
    assert db.session.scalar(select(Village.warning_sent_at).where(Village.code == "QS")) is None
    with db.transaction() as s:
        channels._compare_and_mark(s, channels._Published(
            village.id, "evacuate", None, read_at + timedelta(minutes=1), None))
    assert db.session.scalar(select(Village.warning_sent_at).where(
        Village.code == "QS")) == read_at + timedelta(minutes=1)


def test_a_terminal_login_a_gateway_took_later_is_left_out_of_the_broker_files(app, caplog):
    from dispatch.core import auth

    with db.transaction() as s:
        seed(s)
        channels.register_terminal(s, "QS", actor="test", mqtt_hash=hash_mqtt_password)
        channels.register_terminal(s, "XX", actor="test", mqtt_hash=hash_mqtt_password)
        auth.create_gateway(s, "T-QS-1", actor="test", mqtt_hash=hash_mqtt_password)
    accounts = runtime.broker_accounts(app.config["SETTINGS"])
    assert [(a.username, a.role) for a in accounts][1:] == [("T-QS-1", "gateway"),
                                                            ("T-XX-1", "terminal")]
    assert "MQTT login T-QS-1 (terminal) is the hub's, an observer's or a gateway's" in caplog.text
