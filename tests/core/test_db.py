"""Database kernel: UTC timestamps on both backends, and a SpatiaLite process that exits cleanly."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

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


def _autocheckpoint(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def _wal_bytes(path) -> int:
    """The WAL file's size (SQLite before 3.51 has no checkpoint that only looks)."""
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_wal_checkpointer_takes_checkpoints_off_the_commits(tmp_path):
    from dispatch.core.db import SQLITE_AUTOCHECKPOINT, WalCheckpointer, make_engine

    path = tmp_path / "hub.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
            page = conn.exec_driver_sql("PRAGMA page_size").scalar()
        checkpointer = WalCheckpointer(engine, every_s=3600)  # rounds by hand below
        assert _autocheckpoint(engine) == SQLITE_AUTOCHECKPOINT
        checkpointer.start()
        try:
            # Every connection handed out, pooled or new, no longer checkpoints on commit.
            assert _autocheckpoint(engine) == 0
            with engine.connect() as a, engine.connect() as b:
                for conn in (a, b):
                    assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            # ~1,350 pages written in commits of ~45: past SQLite's 1,000, none copied, so the
            # WAL never restarted.
            for _ in range(30):
                with engine.begin() as conn:
                    conn.exec_driver_sql("INSERT INTO t (v) SELECT zeroblob(4000) FROM "
                                         "(SELECT 1 UNION ALL SELECT 2) a, (SELECT 1 UNION "
                                         "ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 "
                                         "UNION ALL SELECT 5) b, (SELECT 1 UNION ALL SELECT 2 "
                                         "UNION ALL SELECT 3 UNION ALL SELECT 4) c")
            assert _wal_bytes(path) > (SQLITE_AUTOCHECKPOINT + 200) * page
            busy, log_pages, copied = checkpointer.checkpoint()
            assert busy == 0 and copied == log_pages > SQLITE_AUTOCHECKPOINT
        finally:
            checkpointer.stop()
        assert _autocheckpoint(engine) == SQLITE_AUTOCHECKPOINT
    finally:
        engine.dispose()


def test_wal_checkpointer_runs_on_its_own(tmp_path):
    import time

    from dispatch.core.db import WalCheckpointer, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    checkpointer = WalCheckpointer(engine, every_s=0.05)
    rounds = []
    checkpoint = checkpointer.checkpoint
    checkpointer.checkpoint = lambda: rounds.append(checkpoint()) or rounds[-1]
    checkpointer.start()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(r and r[2] for r in rounds):
            time.sleep(0.02)
        assert any(r and r[0] == 0 and r[2] == r[1] > 0 for r in rounds), rounds
    finally:
        checkpointer.stop()
        engine.dispose()


def test_the_background_checkpoints_a_spatialite_file(app):
    from dispatch.core.runtime import Background

    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL checkpoints by itself")
    background = Background(app, [], [])
    assert _autocheckpoint(db.engine) == 1000
    background.start()
    try:
        assert _autocheckpoint(db.engine) == 0
    finally:
        background.stop()
    assert _autocheckpoint(db.engine) == 1000


def test_settle_heap_freezes_what_the_started_worker_holds():
    import gc

    from dispatch.core.heap import settle_heap

    kept = [[n] for n in range(1000)]  # lists: objects the collector tracks
    assert all(gc.is_tracked(k) for k in kept)
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= before + len(kept)
        # Frozen: in no generation a collection walks any more.
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(k) in walked for k in kept)
    finally:
        gc.unfreeze()
    walked = {id(o) for o in gc.get_objects()}
    assert all(id(k) in walked for k in kept)


def _leaving(tmp_path, status: str) -> subprocess.CompletedProcess:
    """A process that logs to a file, writes to stdout without a newline and calls leave()."""
    heap = Path(__file__).parents[2] / "dispatch" / "core" / "heap.py"
    script = (
        "import importlib.util, logging, sys\n"
        f"spec = importlib.util.spec_from_file_location('heap', {str(heap)!r})\n"
        "heap = importlib.util.module_from_spec(spec); spec.loader.exec_module(heap)\n"
        f"logging.basicConfig(filename={str(tmp_path / 'log')!r}, level=logging.INFO)\n"
        "logging.getLogger('x').info('stopped and committed')\n"
        "sys.stdout.write('last words')\n"
        f"heap.leave({status})\n"
        "print('never')\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30)


def test_leave_ends_the_process_with_its_status_after_flushing(tmp_path):
    done = _leaving(tmp_path, "3")
    assert done.returncode == 3
    assert done.stdout == "last words"  # flushed; nothing after leave() ran
    assert "stopped and committed" in (tmp_path / "log").read_text()
    # Read as sys.exit reads it: None is 0, a message goes to stderr with status 1.
    assert _leaving(tmp_path, "None").returncode == 0
    told = _leaving(tmp_path, "'the broker is gone'")
    assert (told.returncode, told.stderr.strip()) == (1, "the broker is gone")


def test_writers_take_turns_on_spatialite_and_a_failure_rolls_back(app):
    import threading

    if db.engine.dialect.name != "sqlite":
        with db.turn_to_write():  # PostgreSQL: no turn to wait for
            pass
        return
    order = []

    def second():
        with app.app_context():
            with db.turn_to_write():
                order.append("second")
            db.remove()

    with db.turn_to_write():
        other = threading.Thread(target=second)
        other.start()
        other.join(0.2)
        order.append("first")  # the other thread is still waiting for its turn
    other.join(5)
    assert order == ["first", "second"]

    with pytest.raises(RuntimeError), db.turn_to_write():
        db.session.add(Heartbeat(name="turn-test", at=datetime.now(UTC)))
        db.session.flush()
        raise RuntimeError("refused")
    assert db.session.get(Heartbeat, "turn-test") is None


def test_spatialite_connections_keep_statement_journals_in_memory_and_a_larger_cache(tmp_path):
    """Ingest's multi-row INSERT … ON CONFLICT writes a statement journal: in memory, not a
    temporary file; each connection caches SQLITE_CACHE_KIB of pages (dispatch.core.db)."""
    from dispatch.core.db import SQLITE_CACHE_KIB, make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/x.sqlite")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_a_child_leaves_checkpoints_to_its_parent(tmp_path):
    """The ingest writer's connections never checkpoint on commit (its parent's checkpointer
    does, off both their commits), and it runs no checkpointer thread of its own."""
    import threading

    from dispatch.core.db import WalCheckpointer, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    try:
        checkpointer = WalCheckpointer(engine)
        before = {t.name for t in threading.enumerate()}
        checkpointer.leave_to_parent()
        assert _autocheckpoint(engine) == 0
        assert {t.name for t in threading.enumerate()} == before
    finally:
        engine.dispose()
