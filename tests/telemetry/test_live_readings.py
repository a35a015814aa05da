"""The `reading` event's throttle (telemetry/live.py Announcer): at most one event per sensor per
window, the newest reading held and sent when the window is up, never an older one after it."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from telemetry import live

pytestmark = pytest.mark.any_backend

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


# The sensors of this file's announcers. `notify` is patched for the whole process, where an
# earlier test's app may still send a held reading of its own (RG-A) when its window is up.
SENSORS = {"RG-1", "RG-2"}


@pytest.fixture
def sent(app, monkeypatch):
    events: list[dict] = []

    def note(name, event):
        if event.get("sensor") in SENSORS:
            events.append((name, event))

    monkeypatch.setattr(live, "notify", note)
    return events


def test_one_event_per_sensor_per_window_and_the_newest_held_goes_out_after(app, sent):
    announcer = live.Announcer(app, every_s=0.2)
    announcer.announce([("RG-1", T0, 1.5, "good"), ("RG-1", T0 + timedelta(minutes=1), 2.0,
                                                      "good"), ("RG-2", T0, 0.0, "suspect")])
    assert sent == [("reading", {"sensor": "RG-1", "ts": (T0 + timedelta(minutes=1)).isoformat(),
                                 "value": 2.0, "flag": "good"}),
                    ("reading", {"sensor": "RG-2", "ts": T0.isoformat(), "value": 0.0,
                                 "flag": "suspect"})]
    sent.clear()
    # Inside the window: held, then an older one arrives late: the newer held one stays.
    announcer.announce([("RG-1", T0 + timedelta(minutes=3), 4.0, "good")])
    announcer.announce([("RG-1", T0 + timedelta(minutes=2), 3.0, "good")])
    assert sent == []
    announcer._flush()  # before the window is up: still held
    assert sent == []
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:  # the timer sends it by itself
        time.sleep(0.05)
    assert sent == [("reading", {"sensor": "RG-1", "ts": (T0 + timedelta(minutes=3)).isoformat(),
                                 "value": 4.0, "flag": "good"})]
