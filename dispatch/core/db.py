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
    def session(self) -> Session:
        """The current thread's session for the current app."""
        return self._bound.session()

    def remove(self) -> None:
        """Close and forget the current thread's session."""
        self._bound.session.remove()

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


db = Database()
