"""Database: typed declarative base, engine with the SpatiaLite hook, sessions, UTC timestamps.

The embedded default is a SpatiaLite file; production is PostGIS through psycopg 3. Both run the
same models and Alembic revisions. Facts from NOTES.md applied here: the pyenv Python's sqlite3
cannot load extensions, so `sqlean` is the driver; loading the extension resets busy_timeout, so
the pragmas come after it; `InitSpatialMetadata(1, 'WGS84')` in one transaction takes 0.02 s where
the full EPSG table takes ~20 s.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

# pyproj must be loaded before the first SpatiaLite connection: mod_spatialite links the system
# PROJ, and a pyproj (with its own PROJ) imported after it made the process abort at exit
# ("double free or corruption", exit 134). Imported here, first, on purpose.
import pyproj  # noqa: F401, I001
from flask import Flask, current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

from dispatch.core.errors import SetupError

log = logging.getLogger(__name__)

# Named constraints: Alembic batch migrations on SQLite need names to alter them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC on both backends and always returned timezone-aware.

    SQLite drops the offset of an aware datetime without converting it (NOTES.md), so values are
    converted to UTC before binding; naive values are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Each SpatiaLite connection's page cache (KiB; SQLite's default is 2,000).
SQLITE_CACHE_KIB = 32768


def _spatialite_hook(engine: Engine, library: str, busy_timeout_s: float) -> None:
    """Load SpatiaLite into every new connection and prepare a new file's spatial metadata."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.enable_load_extension(True)
        try:
            dbapi_conn.load_extension(library)
        except Exception as exc:
            raise SetupError(_l(
                "The SpatiaLite extension %(library)s could not be loaded (%(problem)s). Install "
                "it: apt-get install libsqlite3-mod-spatialite (or set "
                "database.spatialite_library).", library=repr(library), problem=exc)) from None
        finally:
            dbapi_conn.enable_load_extension(False)
        cur = dbapi_conn.cursor()
        # After the extension: loading it resets busy_timeout to 5 s (NOTES.md).
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        # A multi-row INSERT … ON CONFLICT inside a transaction keeps a statement journal:
        # in a temporary file by default, one write() per page it changes (a native profile of
        # the ingest writer under load showed them); in memory it is a copy. The page cache
        # holds the leaves of the readings' (sensor, ts) index a batch of ~1,000 gauges
        # touches (SQLite's default 2 MiB does not: each batch read them again).
        cur.execute("PRAGMA temp_store = MEMORY")
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        has_meta = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='spatial_ref_sys'"
        ).fetchone()
        if not has_meta:
            # The first argument 1 makes SpatiaLite wrap the inserts in its own transaction.
            cur.execute("SELECT InitSpatialMetadata(1, 'WGS84')")
        cur.close()


def private_database_file(path: Path) -> None:
    """Create the SpatiaLite file readable and writable by its owner only (0600), or tighten
    one that exists: it holds password hashes, tokens' hashes and the audit log, and SQLite
    would create it 0644 (every local user could read it). SQLite gives the -wal, -shm and
    -journal files it creates the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return  # an empty file is an empty database to SQLite
    except FileExistsError:
        pass
    for name in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: say so, it is still usable
            log.warning("cannot make %s private (mode 0600): it belongs to another user", name)


def make_engine(url: str, *, spatialite_library: str = "mod_spatialite",
                pool_size: int = 10, busy_timeout_s: float = 30) -> Engine:
    """Create the engine for a sqlite:/// (SpatiaLite) or postgresql URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlean

        if parsed.database and parsed.database != ":memory:":
            private_database_file(Path(parsed.database))
        engine = create_engine(url, module=sqlean, connect_args={"timeout": busy_timeout_s})
        _spatialite_hook(engine, spatialite_library, busy_timeout_s)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size,
                         pool_pre_ping=True, connect_args={"connect_timeout": 5})


# SQLite's own default: a commit that leaves more than this many pages in the WAL checkpoints.
SQLITE_AUTOCHECKPOINT = 1000
# How often the background checkpointer copies the WAL into the database file.
CHECKPOINT_EVERY_S = 1.0


class WalCheckpointer:
    """Checkpoints a SpatiaLite file's WAL from a thread of its own, off the request path.

    By default SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that
    commit, a keeper's check-out, say, then copies the pages into the database file before it
    returns (its p99 was 45-90 ms against a p50 of 6 ms on the prefecture; 29 ms with the
    checkpoint elsewhere). While running, this turns the automatic checkpoint off on every
    connection the engine hands out (PRAGMA wal_autocheckpoint is per connection) and runs a
    PASSIVE checkpoint every CHECKPOINT_EVERY_S instead: it waits for no lock, so readers and
    writers go on, and the WAL restarts from its beginning at the next write after a complete
    one. Only the process that runs it stops checkpointing on commit: other processes (the CLI,
    the jobs process) keep SQLite's default, so no WAL grows without a checkpointer. stop()
    gives the connections back their default.
    """

    def __init__(self, engine: Engine, every_s: float = CHECKPOINT_EVERY_S):
        self.engine = engine
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted = SQLITE_AUTOCHECKPOINT
        event.listen(engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_conn, record, _proxy) -> None:
        if record.info.get("wal_autocheckpoint", SQLITE_AUTOCHECKPOINT) != self._wanted:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint = {int(self._wanted)}")
            record.info["wal_autocheckpoint"] = self._wanted

    def start(self) -> None:
        self._wanted = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def leave_to_parent(self) -> None:
        """Take checkpoints off this process's commits without checkpointing here: for a
        child whose parent runs the checkpointer on the same file for the whole of the child's
        life (the ingest writer, telemetry.writer_process). Measured there: its batches of
        ~1,000 gauges each left more than 1,000 pages in the WAL, so nearly every commit
        checkpointed (copied the WAL into the file and synced it) before it returned."""
        self._wanted = 0

    def stop(self) -> None:
        self._wanted = SQLITE_AUTOCHECKPOINT
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.checkpoint()  # what this process wrote since the last one

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, pages in the WAL, pages copied), None if it failed."""
        try:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                conn.commit()
            return tuple(row)
        except Exception:  # the next round tries again; the log says why
            log.warning("WAL checkpoint failed", exc_info=True)
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.checkpoint()


def check_connection(engine: Engine) -> str:
    """Connect once and return the spatial library's version; SetupError with the fix if not."""
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return "SpatiaLite " + conn.execute(text("SELECT spatialite_version()")).scalar()
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise SetupError(_l(
            "Cannot reach the database (%(reason)s). Check database.url "
            "(RESCUEHUB_DATABASE_URL) and that the server is running.", reason=reason)) from None


class Database:
    """The extension object: engine and a thread-scoped session per app."""

    def init_app(self, app: Flask) -> None:
        settings = app.config["SETTINGS"]
        engine = make_engine(settings.database_url,
                             spatialite_library=settings.database.spatialite_library,
                             pool_size=settings.database.pool_size,
                             busy_timeout_s=settings.database.busy_timeout_s)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        app.extensions["rescuehub.db"] = _Bound(engine, scoped_session(factory))

        # Per request (an app context may outlive many requests, as in tests) and per context.
        @app.teardown_request
        @app.teardown_appcontext
        def _remove_session(_exc):
            app.extensions["rescuehub.db"].session.remove()

    @property
    def _bound(self) -> _Bound:
        return current_app.extensions["rescuehub.db"]

    @property
    def engine(self) -> Engine:
        return self._bound.engine

    @property
    def checkpointer(self) -> WalCheckpointer | None:
        """The current app's WAL checkpointer (SpatiaLite), None on PostgreSQL."""
        return self._bound.checkpointer

    @property
    def session(self) -> Session:
        """The current thread's session for the current app."""
        return self._bound.session()

    def remove(self) -> None:
        """Close and forget the current thread's session."""
        self._bound.session.remove()

    @contextmanager
    def turn_to_write(self) -> Iterator[None]:
        """On SpatiaLite, wait here for this process's turn to write; on PostgreSQL, at once.

        SQLite lets one transaction write at a time. A second writer waits in SQLite's busy
        handler, which sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries and is not woken
        when the lock frees, so four keepers checking out at once waited tens of milliseconds
        for a lock held for a few. Requests that write in a burst (check-outs, check-ins) take
        their turn here instead, before their first write and until their commit, and are woken
        the moment the writer before them is done. Writers that do not take a turn (ingest)
        still meet SQLite's lock as before; nothing that holds a turn waits for anything but the
        database, so there is no cycle to deadlock in. An exception rolls the current session
        back before the turn passes on (what it wrote would hold SQLite's lock until then).
        """
        lock = self._bound.writer
        if lock is None:
            yield
            return
        with lock:
            try:
                yield
            except BaseException:
                self.session.rollback()
                raise

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error (jobs, threads, CLI)."""
        session = self.session
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class _Bound:
    def __init__(self, engine: Engine, session: scoped_session):
        self.engine = engine
        self.session = session
        # A SpatiaLite file's checkpointer (the background starts and stops it); PostgreSQL
        # checkpoints by itself.
        self.checkpointer = WalCheckpointer(engine) if engine.dialect.name == "sqlite" else None
        self.writer = threading.RLock() if engine.dialect.name == "sqlite" else None


db = Database()
