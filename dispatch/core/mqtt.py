"""The hub's own MQTT connection: one client, owned by the one process that runs background work.

A stable client id with a persistent session: MQTT 3.1.1 `clean_session=False` by default, or
MQTT 5 `clean_start=False` plus a session expiry (without the expiry the broker drops a v5 session
at once, NOTES.md). The broker keys that session by the hub's login (config/mosquitto.conf:
`use_username_as_clientid`), so no other account can take it over, and another connection with
the hub's login pushes this one off: every other client needs a login of its own.
3.1.1 is the default because paho decodes every MQTT 5 PUBLISH's properties into a fresh
`Properties` object, which measured ~40 % of the receiving process's CPU with single readings
(bench/ingest.py); the hub needs none of them. Subscriptions are made in `on_connect` so a
reconnect restores them, and a retained online status with a last will on
`rescuehub/v1/hub/status`. Callbacks never block and never raise: handlers are expected to hand
work to a queue; an exception is logged with its traceback and the loop goes on. Packages that
must act on every (re)connect (alerts republishes the retained village warnings a restarted
broker may have lost) register with `on_connected`.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dispatch.core import metrics

log = logging.getLogger(__name__)
# How long stop() lets the network thread flush what is queued before stopping it.
STOP_FLUSH_S = 2.0

HUB_STATUS_TOPIC = "rescuehub/v1/hub/status"
# An MQTT PUBACK without reason code or properties (valid in 3.1.1 and 5): fixed header 0x40,
# remaining length 2, the packet id.
PUBACK = 0x40
_PUBACK = struct.Struct("!BBH")

Handler = Callable[[paho.MQTTMessage], None]


@dataclass(frozen=True)
class Subscription:
    """A topic filter and the handler its messages go to."""

    topic: str
    qos: int
    handler: Handler


def _status(online: bool) -> bytes:
    body = {"online": online, "ts": datetime.now(UTC).isoformat(timespec="seconds")}
    return json.dumps(body).encode()


class HubMqtt:
    """The hub's MQTT client: connects in the background, reconnects, reports its state."""

    def __init__(self, *, host: str, port: int, client_id: str, username: str, password: str,
                 session_expiry_s: int, keepalive_s: int = 30, tls: bool = False,
                 manual_ack: bool = True, protocol: str = "3.1.1"):
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        self.session_expiry_s = session_expiry_s
        self.v5 = protocol == "5"
        self.manual_ack = manual_ack
        self._subscriptions: list[Subscription] = []
        self._on_connected: list[Callable[[], None]] = []
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        # Manual acks: a handler acknowledges a QoS 1 message only once it is safely stored
        # (telemetry.bridge); an unacknowledged one is redelivered after a crash.
        if self.v5:
            self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=paho.MQTTv5, manual_ack=manual_ack)
        else:
            self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=paho.MQTTv311, clean_session=False,
                                      manual_ack=manual_ack)
        self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self.client.will_set(HUB_STATUS_TOPIC, _status(False), qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.max_inflight_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        """Register a subscription; it is (re)made on every connect."""
        self._subscriptions.append(Subscription(topic, qos, handler))
        self.client.message_callback_add(topic, self._guard(handler))
        if self.connected:
            self.client.subscribe(topic, qos)

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Call callback after every (re)connect, once the subscriptions are made. It runs in
        paho's network thread, so it must not block (wake a thread of its own instead)."""
        self._on_connected.append(callback)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background and keep reconnecting."""
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False):
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def ack_all(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages (manual acks), in order, in one write to the socket.

        paho's `ack()` queues each 4-byte PUBACK as a packet of its own, with its own wake-up of
        the network loop and its own socket write: measured with single readings
        (bench/ingest.py), that was ~15 % of the receiving process's CPU. Here the PUBACKs go
        into paho's out-queue as one packet (paho writes a packet's bytes in order and resumes
        a partial write), through its `_packet_queue`, which paho has had in this form since
        1.x; a paho without it gets `ack()` per message."""
        if not mids:
            return
        queue_packet = getattr(self.client, "_packet_queue", None)
        if queue_packet is None or not self.manual_ack:
            for mid in mids:
                self.client.ack(mid, 1)
            return
        queue_packet(PUBACK, b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids]), 0, 0)

    def stop(self) -> None:
        """Publish offline, disconnect cleanly and stop the loop."""
        if self.connected:
            self.client.publish(HUB_STATUS_TOPIC, _status(False), qos=1, retain=True)
        self.client.disconnect()
        # Let the network thread write what is queued (acks, the offline status, DISCONNECT)
        # before it is stopped: a loop stopped at once could drop the last PUBACKs, and the
        # broker then delivered those messages again (seen under load in CI).
        if self.connected:
            self._disconnected.wait(STOP_FLUSH_S)
        self.client.loop_stop()
        self._connected.clear()
        self._disconnected.set()
        metrics.mqtt_connected.set(0)

    def _guard(self, handler: Handler) -> Handler:
        def guarded(_client, _userdata, message):
            try:
                handler(message)
            except Exception:
                log.exception("MQTT handler %s failed on %s", handler.__name__, message.topic)

        return guarded

    def _on_connect(self, client, _userdata, _flags, reason_code, _props):
        if reason_code.is_failure:
            log.error("MQTT broker %s:%s refused the hub: %s", self.host, self.port, reason_code)
            return
        log.info("MQTT connected to %s:%s", self.host, self.port)
        for sub in self._subscriptions:
            client.subscribe(sub.topic, sub.qos)
        client.publish(HUB_STATUS_TOPIC, _status(True), qos=1, retain=True)
        self._disconnected.clear()
        self._connected.set()
        metrics.mqtt_connected.set(1)
        for callback in self._on_connected:
            try:
                callback()
            except Exception:  # one package's failure must not keep the others from knowing
                log.exception("MQTT on-connect callback %s failed",
                              getattr(callback, "__qualname__", callback))

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props):
        if self._connected.is_set():
            log.warning("MQTT disconnected from %s:%s: %s", self.host, self.port, reason_code)
        self._connected.clear()
        self._disconnected.set()
        metrics.mqtt_connected.set(0)

    def _on_message(self, client, _userdata, message):
        log.debug("MQTT message on %s without a handler", message.topic)
        if message.qos > 0:
            client.ack(message.mid, message.qos)  # nothing will store it: do not hold it
