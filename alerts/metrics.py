"""Alerts' Prometheus metrics (names of DESIGN §5 "Alerts (contract)"), in the kernel's registry of
the process. Every label combination is exposed from the start, so dashboards see zeros."""

from prometheus_client import Counter, Gauge

from alerts.choices import LEVELS, AlertKind, AlertState
from dispatch.core.metrics import registry

# Where a delivery goes: a configured webhook (alerts.webhooks) or the county (乡呼县应).
DELIVERY_CHANNELS = ("webhook", "county")
# sent: answered 2xx; retry: failed, tried again after a backoff; failed: given up.
DELIVERY_OUTCOMES = ("sent", "retry", "failed")

alert_deliveries = Counter(
    "rescuehub_alert_deliveries", "Alert notifications tried, by channel and outcome",
    ["channel", "outcome"], registry=registry)
alert_transitions = Counter(
    "rescuehub_alert_transitions", "Alerts entering a state (raised, acknowledged, escalated, "
    "cleared, cancelled), by kind", ["kind", "state"], registry=registry)
alerts_active = Gauge(
    "rescuehub_alerts_active", "Active alerts, by kind and level", ["kind", "level"],
    registry=registry)

for _channel in DELIVERY_CHANNELS:
    for _outcome in DELIVERY_OUTCOMES:
        alert_deliveries.labels(channel=_channel, outcome=_outcome)
for _kind in AlertKind:
    for _state in AlertState:
        alert_transitions.labels(kind=_kind, state=_state)
    for _level in LEVELS[_kind]:
        alerts_active.labels(kind=_kind, level=_level)
