"""Fixtures (STYLE.md): app, client, runner, sio, db on both SpatiaLite and PostGIS, broker, hub.

Passwords are hashed with CHEAP_PASSWORD_HASH (one PBKDF2 round) instead of the hub's scrypt:
a strong hash takes ~100 ms and every user fixture makes several. The settings loader takes so
weak a method only with RESCUEHUB_TESTING=1, which this file sets for the tests and the commands
they run.

PostGIS: an admin URL (RESCUEHUB_TEST_DATABASE_URL, default the local server as `postgres`) is
used to create a throw-away database per test session. Without a reachable server the PostGIS
variants are skipped, except when RESCUEHUB_TEST_REQUIRE_POSTGIS=1 (CI), where they fail.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.routing.rules import Rule

from dispatch import create_app
from dispatch.core import auth, schema
from dispatch.core import db as db_module
from dispatch.core.db import Base, db, make_engine
from dispatch.core.heap import settle_heap
from dispatch.core.models import User
from dispatch.positions import places

pytest_plugins = ["tests.fixtures.broker", "tests.fixtures.hub"]

# The `rescuehub` command speaks the terminal's language (dispatch.core.i18n.terminal_locale);
# tests read its English lines, whatever the machine's LANG (test_cli checks the Chinese).
os.environ["RESCUEHUB_LANG"] = "en"
os.environ["RESCUEHUB_TESTING"] = "1"
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"

ADMIN_URL = os.environ.get("RESCUEHUB_TEST_DATABASE_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGIS = os.environ.get("RESCUEHUB_TEST_REQUIRE_POSTGIS") == "1"
PASSWORD = "correct horse battery"


# The longest files first: `make test` runs the suite on every core with pytest-xdist, a file per
# worker at a time (--dist loadfile keeps module-scoped hubs and browsers shared), and a long file
# taken last would leave the other cores idle at the end. (xdist keeps this order only with
# --no-loadscope-reorder: by default it hands out the files with the most tests first, which put
# the one-test browser and end-to-end files, the slowest, last.) The longest file leads.
SLOW_FIRST = ("tests/telemetry/test_reliability.py", "tests/e2e/", "tests/browser/")


def _slow_first(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)),
                len(SLOW_FIRST))


def _postgis_unavailable(reason: str):
    if REQUIRE_POSTGIS:
        pytest.fail(f"PostGIS is required (RESCUEHUB_TEST_REQUIRE_POSTGIS=1) but {reason}")
    pytest.skip(f"PostGIS not available: {reason}")


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """A fresh PostgreSQL database with PostGIS for this test session."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"rescuehub_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            if not conn.execute(text(
                    "SELECT 1 FROM pg_available_extensions WHERE name='postgis'")).scalar():
                _postgis_unavailable("the postgis extension is not installed on the server")
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except pytest.skip.Exception:
        raise
    except Exception as exc:  # unreachable server, no rights
        admin.dispose()
        _postgis_unavailable(f"cannot use {ADMIN_URL}: {str(exc).splitlines()[0]}")
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrated(url: str) -> str:
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def spatialite_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('spatialite') / 'hub.sqlite'}"


@pytest.fixture(scope="session", params=["spatialite", pytest.param("postgis",
                                                                    marks=pytest.mark.postgis)])
def database_url(request) -> str:
    """A migrated database of each backend, shared by the session (tables emptied per test)."""
    url = request.getfixturevalue(f"{request.param}_url")
    _SHARED_URLS.add(url)
    return _migrated(url)


# The session databases' engines, shared by the tests' apps: an engine per app connected anew
# each test (SpatiaLite's extension loaded, a PostgreSQL login) and compiled every statement
# anew (SQLAlchemy caches compiled SQL per engine and dialect): together ~12 % of the
# in-process tests' time. Only for the session databases: hubs and other URLs get their own.
_SHARED_URLS: set[str] = set()
_SHARED_ENGINES: dict = {}
_own_engine = db_module.make_engine


def _shared_engine(url: str, **options):
    if url not in _SHARED_URLS:
        return _own_engine(url, **options)
    key = (url, tuple(sorted(options.items())))
    if key not in _SHARED_ENGINES:
        _SHARED_ENGINES[key] = _own_engine(url, **options)
    return _SHARED_ENGINES[key]


db_module.make_engine = _shared_engine


@functools.cache
def demo_township():
    """The demo township (maps.demo.build_township(), half a second of work), built once per
    test session for the tests that only read it."""
    from maps import demo

    return demo.build_township()


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
def overrides(database_url, data_dir) -> dict:
    return {
        "database": {"url": database_url},
        "data": {"dir": str(data_dir)},
        "mqtt": {"url": "mqtt://127.0.0.1:1", "managed": False},
        "web": {"password_hash": CHEAP_PASSWORD_HASH},
    }


_EMPTYING: dict[str, tuple[str, ...]] = {}


def _emptying(dialect) -> tuple[str, ...]:
    """The DELETE statements that empty the hub's tables, leaves first, as this dialect's SQL
    (compiled once per database kind: every engine has a dialect object of its own)."""
    if dialect.name in _EMPTYING:
        return _EMPTYING[dialect.name]
    statements = []
    for table in reversed(Base.metadata.sorted_tables):
        # A table that refers to itself (teams and their squads, ON DELETE RESTRICT, which
        # both databases check row by row): the rows that refer to another go first.
        for key in table.foreign_keys:
            if key.column.table is table:
                statements.append(table.delete().where(key.parent.is_not(None)))
        statements.append(table.delete())
    compiled = tuple(str(statement.compile(dialect=dialect)) for statement in statements)
    return _EMPTYING.setdefault(dialect.name, compiled)


def empty_tables(engine) -> None:
    """Delete every row the hub's tables hold (the schema stays). The statements are compiled
    once: each app's new engine compiled the ~50 anew (~30 ms a test); PostgreSQL gets them in
    one round trip."""
    statements = _emptying(engine.dialect)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.connection.cursor().execute(";".join(statements))
        else:
            for statement in statements:
                conn.exec_driver_sql(statement)


def _shared_url_builders() -> None:
    """Every `app` fixture builds the hub's ~150 URL rules, and werkzeug compiles a builder
    function for each from a generated syntax tree: ~70 ms of each test's ~100 ms set-up. A
    builder's code depends only on the rule's text, defaults and converters (the rule itself is
    passed in as `.self`), so the tests' apps share the builders of equal rules."""
    compile_builder = Rule._compile_builder
    builders: dict = {}

    def shared(self: Rule, append_unknown: bool = True):
        key = (self.rule, tuple(self._trace), repr(sorted((self.defaults or {}).items())),
               tuple((name, type(conv)) for name, conv in self._converters.items()),
               append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = shared


_shared_url_builders()


@pytest.fixture
def app(overrides):
    """The app on each backend, with every table emptied."""
    app = create_app(overrides)
    app.config["TESTING"] = True
    with app.app_context():
        empty_tables(db.engine)
        # What the code keeps per engine describes the rows just deleted (the engine is shared).
        places._atlases.clear()
        yield app
        db.remove()
        if db.engine not in _SHARED_ENGINES.values():
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app, overrides):
    """Invoke the `rescuehub` CLI against the app's database and data directory."""
    from click.testing import CliRunner

    from dispatch.cli import main

    env = {
        "RESCUEHUB_DATABASE_URL": overrides["database"]["url"],
        "RESCUEHUB_DATA_DIR": overrides["data"]["dir"],
        "RESCUEHUB_MQTT_URL": overrides["mqtt"]["url"],
        "RESCUEHUB_MQTT_MANAGED": "false",
        "RESCUEHUB_WEB_PASSWORD_HASH": CHEAP_PASSWORD_HASH,
        "RESCUEHUB_TESTING": "1",
    }

    class Runner:
        def invoke(self, *args: str, extra_env: dict | None = None):
            return CliRunner().invoke(main, list(args), env={**env, **(extra_env or {})},
                                      catch_exceptions=False)

    return Runner()


@pytest.fixture
def make_user(app):
    """Create a person with a chosen password (no pending one-time password)."""

    def make(role: str, username: str | None = None) -> User:
        username = username or f"{role}-{uuid.uuid4().hex[:6]}"
        with db.transaction() as s:
            user, _ = auth.create_user(s, username, role, actor="test")
            auth.change_password(s, user, PASSWORD)
        return user

    return make


@pytest.fixture
def bearer(client, make_user):
    """Bearer headers for a new person of the given role, through POST /api/v1/auth/token."""

    def headers(role: str) -> dict[str, str]:
        user = make_user(role)
        response = client.post("/api/v1/auth/token", json={"username": user.username,
                                                           "password": PASSWORD})
        return {"Authorization": f"Bearer {response.json['token']}"}

    return headers


@pytest.fixture
def login(client, make_user):
    """Sign a role in through the real login form; returns the user."""

    def sign_in(role: str, username: str | None = None):
        user = make_user(role, username)
        client.get("/login")
        with client.session_transaction() as sess:
            csrf = sess["csrf"]
        response = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                               "csrf_token": csrf})
        assert response.status_code == 302, response.data
        return user

    return sign_in


def csrf_of(client) -> str:
    with client.session_transaction() as sess:
        return sess["csrf"]


@pytest.fixture
def sio(app, client):
    """A Socket.IO test client on /live sharing the HTTP client's cookies (sign in first)."""
    from dispatch.core.realtime import NAMESPACE, socketio

    clients = []

    def connect(**kwargs):
        c = socketio.test_client(app, namespace=NAMESPACE, flask_test_client=client, **kwargs)
        clients.append(c)
        return c

    yield connect
    for c in clients:
        if c.is_connected(NAMESPACE):
            c.disconnect(NAMESPACE)


class _ErrorLogged(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_exception(request):
    """A test fails if a guarded callback (thread boundary) logged an exception (STYLE.md §6)."""
    handler = _ErrorLogged()
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    if handler.records and not request.node.get_closest_marker("allow_logged_exceptions"):
        first = handler.records[0]
        pytest.fail(f"an exception was logged: {first.getMessage()}", pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The slow files first (a stable sort: each file's order, and pytest's, stays).

    Tests marked `any_backend` run on SpatiaLite only: they use the app but no SQL that
    differs between the backends (pages, sign-in flows, socket rooms, translations), so a second
    run on PostGIS would only cost time. Everything that reads or writes domain data stays on
    both."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgis = callspec is not None and callspec.params.get("database_url") == "postgis"
        (drop if on_postgis and item.get_closest_marker("any_backend") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=_slow_first)


# Tests between two settlings of the test process's heap (pytest_runtest_teardown).
SETTLE_EVERY = 100
_settled = {"tests": 0}


def pytest_collection_finish(session):
    """What the session keeps to its end (the collected tests, their modules, the hub's code) is
    settled out of the cyclic collector's reach, as the hub's processes do
    (dispatch.core.heap.settle_heap): every full collection walked it again."""
    settle_heap()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Settle the heap again every SETTLE_EVERY tests: collect, then freeze what is alive (module
    fixtures, caches). Each test's app leaves thousands of objects in cycles for the collector,
    and each full collection walked them with all that lives on. Measured in one process: on
    tests/depot/test_checkouts.py and tests/roster (443 tests), full collections took 7.7 s of
    30 s, 2.2 s settling every 25 tests and 4.6 s every 100; on tests/positions, alerts, maps
    and two core files, 84.8 s in all, 78.2 s every 25, 67.6-72.9 s every 100 (noisy runs).
    Memory: 319 instead of 305 MB after 400 tests (a module fixture's cycles frozen before its
    teardown are not freed)."""
    _settled["tests"] += 1
    if _settled["tests"] % SETTLE_EVERY == 0:
        settle_heap()
