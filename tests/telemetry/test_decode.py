"""telemetry.decode against the ingest rules of DESIGN §5 and issue 11's "Bad input" list."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from telemetry.decode import MAX_SEQ, REASONS, Decoded, Reading, decode_payload, parse_timestamp

NOW = datetime(2026, 7, 27, 14, 0, tzinfo=UTC)
TS = "2026-07-27T21:05:00+08:00"  # 13:05 UTC, the example of DESIGN §5


def body(**fields: object) -> dict:
    reading: dict = {"sensor": "RG-001", "ts": TS, "value": 3.5}
    reading.update(fields)
    return {k: v for k, v in reading.items() if v is not ...}


def raw(**fields: object) -> bytes:
    return json.dumps(body(**fields)).encode()


def outcome(payload: bytes, **limits: int) -> str:
    """The single reason a payload is refused with."""
    decoded = decode_payload(payload, now=NOW, **limits)
    assert not decoded.readings, decoded
    assert len(decoded.rejections) == 1, decoded
    return decoded.rejections[0].reason


def test_the_design_example_is_one_reading_in_utc():
    decoded = decode_payload(raw(), now=NOW)
    assert decoded.rejections == [] and decoded.batch is False
    assert decoded.readings == [Reading("RG-001", datetime(2026, 7, 27, 13, 5, tzinfo=UTC), 3.5,
                                        None, None, 0)]
    assert decoded.readings[0].ts.tzinfo is UTC


@pytest.mark.parametrize(("payload", "expected"), [
    # Decoding: not UTF-8 (DESIGN §5 `bad_encoding`).
    (b"\xff", "bad_encoding"),
    ('{"sensor": "RG-001", "ts": "2026-07-27T13:05:00Z", "value": 1, "x": "é"}'
     .encode("latin-1"), "bad_encoding"),
    ('{"sensor": "RG-001"}'.encode("utf-16"), "bad_encoding"),
    (b'{"sensor": "\xed\xa0\x80"}', "bad_encoding"),  # a surrogate encoded in UTF-8 (CESU)
    (b'{"sensor": "\xc0\xaf"}', "bad_encoding"),  # an overlong encoding
    # Not strict RFC 8259 JSON (`bad_json`).
    (b"not json", "bad_json"),
    (b"", "bad_json"),
    (b"\xef\xbb\xbf", "bad_json"),
    (b"\xef\xbb\xbf\xef\xbb\xbf" + raw(), "bad_json"),  # only one BOM is tolerated
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": NaN}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": Infinity}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": -Infinity}', "bad_json"),
    (b'{"sensor": "A", "sensor": "B", "ts": "2026-07-27T13:00:00Z", "value": 1}', "bad_json"),
    (b'{"sensor": "A", "sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1}', "bad_json"),
    (b'{"sensor": "A", "\\u0073ensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1}',
     "bad_json"),  # the same key, escaped
    (b'{"readings": [{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1, "value": 2}]}',
     "bad_json"),  # a duplicate key at any depth refuses the whole message
    (b'{"readings": [], "readings": []}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 1,}', "bad_json"),
    (b"{'sensor': 'A'}", "bad_json"),
    (b'{"sensor": "A"} // comment', "bad_json"),
    (b'{"sensor": "A"} {"sensor": "B"}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 0x10}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": 01}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": +1}', "bad_json"),
    (b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": .5}', "bad_json"),
    (b'{"sensor": "A\tB", "ts": "2026-07-27T13:00:00Z", "value": 1}', "bad_json"),
    (b"[" * 100_000 + b"]" * 100_000, "bad_json"),
    # The top level must be a reading or {"readings": [...]} (`schema`).
    (b"[1, 2]", "schema"),
    (b'"RG-001"', "schema"),
    (b"3.5", "schema"),
    (b"null", "schema"),
    (b'{"readings": {"a": 1}}', "schema"),
    (b'{"readings": "x"}', "schema"),
    (b'{"readings": 3}', "schema"),
    (b"{}", "schema"),
    # Limits (`too_large`).
    (b" " * 524_289, "too_large"),
    (json.dumps({"readings": [body()] * 1001}).encode(), "too_large"),
])
def test_whole_message_refusals(payload, expected):
    assert outcome(payload) == expected
    assert decode_payload(payload, now=NOW).rejections[0].index is None


@pytest.mark.parametrize(("fields", "expected"), [
    # Per reading (`schema`): sensor.
    ({"sensor": ...}, "schema"),
    ({"sensor": None}, "schema"),
    ({"sensor": ""}, "schema"),
    ({"sensor": "X" * 65}, "schema"),
    ({"sensor": 1}, "schema"),
    ({"sensor": ["RG-001"]}, "schema"),
    ({"sensor": "RG\u0000001"}, "schema"),
    ({"sensor": "RG\u0085001"}, "schema"),
    ({"sensor": "RG\ud800"}, "schema"),  # an unpaired surrogate, from a \ud800 escape
    # value: booleans and numeric strings are not numbers.
    ({"value": ...}, "schema"),
    ({"value": None}, "schema"),
    ({"value": True}, "schema"),
    ({"value": False}, "schema"),
    ({"value": "3.5"}, "schema"),
    ({"value": "NaN"}, "schema"),
    ({"value": [3.5]}, "schema"),
    ({"value": {"mm": 3.5}}, "schema"),
    # Optional unit and seq.
    ({"unit": 5}, "schema"),
    ({"unit": ["mm"]}, "schema"),
    ({"unit": "m\u0000m"}, "schema"),
    ({"seq": -1}, "schema"),
    ({"seq": 1.5}, "schema"),
    ({"seq": 1.0}, "schema"),
    ({"seq": True}, "schema"),
    ({"seq": "7"}, "schema"),
    ({"seq": MAX_SEQ + 1}, "schema"),
    # ts: required, a string (an epoch number is a timestamp form, refused as such).
    ({"ts": ...}, "schema"),
    ({"ts": None}, "schema"),
    ({"ts": True}, "schema"),
    ({"ts": ["2026-07-27T13:05:00Z"]}, "schema"),
    ({"ts": 1785157500}, "bad_timestamp"),
    ({"ts": 1785157500.0}, "bad_timestamp"),
    ({"ts": 1785157500000}, "bad_timestamp"),
    # Time limits: more than 300 s ahead, more than 30 days old.
    ({"ts": "2026-07-27T14:05:01Z"}, "future"),
    ({"ts": "2026-07-28T00:00:00+08:00"}, "future"),
    ({"ts": "2026-06-27T13:59:59Z"}, "too_old"),
    ({"ts": "2025-07-27T14:00:00Z"}, "too_old"),
])
def test_reading_refusals(fields, expected):
    assert outcome(raw(**fields)) == expected


@pytest.mark.parametrize("literal", [b"1e309", b"-1e309", b"1E400", b"9" * 400, b"-" + b"9" * 400,
                                     b"9" * 5000])
def test_a_number_overflowing_to_infinity_is_not_finite(literal):
    payload = b'{"sensor": "A", "ts": "2026-07-27T13:00:00Z", "value": ' + literal + b"}"
    assert outcome(payload) == "not_finite"


def test_overflowing_numbers_elsewhere_are_the_wrong_type_or_ignored():
    assert outcome(raw()[:-1] + b', "seq": 1e309}') == "schema"
    assert len(decode_payload(raw()[:-1] + b', "extra": 1e309}', now=NOW).readings) == 1


def test_reason_order_is_schema_then_not_finite_then_timestamp():
    assert outcome(raw(value=True, ts="yesterday")) == "schema"
    assert outcome(raw(ts="yesterday").replace(b"3.5", b"1e309")) == "not_finite"
    assert outcome(raw(ts="2026-07-27T13:05:60Z", seq=-1)) == "schema"


@pytest.mark.parametrize(("fields", "check"), [
    ({}, lambda r: r.unit is None and r.seq is None and r.index == 0),
    ({"unit": None, "seq": None}, lambda r: r.unit is None and r.seq is None),
    ({"unit": "mm", "seq": 0}, lambda r: r.unit == "mm" and r.seq == 0),
    ({"seq": MAX_SEQ}, lambda r: r.seq == MAX_SEQ),
    ({"firmware": "2.1", "battery_v": 12.6, "extra": {"nested": [1, None]}},
     lambda r: r.value == 3.5),
    ({"value": 3}, lambda r: r.value == 3.0 and isinstance(r.value, float)),
    ({"value": -0.5}, lambda r: r.value == -0.5),
    ({"value": 1e308}, lambda r: r.value == 1e308),
    ({"value": 5e-324}, lambda r: r.value == 5e-324),
    ({"sensor": "X" * 64}, lambda r: r.sensor == "X" * 64),
    ({"sensor": "雨量-1"}, lambda r: r.sensor == "雨量-1"),
    ({"ts": "2026-07-27T14:05:00Z"}, lambda r: r.ts == NOW + timedelta(seconds=300)),
    ({"ts": "2026-06-27T14:00:00Z"}, lambda r: r.ts == NOW - timedelta(days=30)),
    ({"readings": None}, lambda r: r.sensor == "RG-001"),  # null readings = absent: one reading
])
def test_accepted_readings(fields, check):
    decoded = decode_payload(raw(**fields), now=NOW)
    assert decoded.rejections == [] and len(decoded.readings) == 1
    assert check(decoded.readings[0])


def test_bom_and_whitespace_are_tolerated():
    decoded = decode_payload(b"\xef\xbb\xbf \r\n\t" + raw() + b"\n", now=NOW)
    assert len(decoded.readings) == 1 and not decoded.rejections


def test_limits_are_the_callers():
    payload = raw()
    assert outcome(payload, max_payload_bytes=len(payload) - 1) == "too_large"
    assert len(decode_payload(payload, now=NOW, max_payload_bytes=len(payload)).readings) == 1
    assert outcome(raw(ts="2026-07-27T14:00:11Z"), max_future_s=10) == "future"
    assert outcome(raw(ts="2026-07-25T13:59:59Z"), max_age_days=2) == "too_old"
    batch = json.dumps({"readings": [body()] * 3}).encode()
    assert outcome(batch, max_batch=2) == "too_large"


def test_a_batch_of_1000_is_taken_and_1001_refused_whole():
    decoded = decode_payload(json.dumps({"readings": [body()] * 1000}).encode(), now=NOW)
    assert len(decoded.readings) == 1000 and decoded.batch
    refused = decode_payload(json.dumps({"readings": [body()] * 1001}).encode(), now=NOW)
    assert refused.readings == [] and [r.reason for r in refused.rejections] == ["too_large"]


def test_an_oversized_payload_is_not_parsed():
    # Not even valid UTF-8: the size is checked first.
    assert outcome(b"\xff" * 600_000) == "too_large"


def test_a_batch_keeps_good_items_and_names_each_bad_one():
    items = [body(), body(value="x", sensor="RG-002"), body(ts="2026-07-27T13:10:00Z"), 5,
             body(ts="2026-07-27 13:10:00Z", sensor="RG-003"), body(value=True, sensor=""),
             body(sensor="RG-004", ts="2026-08-01T00:00:00Z")]
    decoded = decode_payload(json.dumps({"readings": items}).encode(), now=NOW)
    assert decoded.batch and [r.index for r in decoded.readings] == [0, 2]
    assert [(r.index, r.reason, r.sensor) for r in decoded.rejections] == [
        (1, "schema", "RG-002"), (3, "schema", None), (4, "bad_timestamp", "RG-003"),
        (5, "schema", None), (6, "future", "RG-004")]


def test_an_empty_batch_yields_nothing():
    decoded = decode_payload(b'{"readings": []}', now=NOW)
    assert decoded == Decoded([], [], batch=True)


def test_a_rejection_names_the_sensor_only_when_it_is_a_valid_code():
    assert decode_payload(raw(value="1"), now=NOW).rejections[0].sensor == "RG-001"
    assert decode_payload(raw(sensor="X" * 65), now=NOW).rejections[0].sensor is None
    assert decode_payload(raw(sensor="A\u0000"), now=NOW).rejections[0].sensor is None


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        decode_payload(raw(), now=datetime(2026, 7, 27, 14))


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-07-27T13:05:00Z", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27t13:05:00z", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T13:05:00z", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27t13:05:00Z", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T21:05:00+08:00", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T08:05:00-05:00", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T13:05:00+00:00", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T13:05:00-00:00", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-28T12:59:00+23:59", datetime(2026, 7, 27, 13, 0, tzinfo=UTC)),
    ("2026-07-26T13:06:00-23:59", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-28T02:50:00+13:45", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),  # Chatham
    ("2026-07-27T13:05:00.5Z", datetime(2026, 7, 27, 13, 5, 0, 500000, tzinfo=UTC)),
    ("2026-07-27T13:05:00.123456Z", datetime(2026, 7, 27, 13, 5, 0, 123456, tzinfo=UTC)),
    ("2026-07-27T13:05:00.123456789Z", datetime(2026, 7, 27, 13, 5, 0, 123456, tzinfo=UTC)),
    ("2026-07-27T13:05:00.000Z", datetime(2026, 7, 27, 13, 5, tzinfo=UTC)),
    ("2026-07-27T21:05:00.25+08:00", datetime(2026, 7, 27, 13, 5, 0, 250000, tzinfo=UTC)),
    ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),  # a leap day
    ("2026-12-31T23:59:59Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("2027-01-01T07:59:59+08:00", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_accepted_timestamps(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.tzinfo is UTC


REFUSED_TIMESTAMPS = [
    "2026-07-27T13:05:00",  # no offset
    "2026-07-27T21:05:00+0800",  # offset without colon
    "2026-07-27T21:05:00+08",
    "2026-07-27T21:05:00+8:00",
    "2026-07-27 13:05:00Z",  # a space instead of T
    "2026-07-27_13:05:00Z",
    "2026-07-27x13:05:00Z",  # lowercase other than t and z
    "2026-07-27T13:05:00 UTC",
    "2026-07-27T13:05:00GMT",
    "2026-07-27T13:05:00utc",
    "2026-W31-1T13:05:00Z",  # ISO week date
    "2026W311T130500Z",
    "2026-208T13:05:00Z",  # ordinal date
    "1785157500",  # epoch seconds as text
    "1785157500000",
    "2026-07-27T13:05:60Z",  # second 60 (no leap seconds)
    "2016-12-31T23:59:60Z",  # even a real leap second
    "2026-07-27T24:00:00Z",  # hour 24
    "2026-07-27T13:60:00Z",
    "2026-02-30T13:05:00Z",  # Feb 30
    "2026-02-29T13:05:00Z",  # 2026 is no leap year
    "2026-13-01T13:05:00Z",
    "2026-00-10T13:05:00Z",
    "2026-07-00T13:05:00Z",
    "2026-07-32T13:05:00Z",
    "0000-01-01T00:00:00Z",
    "2026-07-27T13:05Z",  # no seconds
    "2026-07-27T13Z",
    "2026-07-27",  # a date only
    "2026-07-27T13:05:00.Z",  # a point without digits
    "2026-07-27T13:05:00,5Z",  # ISO 8601's decimal comma
    "20260727T130500Z",  # ISO 8601 basic format
    "2026-7-27T13:05:00Z",  # not zero-padded
    "26-07-27T13:05:00Z",
    "+02026-07-27T13:05:00Z",
    "2026-07-27T13:05:00+24:00",  # offsets within ±23:59
    "2026-07-27T13:05:00+08:60",
    "2026-07-27T13:05:00-99:99",
    "2026-07-27T13:05:00+08:00[Asia/Shanghai]",  # RFC 9557 suffix
    "2026-07-27T13:05:00ZZ",
    "Mon, 27 Jul 2026 13:05:00 +0000",  # RFC 2822
    "27/07/2026 13:05:00",
    " 2026-07-27T13:05:00Z",
    "2026-07-27T13:05:00Z ",
    "2026-07-27T13:05:00Z\n",
    "２０２６-07-27T13:05:00Z",  # full-width digits
    "٢٠٢٦-07-27T13:05:00Z",  # Arabic-Indic digits
    "2026-07-27T13:05:00\u2212" + "05:00",  # a minus sign, not a hyphen-minus
    "",
    "now",
]


@pytest.mark.parametrize("text", REFUSED_TIMESTAMPS)
def test_refused_timestamps(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)
    assert outcome(raw(ts=text)) == "bad_timestamp"


# --- properties -------------------------------------------------------------------------------

def _json(floats: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["sensor", "ts", "value", "unit", "seq", "readings", "x"]), inner,
            max_size=5),
        max_leaves=20)


json_values = _json(st.floats())
finite_json_values = _json(st.floats(allow_nan=False, allow_infinity=False))


def _check_decoded(payload: bytes) -> None:
    decoded = decode_payload(payload, now=NOW)
    assert {r.reason for r in decoded.rejections} <= REASONS
    empty_batch = decoded.batch and not decoded.readings and not decoded.rejections
    assert decoded.readings or decoded.rejections or empty_batch
    if not decoded.batch:
        assert len(decoded.readings) + len(decoded.rejections) == 1
    for reading in decoded.readings:
        assert math.isfinite(reading.value) and reading.ts.tzinfo is UTC
        assert NOW - timedelta(days=30) <= reading.ts <= NOW + timedelta(seconds=300)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_property_never_raises_on_arbitrary_bytes(payload):
    _check_decoded(payload)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_property_never_raises_on_arbitrary_json(value, wrap):
    document = {"readings": value} if wrap else value
    _check_decoded(json.dumps(document, allow_nan=True).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=8), st.integers(min_value=0), st.integers(min_value=0, max_value=8))
def test_property_never_raises_on_a_damaged_good_payload(junk, at, cut):
    good = json.dumps({"readings": [body(), body(seq=1, unit="mm")]}).encode()
    at %= len(good)
    _check_decoded(good[:at] + junk + good[at + cut:])


# A valid batch item (as generated, with the reading it must give) or a bad one (with its reason).
def _format(instant: datetime, offset_min: int, digits: int, t: str, zulu: str) -> str:
    local = instant.astimezone(timezone(timedelta(minutes=offset_min)))
    text = local.strftime("%Y-%m-%d") + t + local.strftime("%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}000"[:digits]
    if offset_min == 0 and zulu:
        return text + zulu
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


@st.composite
def good_items(draw):
    seconds = draw(st.integers(min_value=-30 * 86400, max_value=300))
    micro = draw(st.integers(min_value=0, max_value=999_999))
    digits = draw(st.integers(min_value=0, max_value=9))
    if digits < 6:
        micro -= micro % 10 ** (6 - digits)  # what the fraction can say
    instant = NOW + timedelta(seconds=seconds, microseconds=micro)
    assume(NOW - timedelta(days=30) <= instant <= NOW + timedelta(seconds=300))
    offset = draw(st.just(0) | st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
    ts = _format(instant, offset, digits, draw(st.sampled_from("Tt")),
                 draw(st.sampled_from(["Z", "z", ""])))
    sensor = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                          min_size=1, max_size=64))
    value = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6))
    item = {"sensor": sensor, "ts": ts, "value": value}
    unit = draw(st.none() | st.sampled_from(["mm", "m", "kPa"]))
    seq = draw(st.none() | st.integers(min_value=0, max_value=MAX_SEQ))
    for key, extra in (("unit", unit), ("seq", seq)):
        if extra is not None or draw(st.booleans()):
            item[key] = extra
    if draw(st.booleans()):
        item["firmware"] = draw(finite_json_values)
    return item, (sensor, instant, float(value), unit, seq)


BAD_ITEMS = st.sampled_from([
    (body(value=True), "schema"), (body(value="3.5"), "schema"), (body(sensor=""), "schema"),
    (body(sensor=7), "schema"), (body(value=...), "schema"), (body(seq=-3), "schema"),
    (body(ts=...), "schema"), ("a string", "schema"), ([body()], "schema"), (None, "schema"),
    (body(ts="2026-07-27 13:05:00Z"), "bad_timestamp"), (body(ts=1785157500), "bad_timestamp"),
    (body(ts="2026-02-30T00:00:00Z"), "bad_timestamp"),
    (body(ts="2026-07-27T14:06:00Z"), "future"), (body(ts="2026-01-01T00:00:00Z"), "too_old"),
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(good_items().map(lambda g: ("good", g)),
                          BAD_ITEMS.map(lambda b: ("bad", b))), max_size=40),
       st.booleans())
def test_property_every_batch_item_comes_back_exactly_once(items, overflow):
    documents = [item for _, (item, _) in items]
    payload = json.dumps({"readings": documents}).encode()
    # `not_finite` cannot be written by json.dumps: splice an overflowing literal in.
    if overflow:
        documents.append({"sensor": "RG-9", "ts": TS, "value": "<overflow>"})
        payload = json.dumps({"readings": documents}).encode().replace(b'"<overflow>"', b"1e999")
        items.append(("bad", (None, "not_finite")))
    decoded = decode_payload(payload, now=NOW)
    assert decoded.batch
    assert len(decoded.readings) + len(decoded.rejections) == len(items)
    good = {i: expect for i, (kind, (_, expect)) in enumerate(items) if kind == "good"}
    bad = {i: expect for i, (kind, (_, expect)) in enumerate(items) if kind == "bad"}
    assert [r.index for r in decoded.readings] == sorted(good)
    for reading in decoded.readings:
        assert (reading.sensor, reading.ts, reading.value, reading.unit, reading.seq) \
            == good[reading.index]
    assert {r.index: r.reason for r in decoded.rejections} == bad
