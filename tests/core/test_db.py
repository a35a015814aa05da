"""Database kernel: UTC timestamps on both backends, and a SpatiaLite process that exits cleanly."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from dispatch.core.db import db
from dispatch.core.models import Heartbeat


def test_timestamps_come_back_in_utc(app):
    beijing = timezone(timedelta(hours=8))
    with db.transaction() as s:
        s.add(Heartbeat(name="t", at=datetime(2026, 7, 27, 21, 5, tzinfo=beijing), pid=1))
    db.remove()
    at = db.session.scalar(select(Heartbeat.at).where(Heartbeat.name == "t"))
    assert at == datetime(2026, 7, 27, 13, 5, tzinfo=UTC) and at.tzinfo is UTC


def test_naive_timestamps_are_refused(app):
    with pytest.raises(Exception, match="naive"), db.transaction() as s:
        s.add(Heartbeat(name="n", at=datetime(2026, 7, 27, 21, 5), pid=1))
        s.flush()


def test_process_with_spatialite_and_pyproj_exits_cleanly(tmp_path):
    # A pyproj loaded after mod_spatialite aborted the interpreter at exit (see dispatch.core.db).
    script = textwrap.dedent(f"""
        from dispatch.core.db import make_engine
        from sqlalchemy import text
        engine = make_engine("sqlite:///{tmp_path}/x.sqlite")
        with engine.connect() as conn:
            conn.execute(text("SELECT spatialite_version()"))
        import pyproj, shapely  # noqa
        print(pyproj.Transformer.from_crs(4326, 32649, always_xy=True).transform(109, 33))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
