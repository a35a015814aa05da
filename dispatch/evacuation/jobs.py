"""The evacuation planner's job, its MQTT-owner attachment and its signal receivers (listed in
dispatch/jobs.py and connected by dispatch/evacuation/__init__.py)."""

from __future__ import annotations

from flask import Flask, current_app

from dispatch.core.db import db
from dispatch.core.events import FeatureChanged, WarningChanged
from dispatch.evacuation.planner import EXTENSION, LAYER_TRIGGERS, Planner, inputs_key


def attach(app: Flask, _mqtt=None):
    """Start this process's planner; returns its stop function. Under the hub's background
    work the plans are made in a child process of their own (see planner.py's docstring);
    without it (attached alone, as in tests), in the planner's thread."""
    background = app.extensions.get("rescuehub.background")
    planner = Planner(app, background.child("planner").call if background else None)
    app.extensions[EXTENSION] = planner
    planner.start()
    planner.request("manual", "start")  # inputs may have changed while the hub was down

    def stop() -> None:
        planner.stop()
        app.extensions.pop(EXTENSION, None)

    return stop


def _planner() -> Planner | None:
    try:
        return current_app.extensions.get(EXTENSION)
    except RuntimeError:  # no app context: nothing to plan in
        return None


def on_warning_changed(payload: WarningChanged) -> None:
    """`warning_changed` receiver: re-plan for the villages and zones whose level changed."""
    planner = _planner()
    if planner is not None:
        planner.request("alert", ",".join([*payload.villages, *payload.hazards]))


def on_feature_changed(payload: FeatureChanged) -> None:
    """`feature_changed` receiver: roads and shelters (and villages' people) re-plan."""
    planner = _planner()
    kind = LAYER_TRIGGERS.get(payload.layer)
    if planner is not None and kind is not None:
        planner.request(kind, payload.code or payload.action)


def refresh_plan() -> None:
    """Job: ask for a new version when the inputs' key moved (changes from other processes)."""
    planner = _planner()
    if planner is None:
        return
    key = inputs_key(db.session, current_app.config["SETTINGS"])
    if planner.key is not None and key != planner.key:
        planner.request(_what_moved(planner.key, key), "refresh")
    planner.key = key


def _what_moved(before: tuple, after: tuple) -> str:
    if before[0][1] != after[0][1] or before[1] != after[1]:
        return "alert"
    if before[2] != after[2]:
        return "road"
    if before[3] != after[3] or before[4] != after[4]:
        return "shelter"
    return "manual"
