"""The hub's MQTT client against a real Mosquitto: acknowledgements after the fact."""

import queue

import pytest

from dispatch.core.mqtt import HubMqtt

TOPIC = "rescuehub/v1/readings/gw-ack"


def _hub(broker, protocol: str) -> tuple[HubMqtt, queue.Queue]:
    received: queue.Queue = queue.Queue()
    hub = HubMqtt(host=broker.host, port=broker.port, client_id=f"test-ack-{protocol}",
                  username=broker.hub_username, password=broker.hub_password,
                  session_expiry_s=600, protocol=protocol)
    hub.subscribe("rescuehub/v1/readings/+", received.put)
    hub.start()
    assert hub.wait_connected(5)
    return hub, received


def _take(received: queue.Queue, count: int) -> list:
    return [received.get(timeout=5) for _ in range(count)]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_ack_all_acknowledges_exactly_the_messages_it_names(broker, protocol):
    password = broker.add_gateway("gw-ack")
    hub, received = _hub(broker, protocol)
    with broker.probe("gw-ack", password, "test-gw-ack") as gateway:
        assert not gateway.connect().is_failure
        for n in range(40):
            assert not gateway.publish(TOPIC, b"%d" % n).is_failure
        messages = _take(received, 40)
        assert [m.payload for m in messages] == [b"%d" % n for n in range(40)]
        # Acknowledge the first 25 in one write, leave the rest, and go away cleanly: the
        # persistent session keeps the 15 for the next connection.
        hub.ack_all([m.mid for m in messages[:25]])
        hub.stop()

        hub, received = _hub(broker, protocol)
        try:
            again = _take(received, 15)
            assert sorted(m.payload for m in again) == sorted(b"%d" % n for n in range(25, 40))
            with pytest.raises(queue.Empty):
                received.get(timeout=0.3)
            hub.ack_all([m.mid for m in again])
            hub.ack_all([])
        finally:
            hub.stop()

    hub, received = _hub(broker, protocol)
    try:
        with pytest.raises(queue.Empty):  # all acknowledged: nothing comes a third time
            received.get(timeout=0.5)
    finally:
        hub.stop()


@pytest.mark.allow_logged_exceptions
def test_on_connected_callbacks_run_on_every_connect_and_survive_a_failing_one(
        broker, caplog):
    """Each (re)connect calls every callback, in order, once connected; one that raises
    is logged and the others still run."""
    calls: queue.Queue = queue.Queue()
    hub = HubMqtt(host=broker.host, port=broker.port, client_id="test-on-connected",
                  username=broker.hub_username, password=broker.hub_password,
                  session_expiry_s=60)
    hub.subscribe("rescuehub/v1/readings/+", lambda _message: None)

    def broken() -> None:
        raise RuntimeError("a package's bug")

    hub.on_connected(lambda: calls.put(("first", hub.connected)))
    hub.on_connected(broken)
    hub.on_connected(lambda: calls.put(("last", hub.connected)))
    hub.start()
    try:
        assert [calls.get(timeout=5) for _ in range(2)] == [("first", True), ("last", True)]
        assert "MQTT on-connect callback" in caplog.text and "a package's bug" in caplog.text
        broker.managed.stop()
        broker.managed.start()
        assert [calls.get(timeout=10) for _ in range(2)] == [("first", True), ("last", True)]
    finally:
        hub.stop()
