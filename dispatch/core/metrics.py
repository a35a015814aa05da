"""Prometheus metrics, one registry per process: the kernel's own here; each package declares
its metrics in its `metrics.py` in this registry (names of DESIGN §5, prefixed `rescuehub_`)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

registry = CollectorRegistry(auto_describe=True)

mqtt_connected = Gauge("rescuehub_mqtt_connected", "1 when this process's MQTT client is connected",
                       registry=registry)
login_failures = Counter("rescuehub_login_failures", "Failed sign-ins", registry=registry)


def exposition() -> bytes:
    """The Prometheus text exposition of this process's metrics."""
    return generate_latest(registry)
