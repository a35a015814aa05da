"""The kernel's event bus (dispatch.core.events): typed signals, sent after the commit, and a
failing receiver never breaks the sender."""

from __future__ import annotations

import ast
from dataclasses import dataclass

import pytest

from dispatch.core import events
from dispatch.core.settings import ROOT


@dataclass(frozen=True)
class Ping:
    n: int


@pytest.mark.allow_logged_exceptions
def test_a_signal_carries_its_payload_type_and_survives_a_failing_receiver():
    signal = events.Signal("test.ping", Ping)
    got = []

    def broken(_payload):
        raise RuntimeError("receiver bug")

    signal.connect(broken)
    signal.connect(got.append)
    try:
        signal.send(Ping(1))
        with pytest.raises(TypeError):
            signal.send({"n": 2})  # type: ignore[arg-type]
    finally:
        signal.disconnect(broken)
        signal.disconnect(got.append)
    assert got == [Ping(1)]


def test_signals_are_declared_in_the_kernel_only():
    """Sender and receiver import only dispatch.core.events: no other module uses blinker."""
    found = []
    for package in ("dispatch", "maps", "telemetry", "alerts", "depot"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "dispatch/core/events.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(name.split(".")[0] == "blinker" for name in names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found


def test_a_map_change_is_signalled_after_its_commit(app, client, bearer):
    """maps sends feature_changed once the road's state is committed (a receiver reading in its
    own session sees it)."""
    from geoalchemy2.shape import from_shape
    from shapely.geometry import LineString
    from sqlalchemy import text

    from dispatch.core.db import db, make_engine
    from maps.models import RoadSegment

    with db.transaction() as s:
        s.add(RoadSegment(code="R1", geometry=from_shape(LineString([(109, 33), (109.01, 33)]),
                                                        srid=4326),
                          road_class="village", length_m=930.0, speed_kmh=25, source=1,
                          target=2))
    seen = []
    # The hub's own engine factory: a second SQLite library (the standard sqlite3 module) on
    # the same file in one process corrupted SpatiaLite's R-tree ("undersize RTree blobs").
    engine = make_engine(db.engine.url.render_as_string(hide_password=False))

    def receiver(change: events.FeatureChanged) -> None:
        with engine.connect() as conn:
            is_open = conn.execute(text(
                "SELECT is_open FROM road_segments WHERE code = 'R1'")).scalar()
        seen.append((change, bool(is_open)))

    events.feature_changed.connect(receiver)
    try:
        response = client.patch("/api/v1/roads/R1", json={"is_open": False},
                                headers=bearer("dispatcher"))
    finally:
        events.feature_changed.disconnect(receiver)
        engine.dispose()
    assert response.status_code == 200
    assert seen == [(events.FeatureChanged("roads", "update", "R1"), False)]
