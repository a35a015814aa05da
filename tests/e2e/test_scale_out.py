"""Scale-out (DESIGN §3): one `rescuehub worker` owns MQTT and the scheduler, `rescuehub web`
serves pages and Socket.IO, and events cross between them through Redis."""

import os
import re
import subprocess
import threading
import time
import uuid

import pytest
import redis
import requests
import socketio

from tests.conftest import PASSWORD
from tests.fixtures.hub import RESCUEHUB, ROOT, free_port, hub_env, reachable_by_broker

pytestmark = pytest.mark.slow
REDIS_URL = os.environ.get("RESCUEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


def _start(args, env, log):
    with log.open("w") as out:
        return subprocess.Popen([str(RESCUEHUB), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)


def _stop(process):
    process.terminate()
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(5)


def test_worker_and_web_share_events_through_redis(tmp_path, redis_url):
    data = tmp_path / "var"
    data.mkdir()
    reachable_by_broker(data)
    channel = f"rescuehub-test-{uuid.uuid4().hex[:8]}"
    env = hub_env(data, free_port(), RESCUEHUB_REALTIME_MESSAGE_QUEUE=redis_url,
                  RESCUEHUB_REALTIME_CHANNEL=channel)
    subprocess.run([str(RESCUEHUB), "init"], env=env, check=True, capture_output=True, cwd=ROOT)
    added = subprocess.run([str(RESCUEHUB), "user", "add", "duty", "--role", "dispatcher"],
                           env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    one_time = re.search(r"one-time password: (\S+)", added.stdout).group(1)
    worker = _start(["worker"], env, tmp_path / "worker.out")
    port = free_port()
    web = _start(["web", "--port", str(port)], env, tmp_path / "web.out")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("web never ready:\n" + (tmp_path / "web.out").read_text()
                        + (tmp_path / "worker.out").read_text())
        # The web process has no MQTT client of its own: readiness comes from the worker.
        assert requests.get(url + "/readyz").json()["checks"]["mqtt"] == "up"
        assert requests.post(url + "/api/v1/auth/password", json={
            "username": "duty", "password": one_time, "new_password": PASSWORD}).ok
        token = requests.post(url + "/api/v1/auth/token",
                              json={"username": "duty", "password": PASSWORD}).json()["token"]
        got = threading.Event()
        client = socketio.Client()
        client.on("hub_status", lambda data: got.set(), namespace="/live")
        client.connect(url, namespaces=["/live"], auth={"token": token},
                       transports=["websocket"], wait_timeout=10)
        try:
            # The worker's heartbeat (every 10 s) reaches a client of the web process.
            assert got.wait(25), "no hub_status event crossed from worker to web"
        finally:
            client.disconnect()
    finally:
        assert _stop(web) == 0
        assert _stop(worker) == 0

