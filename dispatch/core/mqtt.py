"""The hub's own MQTT connection: one client, owned by the one process that runs background work.

A stable client id with a persistent session: MQTT 3.1.1 `clean_session=False` by default, or MQTT 5
`clean_start=False` plus a session expiry (without the expiry the broker drops a v5 session at once,
NOTES.md). The broker keys that session by the hub's login (config/mosquitto.conf:
`use_username_as_clientid`), so no other account can take it over, and another connection with the
hub's login pushes this one off: every other client needs a login of its own. 3.1.1 is the default:
with paho's own receive path, which decodes every MQTT 5 PUBLISH's properties into a fresh
`Properties` object, MQTT 5 cost ~40 % more of the receiving process's CPU with single readings
(bench/ingest.py); the hub needs no properties. Subscriptions are made in `on_connect` so a
reconnect restores them, and a retained online status with a last will on `rescuehub/v1/hub/status`.
Callbacks never block and never raise: handlers are expected to hand work to a queue; an exception
is logged with its traceback and the loop goes on. Packages that must act on every (re)connect
(alerts republishes the retained village warnings a restarted broker may have lost) register with
`on_connected`.

The hub reads its socket itself (`_Client`). paho reads each packet with three or more `recv` calls
(its first byte, each byte of its length, then the rest), handles one packet per pass of its loop (a
`select` and its keepalive checks each), and builds an `MQTTMessage` (with an `MQTTMessageInfo`, a
Condition and a lock) and matches it against the subscriptions' trie, per message. `_Client` takes
whatever the socket holds in one `recv`, splits it into packets, and hands each QoS 0/1 PUBLISH to
its handlers as a `Received` (the fields the handlers read), with the handlers found once per topic;
every other packet (CONNACK, SUBACK, PUBACK, PINGRESP, a QoS 2 PUBLISH, a malformed one) goes to
paho's own handling, unchanged; so does an MQTT 5 PUBLISH with properties (paho decodes them; a
gateway's readings carry none). Measured draining 50,000 queued single readings (acks in batches, as
the ingest bridge does): paho's path 88-108 µs of CPU per message, this one 6 µs; it was about as
much CPU as the writer process spent storing the readings (bench/alerts.py).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
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
PUBLISH = 0x30
# Bytes asked of the socket per read: a few hundred single readings.
RECV_BYTES = 1 << 16
# Topics whose handlers are remembered (one per gateway; forgotten all at once past this).
ROUTES_KEPT = 20_000


class Received(NamedTuple):
    """A PUBLISH as the hub's handlers see it: the fields of paho's `MQTTMessage` they read."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool = False


Handler = Callable[[Received | paho.MQTTMessage], None]


@dataclass(frozen=True)
class Subscription:
    """A topic filter and the handler its messages go to."""

    topic: str
    qos: int
    handler: Handler


def _status(online: bool) -> bytes:
    body = {"online": online, "ts": datetime.now(UTC).isoformat(timespec="seconds")}
    return json.dumps(body).encode()


def _remaining_length(data: bytes, at: int, end: int) -> tuple[int, int]:
    """A packet's remaining length (1 to 4 bytes at `at`, 7 bits each, least significant
    first): (where the packet's body starts, its length); (-1, 0) when the bytes are not all
    there yet, (-1, -1) when the length is longer than MQTT allows."""
    length = shift = 0
    while at < end:
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return at, length
        shift += 7
        if shift > 21:
            return -1, -1
    return -1, 0


def _in_packet(command: int, body: bytes) -> dict:
    """paho's record of the packet being read, complete (`command` 0: none, as paho resets it)."""
    return {"command": command, "have_remaining": int(command != 0), "remaining_count": [],
            "remaining_mult": 1, "remaining_length": len(body), "packet": bytearray(body),
            "to_process": 0, "pos": 0}


class _Client(paho.Client):
    """paho's client reading packets in bulk (module docstring). `route(topic)` gives the
    handlers of a topic."""

    def __init__(self, *args, route: Callable[[str], tuple[Handler, ...]], **kwargs):
        super().__init__(*args, **kwargs)
        self._route = route
        self._v5 = self._protocol == paho.MQTTv5
        self._rx = b""  # the start of a packet the last read did not complete
        self._rx_sock = None

    def _packet_read(self) -> MQTTErrorCode:
        if self._sock is not self._rx_sock:  # a new connection: nothing left of the old one
            self._rx_sock, self._rx = self._sock, b""
        try:
            data = self._sock_recv(RECV_BYTES)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:  # TimeoutError included
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        if self._rx:  # a packet larger than a read (up to max_packet_size) is joined read by read
            data = self._rx + data
        end = len(data)
        pos = 0
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while end - pos >= 2:
            header = data[pos]
            at, length = _remaining_length(data, pos + 1, end)
            if at < 0 or at + length > end:
                if length < 0:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                break  # the packet is not all here yet
            body_end = at + length
            if header & 0xF0 == PUBLISH and header & 0x06 < 0x04:
                rc = self._take_publish(header, data, at, body_end)
            else:
                rc = self._paho_handles(header, data[at:body_end])
            pos = body_end
            if rc:
                break
        self._rx = data[pos:] if pos < end else b""
        return rc

    def _take_publish(self, header: int, data: bytes, at: int, end: int) -> MQTTErrorCode:
        """A QoS 0 or 1 PUBLISH straight to its handlers (paho's `_handle_publish` otherwise)."""
        if end - at < 2:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        topic_end = at + 2 + (data[at] << 8 | data[at + 1])
        qos = (header & 0x06) >> 1
        payload_at = topic_end + 2 if qos else topic_end
        if payload_at > end:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if self._v5:  # the properties' length: one byte 0 when there are none
            if payload_at == end or data[payload_at]:
                return self._paho_handles(header, data[at:end])
            payload_at += 1
        try:
            topic = data[at + 2:topic_end].decode()
        except UnicodeDecodeError:  # paho's own handling logs it and calls on_message
            return self._paho_handles(header, data[at:end])
        if not topic:  # 3.1.1 forbids it, MQTT 5 needs an alias: paho's handling decides
            return self._paho_handles(header, data[at:end])
        mid = data[topic_end] << 8 | data[topic_end + 1] if qos else 0
        message = Received(topic, data[payload_at:end], qos, bool(header & 0x01), mid,
                           bool(header & 0x08))
        handlers = self._route(topic)
        with self._in_callback_mutex:
            for handler in handlers:
                handler(message)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _paho_handles(self, header: int, body: bytes) -> MQTTErrorCode:
        """Any other packet, handled by paho as its own `_packet_read` would."""
        self._in_packet = _in_packet(header, body)
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _in_packet(0, b"")
        return rc


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
        # Topic -> its handlers (guarded), for _Client; cleared when a subscription is added.
        self._routes: dict[str, tuple[Handler, ...]] = {}
        self._routes_lock = threading.Lock()
        self._on_connected: list[Callable[[], None]] = []
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        # Manual acks: a handler acknowledges a QoS 1 message only once it is safely stored
        # (telemetry.bridge); an unacknowledged one is redelivered after a crash.
        if self.v5:
            self.client = _Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5, manual_ack=manual_ack, route=self._route)
        else:
            self.client = _Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311, clean_session=False,
                                  manual_ack=manual_ack, route=self._route)
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
        guarded = self._guard(handler)
        with self._routes_lock:
            self._subscriptions.append(Subscription(topic, qos, guarded))
            self._routes.clear()
        self.client.message_callback_add(topic, lambda _client, _userdata, message:
                                         guarded(message))
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

    def _route(self, topic: str) -> tuple[Handler, ...]:
        """The handlers of the subscriptions that match topic (_Client's dispatch)."""
        handlers = self._routes.get(topic)
        if handlers is None:
            with self._routes_lock:
                handlers = tuple(sub.handler for sub in self._subscriptions
                                 if paho.topic_matches_sub(sub.topic, topic))
                if len(self._routes) >= ROUTES_KEPT:
                    self._routes.clear()
                self._routes[topic] = handlers = handlers or (self._unhandled,)
        return handlers

    def _guard(self, handler: Handler) -> Handler:
        def guarded(message):
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

    def _on_message(self, _client, _userdata, message):
        self._unhandled(message)

    def _unhandled(self, message: Received | paho.MQTTMessage) -> None:
        log.debug("MQTT message on %s without a handler", message.topic)
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)  # nothing will store it: do not hold it
