"""Telemetry's Prometheus metrics (names of DESIGN §5), in the kernel's registry of the process."""

from prometheus_client import Counter, Gauge, Histogram

from dispatch.core.metrics import registry

# The ingest reasons of DESIGN §5; each is exposed from the start so dashboards see zeros.
REJECT_REASONS = (
    "bad_json", "bad_encoding", "schema", "bad_timestamp", "not_finite", "unknown_sensor",
    "foreign_sensor", "retired_sensor", "unit_mismatch", "out_of_range", "too_old", "future",
    "too_large", "conflict",
)
# Every reason a dead letter in telemetry's store can carry: the readings' reasons, and
# `swapped`, which the positions intake (dispatch.positions.fixes) writes into the same store for
# a fix whose latitude and longitude are swapped (the store is telemetry's, so is its vocabulary).
LETTER_REASONS = (*REJECT_REASONS, "swapped")

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
dead_letters_dropped = Counter(
    "rescuehub_dead_letters_dropped",
    "Rejected messages or readings whose payload was not kept (dead-letter quota), by gateway "
    "and reason", ["gateway", "reason"], registry=registry)
