"""The managed Mosquitto broker, against the real mosquitto: logins, ACL, supervision, reload."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dispatch.core import broker as broker_module
from dispatch.core.broker import (
    ACL_PATTERNS,
    DEFAULT_MAX_PACKET_SIZE,
    HUB_PAYLOAD_LIMIT,
    BrokerAccount,
    BrokerError,
    ManagedBroker,
    hash_mqtt_password,
    render_acl,
    render_config,
    signal_running_broker,
    write_broker_files,
)
from tests.fixtures.broker import (
    HUB_USERNAME,
    TEMPLATE,
    LocalBroker,
    free_port,
    new_broker_dir,
    running_broker,
)

ROOT = Path(__file__).resolve().parents[2]
HASH_FORMAT = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")
NOT_AUTHORIZED = 135
READING = b'{"sensor": "RG-001", "ts": "2026-07-27T21:05:00+08:00", "value": 3.5}'


def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition"):
    """Poll until condition() is truthy and return it."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return result


def process_gone(pid: int) -> bool:
    """Whether pid no longer runs (exited; a zombie nobody reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def log_count(running: ManagedBroker | LocalBroker, text: str) -> int:
    managed = running.managed if isinstance(running, LocalBroker) else running
    return managed.log_path.read_text(errors="replace").count(text)


@pytest.fixture(name="broker")
def broker_fixture(tmp_path_factory) -> Iterator[LocalBroker]:
    """tests/fixtures/broker.py's `broker`, here too so this file runs whatever conftest lists."""
    with running_broker(new_broker_dir(tmp_path_factory)) as running:
        yield running


@pytest.fixture
def make_broker(tmp_path_factory) -> Iterator[Callable[..., ManagedBroker]]:
    """Build (and afterwards stop) ManagedBrokers with a hub login, each in its own directory."""
    made: list[ManagedBroker] = []

    def make(start: bool = True, **overrides) -> ManagedBroker:
        broker_dir = new_broker_dir(tmp_path_factory)
        write_broker_files(broker_dir, [BrokerAccount(HUB_USERNAME, hash_mqtt_password("hub-pw"),
                                                      "hub")])
        options = {"host": "127.0.0.1", "port": free_port(), "broker_dir": broker_dir,
                   "template": TEMPLATE} | overrides
        managed = ManagedBroker(**options)
        made.append(managed)
        if start:
            managed.start()
        return managed

    yield make
    for managed in made:
        managed.stop()


# --- files -------------------------------------------------------------------------------------

def test_hash_is_mosquitto_pbkdf2_sha512_format():
    salt = bytes(range(12))
    digest = hash_mqtt_password("s3cret", salt=salt)
    assert HASH_FORMAT.match(digest)
    _, kind, rounds, salt_b64, digest_b64 = digest.split("$")
    assert (kind, rounds, base64.b64decode(salt_b64)) == ("7", "101", salt)
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert hash_mqtt_password("s3cret") != hash_mqtt_password("s3cret")  # random salt
    with pytest.raises(ValueError):
        hash_mqtt_password("s3cret", salt=b"short")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_hash_equals_mosquitto_passwd(tmp_path):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "pässword"], check=True)
    expected = passwd.read_text().strip().split(":", 1)[1]
    salt = base64.b64decode(expected.split("$")[3])
    assert hash_mqtt_password("pässword", salt=salt) == expected


@pytest.mark.parametrize("name", ["", "a/b", "a+b", "#", "gw:1", "with space", "-lead", "x" * 65])
def test_usernames_that_could_widen_an_acl_pattern_are_refused(name):
    with pytest.raises(BrokerError):
        BrokerAccount(name, hash_mqtt_password("pw"), "gateway")


def test_write_broker_files(tmp_path):
    broker_dir = tmp_path / "mosquitto"
    hub = BrokerAccount("rescuehub", hash_mqtt_password("a"), "hub")
    gateway = BrokerAccount("gw-01", hash_mqtt_password("b"), "gateway")
    write_broker_files(broker_dir, [hub, gateway])

    assert (broker_dir / "passwd").read_text() == (
        f"rescuehub:{hub.password_hash}\ngw-01:{gateway.password_hash}\n")
    acl = (broker_dir / "acl").read_text()
    assert "user rescuehub\ntopic readwrite rescuehub/#\ntopic readwrite owntracks/#\n" in acl
    # A gateway's block reads the warnings only; the patterns give it its own topics.
    assert "user gw-01\ntopic read rescuehub/v1/warnings/#\n\n" in acl
    assert stat.S_IMODE(broker_dir.stat().st_mode) == 0o700
    for name in ("passwd", "acl"):
        info = (broker_dir / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o640
        if os.geteuid() == 0:
            assert info.st_uid == broker_module.pwd.getpwnam("mosquitto").pw_uid
    # The field accounts' subscriptions for the plugin: the hub is none.
    assert json.loads((broker_dir / "subscribers.json").read_text()) == {
        "gw-01": ["rescuehub/v1/warnings/#", "rescuehub/v1/hub/status", "owntracks/gw-01/#"]}
    assert sorted(p.name for p in broker_dir.iterdir()) == [  # no temp files
        "acl", "passwd", "subscribers.json"]
    with pytest.raises(ValueError):
        write_broker_files(broker_dir, [hub, hub])


@pytest.mark.parametrize(("account", "readable"), [
    (BrokerAccount("gw-1", hash_mqtt_password("pw"), "gateway"),
     ["rescuehub/v1/warnings/#", "rescuehub/v1/hub/status", "owntracks/gw-1/#"]),
    (BrokerAccount("T-V1-1", hash_mqtt_password("pw"), "terminal",
                   topics=("rescuehub/v1/warnings/V1",)),
     ["rescuehub/v1/warnings/V1", "rescuehub/v1/hub/status"]),  # its own OwnTracks denied
    (BrokerAccount("PH-1", hash_mqtt_password("pw"), "device"),
     ["rescuehub/v1/hub/status", "owntracks/PH-1/#"]),
])
def test_a_field_accounts_subscriptions_are_what_its_acl_lets_it_read(account, readable):
    assert broker_module.readable_topics(account) == readable


def test_a_broker_directory_without_the_subscribers_file_does_not_start(make_broker):
    managed = make_broker(start=False)
    (managed.broker_dir / "subscribers.json").unlink()
    with pytest.raises(BrokerError, match="subscribers.json"):
        managed.start()


def test_broker_accounts_list_the_hub_the_observers_and_the_gateways(app, caplog):
    from dispatch.core import auth, runtime
    from dispatch.core.db import db
    from dispatch.core.settings import Settings

    values = app.config["SETTINGS"].as_dict()
    values["mqtt"]["observers"] = " monitor, gw-x ,grafana,monitor,"
    settings = Settings(values)
    with db.transaction() as s:
        auth.create_gateway(s, "GW-X", actor="test", mqtt_hash=hash_mqtt_password)
    accounts = runtime.broker_accounts(settings)
    # An observer named like a gateway (any case) is left out, never the gateway, never refused.
    assert [(a.username, a.role) for a in accounts] == [
        ("rescuehub", "hub"), ("grafana", "observer"), ("monitor", "observer"),
        ("GW-X", "gateway")]
    assert "gw-x is the hub's or a gateway's MQTT login already" in caplog.text
    password = runtime.observer_password(settings, "monitor")
    assert (settings.data_dir / "secrets" / "mqtt-observer-monitor").read_text().strip() == password
    digest = accounts[2].password_hash
    assert hash_mqtt_password(password, salt=base64.b64decode(digest.split("$")[3])) == digest
    assert runtime.reserved_mqtt_names(settings) == {"rescuehub", "grafana", "monitor", "gw-x"}
    acl = render_acl(accounts)
    assert ("user monitor\ntopic deny rescuehub/v1/readings/monitor\n"
            "topic deny rescuehub/v1/status/monitor\ntopic deny owntracks/monitor/#\n"
            "topic read rescuehub/#\ntopic read owntracks/#\n") in acl

    values["mqtt"]["observers"] = "ok,a/b"
    with pytest.raises(BrokerError, match="a/b"):
        runtime.broker_accounts(Settings(values))


def test_the_hubs_client_id_is_no_published_constant(app):
    from dispatch.core import runtime
    from dispatch.core.settings import Settings

    values = app.config["SETTINGS"].as_dict()
    assert values["mqtt"]["client_id"] == ""  # config/default.toml
    generated = runtime.hub_mqtt_client_id(Settings(values))
    assert generated.startswith("rescuehub-") and len(generated) > len("rescuehub-") + 12
    assert runtime.hub_mqtt_client_id(Settings(values)) == generated  # one session, kept
    values["data"]["dir"] = str(Path(values["data"]["dir"]) / "other")
    assert runtime.hub_mqtt_client_id(Settings(values)) != generated
    values["mqtt"]["client_id"] = "chosen"
    assert runtime.hub_mqtt_client_id(Settings(values)) == "chosen"


def acl_rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_acl_template_states_the_rules_the_hub_writes():
    hub = BrokerAccount(HUB_USERNAME, hash_mqtt_password("pw"), "hub")
    template = (ROOT / "config" / "mosquitto.acl").read_text()
    assert acl_rules(template) == acl_rules(render_acl([hub]))
    assert acl_rules(template)[-len(ACL_PATTERNS):] == list(ACL_PATTERNS)


def commented_block(template: str, user_line: str) -> list[str]:
    """A `user` block the template documents in a comment ("#   user NAME" and what follows)."""
    lines = template.splitlines()
    start = lines.index(f"#   {user_line}")
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line.removeprefix("#   "))
    return block


@pytest.mark.parametrize(("account", "user_line"), [
    (BrokerAccount("GATEWAY", hash_mqtt_password("pw"), "gateway"), "user GATEWAY"),
    (BrokerAccount("TERMINAL", hash_mqtt_password("pw"), "terminal",
                   topics=("rescuehub/v1/warnings/VILLAGE",)), "user TERMINAL"),
    (BrokerAccount("NAME", hash_mqtt_password("pw"), "observer"), "user NAME"),
])
def test_acl_template_documents_the_blocks_the_hub_writes(account, user_line):
    template = (ROOT / "config" / "mosquitto.acl").read_text()
    rendered = acl_rules(render_acl([account]))
    assert rendered[:-len(ACL_PATTERNS)] == commented_block(template, user_line)


@pytest.mark.parametrize(("role", "topics"), [
    ("terminal", ()),                                       # a terminal names its topic
    ("gateway", ("rescuehub/v1/warnings/V1",)),             # only a terminal does
    ("terminal", ("rescuehub/v1/warnings/#",)),             # no wildcards
    ("terminal", ("rescuehub/v1/warnings/+",)),
    ("terminal", ("rescuehub/v1/warnings/%u",)),            # no substitutions
    ("terminal", ("rescuehub/v1/warnings/V1\ntopic readwrite #",)),  # no second ACL line
    ("terminal", ("rescuehub/v1/warnings/V 1",)),
    ("terminal", ("",)),
])
def test_account_topics_that_would_widen_the_acl_are_refused(role, topics):
    with pytest.raises(ValueError):
        BrokerAccount("T-V1-1", hash_mqtt_password("pw"), role, topics=topics)


def test_config_template_renders_every_placeholder():
    values = {"listener_host": "127.0.0.1", "listener_port": "18830",
              "broker_dir": "/srv/hub var/mosquitto", "max_packet_size": "1114112",
              "dynsec_plugin": "/usr/lib/mosquitto_dynamic_security.so"}
    conf = render_config(TEMPLATE.read_text(), values)
    settings = acl_rules(conf)
    assert not [line for line in settings if "{" in line]
    assert "listener 18830 127.0.0.1" in settings
    assert "password_file /srv/hub var/mosquitto/passwd" in settings
    assert "max_packet_size 1114112" in settings
    assert "allow_anonymous false" in settings
    assert "use_username_as_clientid true" in settings  # a login can take no other's session
    # The plugin refuses a field account's SUBSCRIBE; passwd and acl still decide the rest.
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in settings
    assert "plugin_opt_config_file /srv/hub var/mosquitto/dynsec.json" in settings
    assert settings[0] == "per_listener_settings false"
    assert not [line for line in settings if line.startswith("pid_file")]
    assert "{broker_dir}" in conf  # comments keep their placeholders
    with pytest.raises(ValueError, match="listener_prot"):
        render_config("listener {listener_prot}\n", values)
    assert DEFAULT_MAX_PACKET_SIZE == 2 * HUB_PAYLOAD_LIMIT + 65536


# --- logins and ACL ------------------------------------------------------------------------------

def test_hub_login_accepted_wrong_password_and_unknown_user_refused(broker):
    with broker.hub_client() as hub:
        assert hub.client.is_connected()
    with broker.probe(HUB_USERNAME, "wrong", "test-wrong-password") as client:
        assert client.connect().is_failure
    with broker.probe("nobody", broker.hub_password, "test-unknown-user") as client:
        assert client.connect().is_failure


def test_gateway_is_confined_to_its_own_topics(broker):
    password_a = broker.add_gateway("gw-a")
    password_b = broker.add_gateway("gw-b")
    with (broker.hub_client() as hub,
          broker.probe("gw-a", password_a, "test-gw-a") as gw_a,
          broker.probe("gw-b", password_b, "test-gw-b") as gw_b):
        assert not gw_a.connect().is_failure
        assert not gw_b.connect().is_failure
        hub.subscribe("rescuehub/#")
        gw_b.subscribe("rescuehub/v1/readings/#")  # may be granted; delivery is what the ACL checks
        gw_b.subscribe("rescuehub/v1/warnings/#")

        assert not gw_a.publish("rescuehub/v1/readings/gw-a", READING).is_failure
        assert gw_a.publish("rescuehub/v1/readings/gw-b", b"forged").value == NOT_AUTHORIZED
        assert gw_a.publish("rescuehub/v1/warnings/v-1", b"fake").value == NOT_AUTHORIZED
        assert gw_a.publish("rescuehub/v1/hub/status", b"fake").value == NOT_AUTHORIZED
        assert not gw_a.publish("rescuehub/v1/status/gw-a", b'{"online": true}').is_failure
        assert not hub.publish("rescuehub/v1/warnings/v-1", b'{"level": "prepare"}').is_failure

        # One broker thread handles messages in order: by the time the hub's own warning comes
        # back, every earlier publish has been delivered or dropped.
        topics = [hub.next_message().topic for _ in range(3)]
        assert topics == ["rescuehub/v1/readings/gw-a", "rescuehub/v1/status/gw-a",
                          "rescuehub/v1/warnings/v-1"]
        assert gw_b.next_message().topic == "rescuehub/v1/warnings/v-1"  # not gw-a's reading
        with pytest.raises(queue.Empty):
            hub.next_message(timeout=0.05)
        with pytest.raises(queue.Empty):
            gw_b.next_message(timeout=0.05)


def topics_until(client, last: str, copies: int = 1) -> list[str]:
    """The topics a client receives up to the `copies`-th message on `last`. One broker thread
    handles messages in order: whatever was published before `last` has been delivered or
    dropped by then."""
    topics: list[str] = []
    while topics.count(last) < copies:
        topics.append(client.next_message().topic)
    return topics


def test_a_gateway_cannot_take_another_clients_session(broker):
    """The broker makes every client id the login's: a gateway asking for gw-b's id (or the
    hub's) with a persistent session neither pushes them off nor inherits their sessions."""
    password_b = broker.add_gateway("gw-b")
    with (broker.probe("gw-b", password_b, "gw-b", persistent=True) as gw_b,
          broker.hub_client("rescuehub-worker") as hub):
        assert not gw_b.connect().is_failure
        hub.subscribe("rescuehub/v1/readings/+")
        for stolen in ("gw-b", "rescuehub-worker", HUB_USERNAME):
            for protocol in ("3.1.1", "5"):
                # A thief of its own each time: a login's own earlier session is its to resume.
                thief_id = f"gw-{len(broker.accounts)}"
                with broker.probe(thief_id, broker.add_gateway(thief_id), stolen,
                                  protocol=protocol, persistent=True) as thief:
                    assert not thief.connect().is_failure
                    assert thief.session_present is False, (stolen, protocol)
                    # Checked after the thief's CONNACK: the broker closes a taken-over
                    # connection before it answers the new one.
                    assert not gw_b.publish("rescuehub/v1/readings/gw-b", READING).is_failure
                    assert hub.next_message().topic == "rescuehub/v1/readings/gw-b"
        assert not gw_b.dropped.is_set() and not hub.dropped.is_set()
    assert log_count(broker, "already connected, closing old connection") == 0


SUBSCRIBE_REFUSED = {"5": NOT_AUTHORIZED, "3.1.1": 0x80}


def suback(client, topic: str) -> int:
    """The SUBACK's one reason code for a subscription (1: granted at QoS 1)."""
    return [code.value for code in client.subscribe(topic)][0]


def assert_subscriptions(client, protocol: str, granted: list[str], refused: list[str]) -> None:
    for topic in granted:
        assert suback(client, topic) == 1, topic
    for topic in refused:
        assert suback(client, topic) == SUBSCRIBE_REFUSED[protocol], topic


# What no field account may subscribe to, whatever it is given.
REFUSED_TO_ALL = ["#", "$SYS/#", "$SYS/broker/clients/connected", "$share/g/#", "+/#",
                  "rescuehub/#", "owntracks/#", "rescuehub/v1/readings/+",
                  "$CONTROL/dynamic-security/v1/response"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_gateway_is_refused_a_subscription_beyond_what_it_may_read(broker, protocol):
    """The dynamic security plugin refuses it (SUBACK 135 / 0x80): "#", $SYS, another
    gateway's topics. Its warnings, the hub's status and its own OwnTracks tree are granted,
    and the acl still decides what each subscription delivers."""
    password_a = broker.add_gateway("gw-a")
    password_b = broker.add_gateway("gw-b")
    with (broker.hub_client() as hub,
          broker.probe("gw-b", password_b, "gw-b") as gw_b,
          broker.probe("gw-a", password_a, "gw-a", protocol=protocol) as nosy):
        assert not gw_b.connect().is_failure
        assert not hub.publish("rescuehub/v1/hub/status", b'{"online": true}',
                               retain=True).is_failure
        assert not nosy.connect().is_failure
        assert_subscriptions(
            nosy, protocol,
            granted=["rescuehub/v1/warnings/#", "rescuehub/v1/warnings/v-1",
                     "rescuehub/v1/hub/status", "owntracks/gw-a/#", "owntracks/gw-a/+"],
            refused=[*REFUSED_TO_ALL, "rescuehub/v1/readings/gw-b", "rescuehub/v1/status/gw-b",
                     "rescuehub/v1/readings/gw-a", "owntracks/gw-b/#", "rescuehub/v1/+/gw-b"])
        assert not gw_b.publish("rescuehub/v1/readings/gw-b", READING).is_failure
        assert not gw_b.publish("owntracks/gw-b/phone", b'{"_type": "location"}').is_failure
        assert not nosy.publish("rescuehub/v1/readings/gw-a", READING).is_failure
        assert not hub.publish("rescuehub/v1/warnings/v-1", b'{"level": "prepare"}').is_failure
        # The retained hub status on subscribing, then the warning (a second copy under MQTT 5:
        # two subscriptions match it), nothing else.
        topics = topics_until(nosy, "rescuehub/v1/warnings/v-1")
        assert topics == ["rescuehub/v1/hub/status", "rescuehub/v1/warnings/v-1"], topics
        assert not nosy.dropped.is_set()


def test_hub_and_observer_still_subscribe_to_everything(broker):
    """Neither is listed in the plugin: the acl decides, as before (SUBSCRIBE granted)."""
    with broker.hub_client() as hub, broker.observer("monitor") as observer:
        for client in (hub, observer):
            for topic in ("#", "rescuehub/#", "owntracks/#", "$SYS/#"):
                assert suback(client, topic) == 1, topic


def test_terminal_and_phone_are_refused_what_they_may_not_read(broker):
    terminal_password = secrets.token_urlsafe(12)
    broker.install(BrokerAccount("T-V1-1", hash_mqtt_password(terminal_password), "terminal",
                                 topics=("rescuehub/v1/warnings/V1",)), terminal_password)
    phone_password = broker.add_account("PH-1", "device")
    with (broker.probe("T-V1-1", terminal_password, "T-V1-1") as terminal,
          broker.probe("PH-1", phone_password, "PH-1") as phone):
        assert not terminal.connect().is_failure
        assert not phone.connect().is_failure
        assert_subscriptions(
            terminal, "5", granted=["rescuehub/v1/warnings/V1", "rescuehub/v1/hub/status"],
            refused=[*REFUSED_TO_ALL, "rescuehub/v1/warnings/V2", "rescuehub/v1/warnings/#",
                     "owntracks/T-V1-1/#"])
        assert_subscriptions(
            phone, "5", granted=["owntracks/PH-1/#", "owntracks/PH-1/p/event",
                                 "rescuehub/v1/hub/status"],
            refused=[*REFUSED_TO_ALL, "owntracks/PH-2/#", "rescuehub/v1/warnings/#",
                     "rescuehub/v1/readings/PH-1"])

    # The terminal moved to another village: the plugin's rule follows on the reload.
    broker.install(BrokerAccount("T-V1-1", hash_mqtt_password(terminal_password), "terminal",
                                 topics=("rescuehub/v1/warnings/V2",)), terminal_password)
    with broker.probe("T-V1-1", terminal_password, "T-V1-1") as terminal:
        assert not terminal.connect().is_failure
        assert_subscriptions(terminal, "5", granted=["rescuehub/v1/warnings/V2"],
                             refused=["rescuehub/v1/warnings/V1"])


def plugin_clients(broker: LocalBroker) -> list[str]:
    """The usernames the dynamic security plugin lists, asked as its admin."""
    password = (broker.broker_dir / "dynsec-admin").read_text().strip()
    with broker.probe("_dynsec", password, "_dynsec") as admin:
        assert not admin.connect().is_failure
        assert suback(admin, "$CONTROL/dynamic-security/v1/response") == 1
        admin.publish("$CONTROL/dynamic-security/v1",
                      json.dumps({"commands": [{"command": "listClients"}]}).encode())
        answer = json.loads(admin.next_message().payload)
    return sorted(answer["responses"][0]["data"]["clients"])


def test_a_gateway_added_while_the_broker_runs_is_refused_at_once(broker):
    """The CLI's path (`gateway add`: write the files, signal_running_broker): the plugin knows
    the gateway before the SIGHUP, so its first login is already restricted."""
    password = secrets.token_urlsafe(12)
    accounts = [*broker.accounts.values(),
                BrokerAccount("gw-new", hash_mqtt_password(password), "gateway")]
    write_broker_files(broker.broker_dir, accounts)
    assert signal_running_broker(broker.broker_dir)
    with broker.probe("gw-new", password, "gw-new") as client:
        wait_for(lambda: not client.connect().is_failure, what="the new login")
        assert suback(client, "#") == NOT_AUTHORIZED
        assert suback(client, "rescuehub/v1/warnings/#") == 1
    assert plugin_clients(broker) == ["_dynsec", "gw-new"]


def test_a_removed_gateway_leaves_the_plugin(broker):
    """`gateway disable` rewrites the files without it: the reload deletes its plugin client
    (after the SIGHUP), and the others stay."""
    password = broker.add_gateway("gw-a")
    broker.add_gateway("gw-b")
    assert plugin_clients(broker) == ["_dynsec", "gw-a", "gw-b"]
    with broker.probe("gw-a", password, "gw-a") as connected:
        assert not connected.connect().is_failure
        del broker.accounts["gw-a"]
        write_broker_files(broker.broker_dir, broker.accounts.values())
        broker.managed.reload()
        # Closed by the reload as before (the plugin's kick, an MQTT 5 DISCONNECT, comes after
        # it and finds nobody): paho sees the connection lost.
        wait_for(lambda: not connected.client.is_connected(), what="the removed login's end")
    assert log_count(broker, "administrative action") == 0
    assert plugin_clients(broker) == ["_dynsec", "gw-b"]
    assert (json.loads((broker.broker_dir / "dynsec.json").read_text())["clients"][1]["username"]
            == "gw-b")  # the plugin saved its change


def test_the_plugin_admin_can_do_nothing_else(broker):
    password = (broker.broker_dir / "dynsec-admin").read_text().strip()
    with broker.probe("_dynsec", password, "_dynsec") as admin:
        assert not admin.connect().is_failure
        for topic in ("rescuehub/v1/readings/_dynsec", "owntracks/_dynsec/x", "rescuehub/x"):
            assert admin.publish(topic, READING).value == NOT_AUTHORIZED, topic
        for topic in ("#", "rescuehub/v1/hub/status", "owntracks/_dynsec/#", "$SYS/#"):
            assert suback(admin, topic) == NOT_AUTHORIZED, topic


def test_a_failed_plugin_update_sends_no_sighup(broker):
    (broker.broker_dir / "dynsec-admin").write_text("not-the-password\n")
    password = secrets.token_urlsafe(12)
    broker.accounts["gw-late"] = BrokerAccount("gw-late", hash_mqtt_password(password), "gateway")
    write_broker_files(broker.broker_dir, broker.accounts.values())
    with pytest.raises(BrokerError, match="subscription rules could not be updated"):
        broker.managed.reload()
    with pytest.raises(BrokerError, match="subscription rules could not be updated"):
        signal_running_broker(broker.broker_dir)
    assert log_count(broker, "Reloading config") == 0
    with broker.probe("gw-late", password, "gw-late") as client:
        assert client.connect().is_failure  # not reloaded, so not unrestricted either


def test_a_restart_keeps_the_field_accounts_restricted(broker):
    """The plugin reads dynsec.json only at start: the hub writes it fresh then, from the
    accounts (also in a broker directory from before the plugin)."""
    password = broker.add_gateway("gw-a")
    broker.managed.stop()
    (broker.broker_dir / "dynsec.json").unlink()
    broker.managed.start()
    with broker.probe("gw-a", password, "gw-a") as client:
        assert not client.connect().is_failure
        assert suback(client, "#") == NOT_AUTHORIZED
    broker.add_gateway("gw-b")  # and the admin still works after the restart
    assert plugin_clients(broker) == ["_dynsec", "gw-a", "gw-b"]


def test_observer_reads_what_the_hub_reads_and_writes_nothing(broker):
    password = broker.add_gateway("gw-a")
    with (broker.hub_client() as hub, broker.observer("monitor") as observer,
          broker.probe("gw-a", password, "gw-a") as gw_a):
        assert not gw_a.connect().is_failure
        observer.subscribe("rescuehub/#")
        observer.subscribe("owntracks/#")
        hub.subscribe("#")
        assert not gw_a.publish("rescuehub/v1/readings/gw-a", READING).is_failure
        assert not gw_a.publish("owntracks/gw-a/phone", b"{}").is_failure
        # Its own name's topics too, which the patterns for every user would open to it.
        for topic in ("rescuehub/v1/readings/monitor", "rescuehub/v1/status/monitor",
                      "owntracks/monitor/phone", "rescuehub/v1/warnings/v-1",
                      "rescuehub/v1/hub/status", "rescuehub/v1/readings/gw-a"):
            assert observer.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        assert not hub.publish("rescuehub/v1/warnings/v-1", b'{"level": "prepare"}').is_failure
        expected = ["rescuehub/v1/readings/gw-a", "owntracks/gw-a/phone",
                    "rescuehub/v1/warnings/v-1"]
        assert topics_until(observer, expected[-1]) == expected
        assert topics_until(hub, expected[-1]) == expected


def test_reload_adds_an_account_without_a_restart(broker):
    pid = broker.managed.pid
    password = broker.add_gateway("gw-new")  # writes the files, SIGHUP, waits for the login
    with broker.probe("gw-new", password, "test-gw-new") as client:
        assert not client.connect().is_failure
    assert broker.managed.pid == pid
    assert log_count(broker, "Reloading config") == 1


# --- process ----------------------------------------------------------------------------------

def test_start_writes_pid_file_and_runs_in_its_own_process_group(make_broker):
    managed = make_broker()
    pid = managed.pid
    assert (managed.broker_dir / "mosquitto.pid").read_text() == f"{pid}\n"
    assert os.getpgid(pid) == pid != os.getpgid(0)  # a terminal's Ctrl-C reaches the hub only
    managed.start()  # already running: nothing happens
    assert managed.pid == pid
    if os.geteuid() == 0:
        assert Path(f"/proc/{pid}").stat().st_uid == broker_module.pwd.getpwnam("mosquitto").pw_uid


def test_stop_leaves_no_process(make_broker):
    managed = make_broker()
    pid = managed.pid
    managed.stop()
    assert not managed.running and managed.pid is None
    assert process_gone(pid)
    assert not (managed.broker_dir / "mosquitto.pid").exists()
    with socket.socket() as sock:  # the port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", managed.port))
    managed.stop()  # twice is fine


def test_supervise_restarts_a_killed_broker(make_broker, caplog):
    caplog.set_level(logging.WARNING, logger="dispatch.core.broker")
    managed = make_broker()
    managed.supervise()
    old = managed.pid
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: managed.pid not in (None, old) and managed.pid, what="a restart")
    assert process_gone(old) and new != old
    assert "exited unexpectedly" in caplog.text
    managed.stop()
    assert process_gone(new)


def test_child_dies_with_its_parent(tmp_path_factory):
    broker_dir = new_broker_dir(tmp_path_factory)
    write_broker_files(broker_dir, [BrokerAccount("hub", hash_mqtt_password("pw"), "hub")])
    # Load the module by path: it needs the standard library only, not Flask or the database.
    script = f"""
import importlib.util, sys, time
from pathlib import Path
spec = importlib.util.spec_from_file_location("broker", {str(broker_module.__file__)!r})
broker = sys.modules["broker"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(broker)
managed = broker.ManagedBroker(host="127.0.0.1", port={free_port()},
                               broker_dir=Path({str(broker_dir)!r}),
                               template=Path({str(TEMPLATE)!r}))
managed.start()
print(managed.pid, flush=True)
time.sleep(30)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    try:
        wait_for(lambda: process_gone(pid), what="the orphaned broker to exit")
    finally:
        if not process_gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_taken_port_is_refused_with_the_fixes(make_broker):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        managed = make_broker(start=False, port=port)
        with pytest.raises(BrokerError, match=str(port)) as refused:
            managed.start()
    assert "RESCUEHUB_MQTT_URL" in str(refused.value)
    assert "mqtt.managed = false" in str(refused.value)
    assert not managed.running


@pytest.mark.parametrize("executable", ["mosquitto-not-installed", "/nonexistent/mosquitto"])
def test_missing_executable_says_how_to_install(make_broker, executable):
    managed = make_broker(start=False, executable=executable)
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        managed.start()
    assert not managed.running


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root hub runs the broker as another user")
def test_directory_the_broker_user_cannot_enter_is_named(make_broker, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    managed = make_broker(start=False, broker_dir=locked / "mosquitto")
    write_broker_files(locked / "mosquitto", [BrokerAccount("hub", hash_mqtt_password("p"), "hub")])
    with pytest.raises(BrokerError, match="chmod o\\+x"):
        managed.start()


def test_signal_running_broker(broker, tmp_path):
    assert signal_running_broker(broker.broker_dir)
    wait_for(lambda: log_count(broker, "Reloading config") == 1, what="the reload")

    assert not signal_running_broker(tmp_path)  # no pid file
    (tmp_path / "mosquitto.pid").write_text("garbage\n")
    assert not signal_running_broker(tmp_path)
    (tmp_path / "mosquitto.pid").write_text(f"{os.getpid()}\n")  # alive, but not a mosquitto
    assert not signal_running_broker(tmp_path)
    (tmp_path / "mosquitto.pid").write_text(f"{broker.managed.pid}\n")  # another directory's
    assert not signal_running_broker(tmp_path)

    broker.managed.stop()
    assert not signal_running_broker(broker.broker_dir)


def test_fixture_runs_the_template(broker: LocalBroker):
    conf = broker.managed.conf_path.read_text()
    assert f"listener {broker.port} 127.0.0.1" in conf
    assert f"acl_file {broker.broker_dir.resolve()}/acl" in conf
    with running_broker(broker.broker_dir.parent / "second") as second:
        assert second.port != broker.port and second.managed.running


@pytest.mark.skipif(os.geteuid() != 0 or broker_module._broker_owner() is None,
                    reason="only a root hub runs the broker as another user")
def test_a_data_directory_closed_to_the_broker_user_still_runs_the_broker(tmp_path):
    # A clone under /root (mode 700) as root: the broker still runs as `mosquitto`, from files
    # kept where that user can reach them, linked from the data directory.
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    wanted = home / "clone" / "var" / "mosquitto"
    wanted.mkdir(parents=True)
    (wanted / "mosquitto.db").write_bytes(b"kept")  # a broker that ran before: its files move
    relocated = Path(tempfile.mkdtemp(dir="/var/tmp")) / "rescuehub"
    relocated.parent.chmod(0o711)
    try:
        found = broker_module.reachable_broker_dir(wanted, relocated)
        assert found == wanted and wanted.is_symlink()
        target = wanted.resolve()
        assert target.parent == relocated
        assert (target / "mosquitto.db").read_bytes() == b"kept"
        info = target.stat()
        assert (info.st_uid, info.st_gid) == broker_module._broker_owner()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert broker_module.reachable_broker_dir(wanted, relocated) == wanted  # idempotent
        (target / "mosquitto.db").unlink()
        with running_broker(wanted) as running, running.hub_client() as hub:
            assert not hub.connect().is_failure
        assert not (target / "mosquitto.pid").exists()  # stopped cleanly
    finally:
        shutil.rmtree(relocated.parent)

