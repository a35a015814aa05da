"""The decoding half of the ingest rules (DESIGN §5), table-driven, plus a property test."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.decode import decode_payload, parse_timestamp

NOW = datetime(2026, 7, 27, 14, 0, tzinfo=UTC)
REASONS = {"bad_json", "bad_encoding", "schema", "bad_timestamp", "not_finite", "too_old",
           "future", "too_large"}


def one(raw: bytes):
    return decode_payload(raw, now=NOW)


def reason(raw: bytes) -> str:
    decoded = one(raw)
    assert not decoded.readings, decoded
    return decoded.rejections[0].reason


def body(**fields) -> bytes:
    reading = {"sensor": "RG-001", "ts": "2026-07-27T21:05:00+08:00", "value": 3.5}
    reading.update(fields)
    return json.dumps(reading).encode()


def test_a_good_reading_is_stored_in_utc():
    decoded = one(body())
    assert decoded.rejections == [] and not decoded.batch
    assert decoded.readings[0].ts == datetime(2026, 7, 27, 13, 5, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"not json", "bad_json"),
    (b'{"sensor": "A", "sensor": "B", "ts": "2026-07-27T13:00:00Z", "value": 1}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": NaN}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": Infinity}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1e309}', "not_finite"),
    (b"\xff\xfe\x00", "bad_encoding"),
    (b"[1, 2]", "schema"),
    (b'{"readings": {"a": 1}}', "schema"),
    (body(value=True), "schema"),
    (body(value="3.5"), "schema"),
    (body(value=None), "schema"),
    (body(sensor=""), "schema"),
    (body(seq=-1), "schema"),
    (body(ts=1785157500), "bad_timestamp"),
    (body(ts="2026-07-27T14:06:00Z"), "future"),
    (body(ts="2026-06-01T00:00:00Z"), "too_old"),
])
def test_refusals(raw, expected):
    assert reason(raw) == expected


def test_bom_and_null_optionals_and_unknown_fields_are_fine():
    decoded = one(b"\xef\xbb\xbf" + body(unit=None, seq=None, firmware="2.1"))
    assert len(decoded.readings) == 1 and decoded.readings[0].unit is None


@pytest.mark.parametrize("text", [
    "2026-07-27T13:05:00Z", "2026-07-27t13:05:00z", "2026-07-27T21:05:00.123+08:00",
    "2026-07-27T08:05:00-05:00", "2026-07-27T13:05:00.5Z",
])
def test_accepted_timestamps(text):
    assert parse_timestamp(text).tzinfo is UTC


@pytest.mark.parametrize("text", [
    "2026-07-27T13:05:00", "2026-07-27T21:05:00+0800", "2026-07-27 13:05:00Z",
    "2026-W31-1T13:05:00Z", "2026-208T13:05:00Z", "2026-07-27T13:05:60Z",
    "2026-07-27T24:00:00Z", "2026-02-30T13:05:00Z", "2026-07-27T13:05Z",
    "2026-07-27T13:05:00+24:00", "1785157500",
])
def test_refused_timestamps(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)
    assert reason(body(ts=text)) == "bad_timestamp"


def test_batch_keeps_good_items_and_names_bad_ones():
    items = [json.loads(body()), json.loads(body(value="x")),
             json.loads(body(ts="2026-07-27T13:10:00Z")), 5]
    decoded = one(json.dumps({"readings": items}).encode())
    assert decoded.batch and [r.index for r in decoded.readings] == [0, 2]
    assert [(r.index, r.reason) for r in decoded.rejections] == [(1, "schema"), (3, "schema")]


def test_limits():
    assert reason(b" " * 600_000) == "too_large"
    too_many = {"readings": [json.loads(body())] * 1001}
    assert reason(json.dumps(too_many).encode()) == "too_large"
    assert len(one(json.dumps({"readings": [json.loads(body())] * 1000}).encode()).readings) \
        == 1000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_never_raises_on_arbitrary_bytes(raw):
    decoded = decode_payload(raw, now=NOW)
    assert decoded.readings or decoded.rejections
    assert {r.reason for r in decoded.rejections} <= REASONS


readings = st.fixed_dictionaries({
    "sensor": st.one_of(st.text(min_size=1, max_size=10), st.integers()),
    "ts": st.one_of(st.just("2026-07-27T13:05:00Z"), st.text(max_size=25)),
    "value": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                       st.text(max_size=5)),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(readings, max_size=30))
def test_every_batch_item_is_accounted_for_once(items):
    decoded = decode_payload(json.dumps({"readings": items}).encode(), now=NOW)
    indexes = [r.index for r in decoded.readings] + [r.index for r in decoded.rejections]
    assert sorted(indexes) == list(range(len(items)))


@pytest.mark.parametrize(("text", "expected"), [
    ("0001-01-01T00:00:00+08:00", "too_old"),   # 0000-12-31T16:00Z: before year 1 in UTC
    ("0001-01-01T07:59:59+08:00", "too_old"),
    ("0001-01-01T00:00:00+00:01", "too_old"),
    ("9999-12-31T23:59:59-08:00", "future"),    # year 10000 in UTC
    ("9999-12-31T16:00:00-08:00", "future"),
    ("9999-12-31T23:59:59-00:01", "future"),
])
def test_a_well_formed_time_outside_the_utc_years_is_out_of_the_window(text, expected):
    # DESIGN §5: the grammar is met, so the time is judged by the window, not `bad_timestamp`.
    assert reason(body(ts=text)) == expected
    with pytest.raises(ValueError):  # parse_timestamp still yields no datetime for it
        parse_timestamp(text)


def test_nesting_is_limited_like_every_api_body():
    deep = b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1, "x": ' + \
        b"[" * 64 + b"]" * 64 + b"}"
    assert reason(deep) == "bad_json"
    assert len(one(body(x=[[[[1]]]], y="[[[[[[[[[[" * 10)).readings) == 1
