"""telemetry.sensor_memory without a database: what the process that owns MQTT keeps of a gauge
when it follows its writer's batches (readings wait, and are folded on the next read)."""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.rain import RainWindows
from telemetry.sensor_memory import (
    HISTORY,
    WAITING_MAX,
    Memory,
    Pending,
    TelemetryState,
    _key,
    qc_params,
)

T0 = datetime(2026, 7, 27, 0, 0, tzinfo=UTC)


def gauge(revision: int = 0):
    """A rain gauge as the state reads it (the fields of telemetry.models.Sensor it uses)."""
    return SimpleNamespace(id=7, code="RG-7", kind="rain_gauge", revision=revision,
                           interval_s=300, qc={})


def remembered(state: TelemetryState, sensor, history: list) -> Memory:
    """Put a memory with rain windows in the state, as the rules' first read leaves it."""
    rain = RainWindows(sensor.interval_s)
    for ts, value in history:
        rain.add(ts, value)
    memory = Memory(_key(sensor), qc_params(sensor.kind, None, sensor.interval_s),
                    list(history), rain)
    state._memories[sensor.id] = memory
    return memory


def eager(history: list, batches: list[list]) -> tuple[list, RainWindows]:
    """What following each batch at once left before: the history (a later value of a time
    replaces it, the newest HISTORY kept) and the windows with each reading added in turn."""
    rain = RainWindows(300)
    for ts, value in history:
        rain.add(ts, value)
    for batch in batches:
        history = sorted({**dict(history), **{ts: v for ts, v, _ in batch}}.items())[-HISTORY:]
        for report in batch:
            rain.add(*report)
    return history, rain


def rain_state(rain: RainWindows) -> tuple:
    return (rain._head, rain._times, dict(rain._reports),
            rain._bin_rain, rain._bin_covered, rain._rain.tree, rain._covered.tree)


batches_strategy = st.lists(st.lists(
    st.tuples(st.integers(min_value=-3600, max_value=4 * 3600),
              st.sampled_from([0.0, 0.0, 0.5, 2.0]),
              st.sampled_from(["good", "good", "suspect", "fail"])),
    min_size=1, max_size=12, unique_by=operator.itemgetter(0)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(batches_strategy, st.integers(min_value=0, max_value=50))
def test_property_followed_batches_read_as_if_each_was_folded_at_once(raw, held):
    """Batches in order, late readings, a time stored again: the memory read after any number
    of follows holds what folding every batch as it came held."""
    history = [(T0 - timedelta(minutes=5 * (held - i)), 0.0) for i in range(held)]
    batches = [[(T0 + timedelta(seconds=s), mm, flag) for s, mm, flag in batch]
               for batch in raw]
    state, sensor = TelemetryState(), gauge()
    remembered(state, sensor, history)
    revision = 0
    for batch in batches:
        state.follow({sensor.id: batch}, {sensor.id: (revision, revision + len(batch))})
        revision += len(batch)
    sensor.revision = revision
    memory = state.followed(None, sensor)
    expected_history, expected_rain = eager(history, batches)
    assert memory.waiting == []
    assert memory.history == expected_history
    assert rain_state(memory.rain) == rain_state(expected_rain)
    assert memory.key[0] == revision
    assert state.memory(None, sensor) is memory  # at the database's revision: not reloaded


def test_a_memory_that_missed_a_batch_is_dropped_with_what_waits_in_it():
    state, sensor = TelemetryState(), gauge()
    remembered(state, sensor, [])
    state.follow({sensor.id: [(T0, 1.0, "good")]}, {sensor.id: (0, 1)})
    # Another process stored a reading (revision 2) that this one never saw.
    state.follow({sensor.id: [(T0 + timedelta(minutes=10), 1.0, "good")]},
                 {sensor.id: (2, 3)})
    assert sensor.id not in state._memories


def test_waiting_readings_are_folded_before_the_memory_grows_past_its_bound():
    state, sensor = TelemetryState(), gauge()
    memory = remembered(state, sensor, [])
    for n in range(WAITING_MAX + 1):
        state.follow({sensor.id: [(T0 + timedelta(seconds=n), 0.0, "good")]},
                     {sensor.id: (n, n + 1)})
    assert memory.waiting == []
    assert len(memory.history) == HISTORY
    assert memory.history[-1] == (T0 + timedelta(seconds=WAITING_MAX), 0.0)


def test_a_commit_of_this_process_comes_after_what_was_followed_before_it():
    """apply() (HTTP ingest in the same process) folds the waiting readings first, so a value
    it stores again for a followed time is the one kept."""
    state, sensor = TelemetryState(), gauge()
    memory = remembered(state, sensor, [])
    state.follow({sensor.id: [(T0, 1.0, "good"), (T0 + timedelta(minutes=5), 2.0, "good")]},
                 {sensor.id: (0, 2)})
    pending = Pending()
    pending.add(sensor.id, T0 + timedelta(minutes=5), 3.0, "good")
    state.apply(pending, {sensor.id: 3})
    assert memory.waiting == []
    assert memory.history == [(T0, 1.0), (T0 + timedelta(minutes=5), 3.0)]
    assert memory.rain.window(T0 + timedelta(minutes=5), 600).mm == 4.0
    assert memory.key[0] == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=30),
       st.lists(st.tuples(st.integers(min_value=-20, max_value=60),
                          st.sampled_from([0.0, 1.0, 1.0, 3.0])), min_size=1, max_size=8))
def test_property_a_reading_is_flagged_against_the_history_and_its_transactions_readings(
        stored, batch):
    """flag() judges a reading on the memory plus the readings flagged before it in the same
    transaction (ordered or not): the same as check() on all of them, unordered."""
    from telemetry.qc import check

    sensor = SimpleNamespace(**{**vars(gauge()), "qc": {"stuck_count": 3, "spike_threshold": 2}})
    history = sorted({(T0 + timedelta(minutes=5 * m), 1.0) for m in stored})[-HISTORY:]
    state = TelemetryState()
    memory = Memory(_key(sensor), qc_params(sensor.kind, sensor.qc, sensor.interval_s),
                    list(history))
    state._memories[sensor.id] = memory
    pending = Pending()
    for minutes, value in batch:
        ts = T0 + timedelta(minutes=5 * minutes)
        if any(t == ts for t, _v, _f in pending.readings.get(sensor.id, ())):
            continue  # ingest takes a repeat of (sensor, ts) aside before flagging it
        expected = check(value, ts, history + pending.of(sensor.id), memory.params, sensor.kind)
        assert state.flag(None, sensor, ts, value, pending, T0) == expected
        pending.add(sensor.id, ts, value, expected.flag.value)


def test_a_sensor_row_after_a_commit_keeps_its_registry_fields():
    """SensorRow.after (ingest's cached row after its commit) raises the revision, marks the
    sensor reporting, moves its last reading, and keeps every other field."""
    from telemetry.ingest import SensorRow

    row = SensorRow(7, "RG-7", "rain_gauge", "mm", 3, 0.0, 200.0, 300, {"stuck_count": 5}, False,
                    4, "missing", T0, 1.0, "good")
    after = row.after(2, (T0 + timedelta(minutes=5), 2.5, "suspect"))
    assert after == row._replace(revision=6, status="reporting",
                                 last_ts=T0 + timedelta(minutes=5), last_value=2.5,
                                 last_flag="suspect")
