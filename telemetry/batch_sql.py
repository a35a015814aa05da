"""The hot statements of ingest (and the reads a sensor's memory is loaded from), through the
DB-API in the caller's transaction.

Measured (a writer-only profile, 20,000 single-reading messages on SpatiaLite): SQLAlchemy's
compiled-statement parameter processing, mostly binding timestamps through `UTCDateTime`, took
about a fifth of the writer's time. These statements bind what the driver takes as it is:

- SQLite: timestamps as the text SQLAlchemy's SQLite `DATETIME` stores ('YYYY-MM-DD
  HH:MM:SS.ffffff', UTC, always six fraction digits, so text order is time order), inserts as
  multi-row VALUES with RETURNING (sqlite3's executemany returns no rows);
- PostgreSQL: the readings in one INSERT, and the batch's sensors in one UPDATE, over unnest()
  of one array per column, each bound as a text array literal (`_array`, `_texts`; measured,
  psycopg's list dumper cost ~11 % of the writer); single timestamps as aware datetimes, which
  psycopg binds as timestamptz.

Each keeps the semantics of the Core statements it replaces: ON CONFLICT DO NOTHING RETURNING
names the readings really inserted (NOTES.md: rowcount cannot tell on either backend).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from sqlalchemy.orm import Session

# Rows per multi-row INSERT on SQLite: 7 parameters each, under SQLITE_MAX_VARIABLE_NUMBER (32766).
_SQLITE_ROWS = 1000

_UPDATE_SENSORS = """
UPDATE sensors SET revision = revision + %(n)s,
  last_value = CASE WHEN last_ts IS NULL OR last_ts < %(last_ts)s
               THEN %(last_value)s ELSE last_value END,
  last_flag = CASE WHEN last_ts IS NULL OR last_ts < %(last_ts)s
              THEN %(last_flag)s ELSE last_flag END,
  last_ts = CASE WHEN last_ts IS NULL OR last_ts < %(last_ts)s THEN %(last_ts)s ELSE last_ts END,
  status_at = CASE WHEN status <> 'reporting' THEN %(now)s ELSE status_at END,
  status = 'reporting'
WHERE id = %(sid)s"""

# PostgreSQL: the same for every row of a batch in one statement, which also names the sensors
# that were not reporting before it (their old status, read in the statement's snapshot).
_UPDATE_SENSORS_PG = """
UPDATE sensors AS s SET revision = s.revision + u.n,
  last_value = CASE WHEN s.last_ts IS NULL OR s.last_ts < u.t THEN u.v ELSE s.last_value END,
  last_flag = CASE WHEN s.last_ts IS NULL OR s.last_ts < u.t THEN u.f ELSE s.last_flag END,
  last_ts = CASE WHEN s.last_ts IS NULL OR s.last_ts < u.t THEN u.t ELSE s.last_ts END,
  status_at = CASE WHEN s.status <> 'reporting' THEN %s ELSE s.status_at END,
  status = 'reporting'
FROM (SELECT u.*, o.status AS was FROM unnest(%s::integer[], %s::bigint[], %s::timestamptz[],
        %s::double precision[], %s::text[]) AS u(id, n, t, v, f)
      JOIN sensors AS o ON o.id = u.id) AS u
WHERE s.id = u.id
RETURNING s.id, u.was"""

_MARK_HOURS = """
INSERT INTO reading_hours_dirty (sensor_id, hour, marked_at) VALUES (%s, %s, %s)
ON CONFLICT (sensor_id, hour) DO UPDATE SET marked_at = excluded.marked_at"""

# (sensor id, ts, value, seq, flag, qc reasons) of a reading to insert.
ReadingRow = tuple[int, datetime, float, "int | None", str, str]


def _cursor(session: Session):
    return session.connection().connection.cursor()


# Gateways stamp their sensors at the same instants, so a batch repeats a few timestamps many
# times (telemetry.decode caches their parse for the same reason): measured, formatting each one
# was ~7 % of the writer's time on SpatiaLite; a cached one costs a fifteenth of that. Aware
# datetimes of one instant are equal and hash alike, whatever their zone: one key, one text.
@functools.lru_cache(maxsize=8192)
def _sqlite_text(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"


class _Sqlite:
    update_sensors_sql = re.sub(r"%\((\w+)\)s", r":\1", _UPDATE_SENSORS)
    mark_hours_sql = _MARK_HOURS.replace("%s", "?")
    param = "?"

    @staticmethod
    def utc(text: str) -> datetime:
        """A stored timestamp (UTC text) as an aware datetime."""
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    @staticmethod
    def ts(value: datetime) -> str:
        return _sqlite_text(value)

    def update_sensors(self, session: Session, rows: list[dict], now: datetime) -> set[int]:
        cursor = _cursor(session)
        try:
            ids = sorted(row["sid"] for row in rows)
            # Asked of the database, not of a cached row: the silence job may have marked a
            # sensor missing a moment ago in another process.
            was_not = set()
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                cursor.execute("SELECT id FROM sensors WHERE status <> 'reporting' AND id IN ("
                               + ",".join("?" * len(chunk)) + ")", chunk)
                was_not.update(sid for (sid,) in cursor.fetchall())
            bound_now = self.ts(now)
            cursor.executemany(self.update_sensors_sql, [
                {**row, "last_ts": self.ts(row["last_ts"]), "now": bound_now} for row in rows])
        finally:
            cursor.close()
        return was_not

    def insert_readings(self, session: Session, rows: list[ReadingRow],
                        now: datetime) -> set[tuple[int, datetime]]:
        cursor, received, inserted = _cursor(session), self.ts(now), set()
        try:
            for start in range(0, len(rows), _SQLITE_ROWS):
                chunk = rows[start:start + _SQLITE_ROWS]
                keys = {}
                params: list = []
                for sid, ts, value, seq, flag, reasons in chunk:
                    text = self.ts(ts)
                    keys[(sid, text)] = (sid, ts)
                    params += (sid, text, value, seq, flag, reasons, received)
                cursor.execute(
                    "INSERT INTO readings (sensor_id, ts, value, seq, flag, qc_reasons, "
                    "received_at) VALUES " + ",".join(["(?,?,?,?,?,?,?)"] * len(chunk))
                    + " ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING sensor_id, ts",
                    params)
                inserted.update(keys[row] for row in cursor.fetchall())
        finally:
            cursor.close()
        return inserted


class _Postgres:
    mark_hours_sql = _MARK_HOURS
    param = "%s"

    @staticmethod
    def utc(value: datetime) -> datetime:
        return value.astimezone(UTC)

    @staticmethod
    def ts(value: datetime) -> datetime:
        return value

    def update_sensors(self, session: Session, rows: list[dict], now: datetime) -> set[int]:
        rows = sorted(rows, key=lambda row: row["sid"])
        cursor = _cursor(session)
        try:
            cursor.execute(_UPDATE_SENSORS_PG, [
                now, _array(r["sid"] for r in rows), _array(r["n"] for r in rows),
                _array(r["last_ts"].isoformat() for r in rows),
                _array(r["last_value"] for r in rows), _texts(r["last_flag"] for r in rows)])
            return {sid for sid, was in cursor.fetchall() if was != "reporting"}
        finally:
            cursor.close()

    def insert_readings(self, session: Session, rows: list[ReadingRow],
                        now: datetime) -> set[tuple[int, datetime]]:
        sids, stamps, values, seqs, flags, reasons = zip(*rows, strict=True)
        cursor = _cursor(session)
        try:
            cursor.execute(
                "INSERT INTO readings (sensor_id, ts, value, seq, flag, qc_reasons, received_at) "
                "SELECT s, t, v, q, f, r, %s FROM unnest(%s::integer[], %s::timestamptz[], "
                "%s::double precision[], %s::bigint[], %s::text[], %s::text[]) "
                "AS u(s, t, v, q, f, r) "
                "ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING sensor_id, ts",
                [now, _array(sids), _array(ts.isoformat() for ts in stamps), _array(values),
                 _array(seqs), _texts(flags), _texts(reasons)])
            # psycopg returns timestamptz in the session's zone; aware datetimes of one instant
            # are equal and hash alike, so they find their keys.
            return {(sid, ts) for sid, ts in cursor.fetchall()}
        finally:
            cursor.close()


# Array literals in PostgreSQL's text form, built by joining: measured, psycopg's list dumper
# (Python, element by element) was ~11 % of the ingest writer's time for the readings INSERT.
def _array(items) -> str:
    """Numbers or ISO timestamps (never quoted: no comma, brace, quote or space in them);
    None is NULL."""
    return "{" + ",".join("NULL" if i is None else str(i) for i in items) + "}"


def _texts(items) -> str:
    """Text elements, each quoted, with backslashes and quotes escaped; None is NULL."""
    return "{" + ",".join("NULL" if t is None else
                          '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for t in items) + "}"


def statements_of(session: Session) -> _Sqlite | _Postgres:
    """The statements for the session's backend."""
    return _Postgres() if session.bind.dialect.name == "postgresql" else _Sqlite()


def update_sensors(session: Session, rows: list[dict], now: datetime) -> set[int]:
    """Raise each touched sensor's revision by `n` and move its last value forward in time
    (never back: a cached row may be a moment old); rows: sid, n, last_ts, last_value,
    last_flag; `now` is when a sensor that was not reporting starts to. Returns the ids of
    those that were not reporting (new or missing) before."""
    return statements_of(session).update_sensors(session, rows, now)


def mark_hours(session: Session, hours: list[tuple[int, datetime]], now: datetime) -> None:
    """Mark (sensor id, hour) pairs for roll-up (telemetry.jobs), or refresh their mark."""
    sql = statements_of(session)
    marked = sql.ts(now)
    cursor = _cursor(session)
    try:
        cursor.executemany(sql.mark_hours_sql,
                           [(sid, sql.ts(hour), marked) for sid, hour in hours])
    finally:
        cursor.close()


def insert_readings(session: Session, rows: list[ReadingRow],
                    now: datetime) -> set[tuple[int, datetime]]:
    """Insert readings whose (sensor, ts) is not stored yet, received at `now`; returns the
    (sensor id, ts) keys inserted."""
    return statements_of(session).insert_readings(session, rows, now)


def recent_readings(session: Session, sensor_id: int, *, limit: int,
                    since: datetime | None) -> tuple[list[tuple[datetime, float]],
                                                     list[tuple[datetime, float, str]]]:
    """What a sensor's memory is loaded from (telemetry.sensor_memory): its last `limit`
    readings as (ts, value), oldest first (none for limit 0), and, when `since` is given, its
    readings after it as (ts, value, flag), in time order. Through the DB-API: measured,
    SQLAlchemy's parsing of SQLite timestamps was about half of a busy rain gauge's cold
    start."""
    sql = statements_of(session)
    p = sql.param
    cursor = _cursor(session)
    try:
        history = []
        if limit:
            cursor.execute(f"SELECT ts, value FROM readings WHERE sensor_id = {p} "
                           f"ORDER BY ts DESC LIMIT {p}", (sensor_id, limit))
            history = [(sql.utc(ts), value) for ts, value in reversed(cursor.fetchall())]
        rain = []
        if since is not None:
            cursor.execute(f"SELECT ts, value, flag FROM readings WHERE sensor_id = {p} "
                           f"AND ts > {p} ORDER BY ts", (sensor_id, sql.ts(since)))
            rain = [(sql.utc(ts), value, flag) for ts, value, flag in cursor.fetchall()]
    finally:
        cursor.close()
    return history, rain
