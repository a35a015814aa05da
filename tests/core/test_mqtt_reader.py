"""The hub's MQTT reader (dispatch.core.mqtt._Client) over a real socket pair: every PUBLISH as
paho's own decoder reads it, however the bytes arrive; every other packet, and an MQTT 5 PUBLISH
with properties, to paho."""

import random
import socket
import struct

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from dispatch.core.mqtt import RECV_BYTES, HubMqtt, Received, _Client, _remaining_length


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, qos: int, retain: bool, dup: bool, mid: int,
             properties: bytes | None = None) -> bytes:
    """A PUBLISH; `properties` (their length included) makes it an MQTT 5 one."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    body += (properties or b"") + payload
    return bytes([0x30 | dup << 3 | qos << 1 | retain]) + _length(len(body)) + body


def _expected(packet: bytes, protocol=MQTTProtocolVersion.MQTTv311) -> Received:
    """What paho's own decoder makes of a PUBLISH (the oracle)."""
    at, _ = _remaining_length(packet, 1, len(packet))
    got = _packet.decode_publish(packet[0], packet[at:], protocol)
    return Received(got.topic.decode(), got.payload, got.qos, got.retain, got.mid, got.dup)


def _fields(message) -> Received:
    """A Received, or paho's MQTTMessage, as a Received."""
    return Received(message.topic, message.payload, message.qos, message.retain, message.mid,
                    message.dup)


class Reader:
    """A _Client whose socket is one end of a socket pair; the test writes the other end.
    Messages paho handles itself reach `on_message`, and are collected too."""

    def __init__(self, manual_ack: bool = True, protocol=paho.MQTTv311):
        self.got: list = []
        self.client = _Client(CallbackAPIVersion.VERSION2, client_id="test-reader",
                              protocol=protocol, manual_ack=manual_ack, route=self.route)
        self.client.on_message = lambda _client, _userdata, message: self.got.append(message)
        self.connect()

    def route(self, topic: str):
        return (self.got.append,)

    def connect(self) -> None:
        self.client._sock, self.peer = socket.socketpair()
        self.client._sock.setblocking(False)

    def feed(self, data: bytes) -> MQTTErrorCode:
        self.peer.sendall(data)
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = self.client._packet_read()
        return rc

    def close(self) -> None:
        self.client._sock.close()
        self.peer.close()


@pytest.fixture
def reader():
    reader = Reader()
    yield reader
    reader.close()


def _random_publishes(rng: random.Random, count: int) -> list[bytes]:
    sizes = [0, 1, 100, 127 - 12, 128, 16_383 - 20, 16_384, RECV_BYTES + 5_000]
    packets = []
    for n in range(count):
        topic = f"rescuehub/v1/readings/GW-{rng.randrange(10_000)}-站"
        size = sizes[n] if n < len(sizes) else rng.randrange(400)
        qos = rng.randrange(2)
        packets.append(_publish(topic.encode(), rng.randbytes(size), qos,
                                rng.random() < 0.2, rng.random() < 0.2,
                                rng.randrange(1, 65_536) if qos else 0))
    return packets


@pytest.mark.parametrize("seed", range(6))
def test_publishes_read_as_paho_decodes_them_however_the_bytes_arrive(reader, seed):
    rng = random.Random(seed)
    packets = _random_publishes(rng, 60)
    stream = b"".join(packets)
    at = 0
    while at < len(stream):  # chunks of 1 byte to several packets, cut anywhere
        step = rng.choice([1, 2, 3, rng.randrange(1, 600), rng.randrange(1, 40_000)])
        assert reader.feed(stream[at:at + step]) == MQTTErrorCode.MQTT_ERR_AGAIN
        at += step
    assert reader.got == [_expected(packet) for packet in packets]


def test_mqtt5_publishes_without_properties_are_read_and_those_with_go_to_paho():
    rng = random.Random(11)
    reader = Reader(protocol=paho.MQTTv5)
    try:
        packets = [_publish(f"rescuehub/v1/readings/GW-{n}".encode(), rng.randbytes(50 + n),
                            n % 2, False, False, n + 1,
                            b"\x02\x01\x01" if n % 3 == 0 else b"\x00")  # payload format
                   for n in range(30)]
        stream = b"".join(packets)
        for at in range(0, len(stream), 97):
            reader.feed(stream[at:at + 97])
        assert [_fields(m) for m in reader.got] == [
            _expected(p, MQTTProtocolVersion.MQTTv5) for p in packets]
        assert [type(m) is Received for m in reader.got] == [n % 3 != 0 for n in range(30)]
    finally:
        reader.close()


def test_a_reconnect_forgets_the_half_packet_of_the_old_connection(reader):
    first, second = _random_publishes(random.Random(7), 2)
    reader.feed(first[:len(first) // 2])
    assert reader.got == []
    reader.close()
    reader.connect()
    reader.feed(second)
    assert reader.got == [_expected(second)]


def test_other_packets_go_to_paho_between_publishes(reader):
    qos1 = _publish(b"rescuehub/v1/readings/GW-1", b"1", 1, False, False, 11)
    qos2 = _publish(b"rescuehub/v1/readings/GW-1", b"2", 2, False, False, 12)
    pingresp = bytes([0xD0, 0])
    reader.client._ping_t = 123.0
    reader.feed(qos1 + pingresp + qos2 + qos1)
    assert reader.client._ping_t == 0  # paho's PINGRESP handling ran
    # QoS 2 is paho's: it holds the message until PUBREL and answers PUBREC.
    assert list(reader.client._in_messages) == [12]
    assert reader.peer.recv(100) == bytes([0x50, 2, 0, 12])
    assert [m.payload for m in reader.got] == [b"1", b"1"]


def test_without_manual_acks_a_qos1_publish_is_acknowledged_at_once():
    reader = Reader(manual_ack=False)
    try:
        reader.feed(_publish(b"rescuehub/v1/status/GW-1", b"{}", 1, False, False, 513))
        assert reader.peer.recv(100) == bytes([0x40, 2, 2, 1])
        assert reader.got == [Received("rescuehub/v1/status/GW-1", b"{}", 1, False, 513)]
    finally:
        reader.close()


@pytest.mark.parametrize("packet", [
    bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),  # a remaining length of five bytes
    _publish(b"", b"x", 1, False, False, 1),  # no topic, which 3.1.1 forbids
    bytes([0x32, 3, 0, 5, ord("a")]),  # the topic runs past the packet
], ids=["length", "empty-topic", "short"])
def test_a_malformed_packet_is_a_protocol_error(reader, packet):
    assert reader.feed(packet) == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert reader.got == []


def test_a_closed_connection_is_lost(reader):
    reader.peer.close()
    assert reader.client._packet_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST


def test_the_hub_routes_each_topic_to_the_handlers_whose_filters_match():
    hub = HubMqtt(host="127.0.0.1", port=1, client_id="test-route", username="u", password="p",
                  session_expiry_s=60)
    seen: list = []
    hub.subscribe("rescuehub/v1/readings/+", lambda m: seen.append(("readings", m.topic)))
    hub.subscribe("rescuehub/v1/#", lambda m: seen.append(("all", m.topic)))
    message = Received("rescuehub/v1/readings/GW-1", b"{}", 1, False, 7)
    for handler in hub._route(message.topic):
        handler(message)
    assert seen == [("readings", message.topic), ("all", message.topic)]
    assert hub._route("owntracks/a/b") == (hub._unhandled,)
    # A subscription added later is routed to at once, the remembered routes notwithstanding.
    hub.subscribe("owntracks/+/+", lambda m: seen.append(("owntracks", m.topic)))
    seen.clear()
    for handler in hub._route("owntracks/a/b"):
        handler(message._replace(topic="owntracks/a/b"))
    assert seen == [("owntracks", "owntracks/a/b")]
