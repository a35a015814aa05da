"""Alerts' background work in the process that owns MQTT: the evaluator thread (attached like
telemetry's bridge) and the sweep job that judges every subject and takes due escalations
(listed in dispatch/jobs.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from alerts import service
from alerts.evaluate import Evaluator
from dispatch.core.mqtt import HubMqtt


def attach(app: Flask, _mqtt: HubMqtt) -> Callable[[], None]:
    """Start this process's evaluator; returns its stop function."""
    evaluator = Evaluator(app, service.announce)
    app.extensions["alerts.evaluator"] = evaluator
    evaluator.start()
    evaluator.sweep()  # at start: windows moved on while the hub was down

    def stop() -> None:
        evaluator.stop()
        app.extensions.pop("alerts.evaluator", None)

    return stop


def sweep_warnings() -> None:
    """Judge every subject now and take the escalation steps that are due."""
    evaluator = current_app.extensions.get("alerts.evaluator")
    if evaluator is not None:
        evaluator.sweep()


def on_readings_stored(payload) -> None:
    """`readings_stored` receiver: judge those sensors' subjects right after their commit."""
    evaluator = current_app.extensions.get("alerts.evaluator")
    if evaluator is not None:
        evaluator.submit(payload.sensor_ids, payload.nonzero_ids)
