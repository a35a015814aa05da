"""The positions' Prometheus metrics, in the kernel's registry of the process."""

from prometheus_client import Counter, Gauge

from dispatch.core.metrics import registry
from dispatch.positions.fixes import IGNORED_TYPES, REASONS

# Rejections: the decoding reasons, plus `unknown_device` (a login or identifier that names no
# active device: answered 401 over HTTP, counted and logged, never dead-lettered).
REJECT_REASONS = (*REASONS, "unknown_device")

received = Counter("rescuehub_positions_received",
                   "Position messages received (MQTT, HTTP, the tablets' own fixes)",
                   registry=registry)
stored = Counter("rescuehub_positions_stored", "Fixes stored in the tracks", registry=registry)
duplicate = Counter("rescuehub_positions_duplicate",
                    "Fixes already stored for that member and time (a phone's retry)",
                    registry=registry)
rejected = Counter("rescuehub_positions_rejected", "Position messages refused, by reason",
                   ["reason"], registry=registry)
ignored = Counter("rescuehub_positions_ignored",
                  "OwnTracks messages of types positions do not use, by type", ["type"],
                  registry=registry)
queue_depth = Gauge("rescuehub_positions_queue_depth",
                    "OwnTracks MQTT messages waiting to be stored", registry=registry)
for _reason in REJECT_REASONS:
    rejected.labels(reason=_reason)
for _type in IGNORED_TYPES:
    ignored.labels(type=_type)
