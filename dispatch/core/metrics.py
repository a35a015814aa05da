"""Prometheus metrics (names of DESIGN §5), one registry per process."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

registry = CollectorRegistry(auto_describe=True)

# The ingest reasons of DESIGN §5; each is exposed from the start so dashboards see zeros.
REJECT_REASONS = (
    "bad_json", "bad_encoding", "schema", "bad_timestamp", "not_finite", "unknown_sensor",
    "foreign_sensor", "retired_sensor", "unit_mismatch", "out_of_range", "too_old", "future",
    "too_large", "conflict",
)

readings_received = Counter("rescuehub_readings_received", "Readings received (MQTT and HTTP)",
                            registry=registry)
readings_stored = Counter("rescuehub_readings_stored", "Readings stored", registry=registry)
readings_duplicate = Counter("rescuehub_readings_duplicate",
                             "Readings already stored with the same value", registry=registry)
readings_rejected = Counter("rescuehub_readings_rejected", "Readings dead-lettered, by reason",
                            ["reason"], registry=registry)
for _reason in REJECT_REASONS:
    readings_rejected.labels(reason=_reason)
ingest_queue_depth = Gauge("rescuehub_ingest_queue_depth",
                           "MQTT messages waiting for the ingest writer", registry=registry)
ingest_batch_size = Histogram("rescuehub_ingest_batch_messages",
                              "MQTT messages written per ingest transaction",
                              buckets=(1, 5, 20, 50, 100, 200, 500), registry=registry)
mqtt_connected = Gauge("rescuehub_mqtt_connected", "1 when this process's MQTT client is connected",
                       registry=registry)
login_failures = Counter("rescuehub_login_failures", "Failed sign-ins", registry=registry)


def exposition() -> bytes:
    """The Prometheus text exposition of this process's metrics."""
    return generate_latest(registry)
