"""The hot ingest statements (telemetry.batch_sql) on each backend: what they store and answer."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from dispatch.core.db import db
from telemetry import batch_sql
from telemetry.models import Reading, Sensor

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def _ids(session) -> dict[str, int]:
    return dict(session.execute(select(Sensor.code, Sensor.id)).all())


def test_readings_keep_awkward_text_and_missing_seq_and_name_what_was_inserted(app, gateways):
    with db.transaction() as s:
        sid = _ids(s)["RG-A"]
        rows = [(sid, T0, 1.5, None, "suspect", 'spike,rate "x" \\ y'),
                (sid, T0 + timedelta(seconds=10), 1e-05, 2**40, "good", ""),
                (sid, T0 + timedelta(seconds=20), -0.0, 7, "fail", "range")]
        inserted = batch_sql.insert_readings(s, rows, T0)
        assert inserted == {(sid, ts) for _, ts, *_ in rows}
        # The same keys again (one with another value) insert nothing.
        again = batch_sql.insert_readings(s, [(sid, T0, 9.0, 1, "good", "")], T0)
        assert again == set()
    with db.transaction() as s:
        stored = s.execute(select(Reading.ts, Reading.value, Reading.seq, Reading.flag,
                                  Reading.qc_reasons).order_by(Reading.ts)).all()
    assert [tuple(r) for r in stored] == [(ts, value, seq, flag, reasons)
                                          for _, ts, value, seq, flag, reasons in rows]


def test_update_sensors_moves_last_values_forward_and_names_those_not_reporting(app,
                                                                                gateways):
    with db.transaction() as s:
        ids = _ids(s)
        a, b = ids["RG-A"], ids["RG-B"]
        s.execute(update(Sensor).where(Sensor.id == a).values(
            status="reporting", last_ts=T0, last_value=3.0, last_flag="good", revision=5))
        s.execute(update(Sensor).where(Sensor.id == b).values(status="missing"))
    later = T0 + timedelta(minutes=5)
    with db.transaction() as s:
        was_not = batch_sql.update_sensors(s, [
            # An older reading than A's last: A's last value stays.
            {"sid": a, "n": 2, "last_ts": T0 - timedelta(minutes=1), "last_value": 1.0,
             "last_flag": "suspect"},
            {"sid": b, "n": 1, "last_ts": later, "last_value": 4.5, "last_flag": 'od"d,'}],
            later)
    assert was_not == {b}
    with db.transaction() as s:
        got = {row.id: row for row in s.execute(select(
            Sensor.id, Sensor.revision, Sensor.last_ts, Sensor.last_value, Sensor.last_flag,
            Sensor.status, Sensor.status_at))}
    assert (got[a].revision, got[a].last_ts, got[a].last_value, got[a].last_flag,
            got[a].status) == (7, T0, 3.0, "good", "reporting")
    assert (got[b].last_ts, got[b].last_value, got[b].last_flag, got[b].status,
            got[b].status_at) == (later, 4.5, 'od"d,', "reporting", later)
