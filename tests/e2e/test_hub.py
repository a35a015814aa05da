"""End to end: the real `rescuehub run` with its managed broker, as a user starts it."""

import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.broker import MqttProbe
from tests.fixtures.hub import free_port, serve, start_hub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the tests that only look at it (a test that kills or stops a hub starts
    its own)."""
    yield from serve(tmp_path_factory.mktemp("hub") / "var")


@pytest.fixture
def own_hub(tmp_path):
    """A hub for this test alone."""
    yield from serve(tmp_path / "var")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status"
                                                                  ).read_text().lower()


def _sign_in(hub) -> requests.Session:
    web = requests.Session()
    page = web.get(hub.url + "/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = web.post(hub.url + "/login", data={"username": "commander", "csrf_token": csrf,
                                                  "password": hub.commander_password})
    assert response.url.endswith("/password")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)
    done = web.post(hub.url + "/password", data={"current_password": hub.commander_password,
                                                 "new_password": "storm night 2026",
                                                 "new_password2": "storm night 2026",
                                                 "csrf_token": csrf})
    assert done.status_code == 200 and done.url.rstrip("/") == hub.url
    return web


def test_run_brings_up_everything(hub):
    ready = requests.get(hub.url + "/readyz", timeout=5)
    assert ready.status_code == 200, hub.output()
    assert ready.json()["checks"] == {"database": "up", "mqtt": "up"}
    assert hub.commander_password, hub.output()
    assert f"http://127.0.0.1:{hub.port}/" in hub.output()
    # The hub's retained status says it is online.
    with hub.observer() as probe:
        probe.subscribe("rescuehub/v1/hub/status")
        status = json.loads(probe.next_message().payload)
        assert status["online"] is True
    # People sign in through the pages.
    web = _sign_in(hub)
    assert "commander" in web.get(hub.url + "/").text


def test_broker_refuses_strangers_and_confines_gateways(hub):
    stranger = MqttProbe("127.0.0.1", hub.mqtt_port, "nobody", "guess", "e2e-stranger")
    assert stranger.connect().is_failure
    stranger.close()
    added = hub.cli("gateway", "add", "GW-RIVER", "--name", "河口站")
    assert added.returncode == 0, added.stderr
    assert "broker reloaded" in added.stdout
    password = re.search(r"password (\S+)", added.stdout).group(1)
    with hub.observer() as listener:
        listener.subscribe("rescuehub/v1/readings/#")
        # Asking for the hub's former published client id, with a persistent session: the
        # broker gives it the gateway's own (issue #18), and the hub stays connected.
        gateway = MqttProbe("127.0.0.1", hub.mqtt_port, "GW-RIVER", password,
                            "rescuehub-worker", protocol="3.1.1", persistent=True)
        assert not gateway.connect().is_failure
        assert gateway.session_present is False
        reading = json.dumps({"sensor": "RG-001", "ts": "2026-07-27T21:05:00+08:00",
                              "value": 3.5}).encode()
        assert not gateway.publish("rescuehub/v1/readings/GW-RIVER", reading).is_failure
        assert listener.next_message().topic == "rescuehub/v1/readings/GW-RIVER"
        gateway.close()
        gateway = MqttProbe("127.0.0.1", hub.mqtt_port, "GW-RIVER", password, "GW-RIVER")
        assert not gateway.connect().is_failure
        denied = gateway.publish("rescuehub/v1/readings/GW-OTHER", reading)
        assert denied.value == 135  # Not authorized (MQTT 5)
        gateway.close()
        assert not listener.dropped.is_set()
    assert "MQTT disconnected" not in hub.output()
    broker_log = (hub.data_dir / "mosquitto" / "mosquitto.log").read_text()
    assert "already connected, closing old connection" not in broker_log


def test_stop_takes_the_broker_down(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    hub = start_hub(data)
    pid = int((data / "mosquitto" / "mosquitto.pid").read_text())
    assert _pid_alive(pid)
    assert hub.stop() == 0
    deadline = time.monotonic() + 5
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(pid)
    # Stopped once, by `rescuehub run` that started it: the web worker, forked from it, used to
    # leave through the same `finally` and signal the broker's pid as it knew it at the fork
    # (after a broker restart, a pid that may belong to another process by then).
    assert hub.output().count(f"Mosquitto (pid {pid}) stopped") == 1, hub.output()


def test_broker_restarts_after_kill(own_hub):
    hub = own_hub
    pid_file = hub.data_dir / "mosquitto" / "mosquitto.pid"
    first = int(pid_file.read_text())
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text())
            if pid != first and requests.get(hub.url + "/readyz", timeout=2).status_code == 200:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f"broker not back after a kill:\n{hub.output()}")


@pytest.mark.parametrize(("which", "advice"), [("mqtt_port", "RESCUEHUB_MQTT_URL"),
                                               ("port", "--port")])
def test_taken_port_stops_startup_with_advice(tmp_path, which, advice):
    data = tmp_path / "var"
    data.mkdir()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        hub = start_hub(data, wait_ready=False, **{which: port})
        assert hub.process.wait(30) == 1
    out = hub.output()
    assert str(port) in out and advice in out and "Traceback" not in out


def test_missing_mosquitto_is_one_clear_line(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    hub = start_hub(data, wait_ready=False, RESCUEHUB_MQTT_MOSQUITTO="/nonexistent/mosquitto")
    assert hub.process.wait(30) == 1
    assert "apt-get install mosquitto" in hub.output() and "Traceback" not in hub.output()


def test_second_hub_is_independent(hub, tmp_path):
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = start_hub(other_dir)
    try:
        assert requests.get(other.url + "/readyz", timeout=5).status_code == 200, other.output()
        assert other.commander_password and other.commander_password != hub.commander_password
        assert requests.get(hub.url + "/readyz", timeout=5).status_code == 200
    finally:
        assert other.stop() == 0


def test_readiness_follows_an_external_broker(broker, tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    hub = start_hub(data, mqtt_port=broker.port, RESCUEHUB_MQTT_MANAGED="false",
                    RESCUEHUB_MQTT_PASSWORD=broker.hub_password)
    try:
        assert requests.get(hub.url + "/readyz", timeout=5).status_code == 200, hub.output()
        broker.managed.stop()
        deadline = time.monotonic() + 15
        while requests.get(hub.url + "/readyz", timeout=5).status_code == 200:
            assert time.monotonic() < deadline, "readyz still ready with the broker down"
            time.sleep(0.2)
        body = requests.get(hub.url + "/readyz", timeout=5).json()
        assert body["checks"]["mqtt"] == "down"
    finally:
        hub.stop()


def test_port_option_validation(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    hub = start_hub(data, port=free_port(), wait_ready=False, RESCUEHUB_WEB_THREADS="0")
    assert hub.process.wait(30) == 2
    assert "web.threads" in hub.output()
