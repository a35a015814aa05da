"""Every detail ingest stores with a dead letter has a translation on the dead-letter page:
telemetry.pages.DEAD_LETTER_DETAILS (JavaScript patterns) match each form the decoder and ingest
write, their {placeholders} are groups of the pattern, and the Chinese keeps them."""

import re
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from telemetry.decode import Reading, decode_payload
from telemetry.ingest import _detail
from telemetry.pages import DEAD_LETTER_DETAILS, DEAD_LETTER_PROBLEMS, DEAD_LETTER_REASONS
from telemetry.quota import summary_detail

NOW = datetime(2026, 7, 27, 13, 0, tzinfo=UTC)
GOOD_TS = "2026-07-27T21:00:00+08:00"


def one(**fields) -> bytes:
    import json

    return json.dumps({"sensor": "RG-1", "ts": GOOD_TS, "value": 1.0, **fields}).encode()


BAD_PAYLOADS = [
    b"\xff\xfe", b"{", b'{"sensor": "RG-1",}', b'{"a": 1, "a": 2}', b"NaN", b'{"x": 1} 2',
    b'{"sensor" 1}', b'["a" "b"]', b'{"s": "\x01"}', b'{"s": "\\q"}', b'{"s": "\\u12"}',
    b'{"s": "abc', b"[" * 100000, b"[]", b'{"readings": 5}', b'{"readings": [5]}',
    one(sensor=5), one(value="1"), one(unit=5), one(seq=-1), one(ts=None), one(ts=[]),
    one(ts=1785000000), one(ts="yesterday"), one(ts="2026-13-01T00:00:00Z"),
    one(ts="2026-02-30T00:00:00Z"), one(ts="2026-07-27T25:00:00Z"),
    one(ts="2026-07-27T21:00:00+24:00"), one(ts="0001-01-01T00:00:00+01:00"),
    one(ts="2026-07-28T21:00:00+08:00"), one(ts="2025-07-27T21:00:00+08:00"),
    b'{"sensor": "RG-1", "ts": "' + GOOD_TS.encode() + b'", "value": 1e400}',
]


def stored_details() -> list[tuple[str, str]]:
    """(reason, detail) for every form of detail the decoder and ingest write."""
    out = []
    for raw in BAD_PAYLOADS:
        decoded = decode_payload(raw, now=NOW, max_age_days=30)
        assert decoded.rejections, raw
        out += [(r.reason, r.detail) for r in decoded.rejections]
    out += [(r.reason, r.detail) for r in decode_payload(b"x" * 600, now=NOW,
                                                         max_payload_bytes=500).rejections]
    out += [(r.reason, r.detail) for r in decode_payload(
        b'{"readings": [' + b",".join([one()] * 3) + b"]}", now=NOW, max_batch=2).rejections]
    reading = Reading("RG-1", NOW, 250.0, "cm", None, 0)
    sensor = SimpleNamespace(code="RG-1", range_min=0.0, range_max=200.0, unit="mm")
    for reason in ("out_of_range", "unit_mismatch", "foreign_sensor", "unknown_sensor",
                   "retired_sensor"):
        out.append((reason, _detail(reason, reading, sensor)))
    out.append(("foreign_sensor", "no active gateway GW-X"))  # telemetry.ingest, a topic's gateway
    out.append(("conflict", f"stored value {1.5} stands, got {2.5}"))  # ingest's conflict
    out.append(("over_quota", summary_detail(Counter(bad_json=3, schema=2), 60, 1048576)))
    return out


def python_pattern(pattern: str) -> re.Pattern:
    return re.compile(pattern.replace("(?<", "(?P<"))


def test_every_stored_detail_has_words():
    details = stored_details()
    # `swapped` is the positions intake's (tests/positions/test_letter_words.py).
    assert {reason for reason, _ in details} == set(DEAD_LETTER_REASONS) - {"swapped"}
    patterns = [(python_pattern(p), str(words)) for p, words in DEAD_LETTER_DETAILS]
    unknown = [(reason, detail) for reason, detail in details
               if not any(p.match(detail) for p, _ in patterns)]
    assert unknown == []
    # Each problem part from Python's JSON reader or the time parser has words too.
    problems = []
    for _, detail in details:
        for pattern, _ in patterns:
            match = pattern.match(detail)
            if match:
                if "problem" in match.groupdict():
                    problems.append(match["problem"])
                break
    assert problems
    assert [p for p in problems if not any(p.startswith(k) for k in DEAD_LETTER_PROBLEMS)] == []


@pytest.mark.parametrize("locale", ["en", "zh_Hans_CN"])
def test_placeholders_are_groups_in_both_languages(app, locale):
    with app.test_request_context(), force_locale(locale):
        for pattern, words in DEAD_LETTER_DETAILS:
            groups = set(python_pattern(pattern).groupindex)
            holes = set(re.findall(r"\{(\w+)\}", str(words)))
            assert holes <= groups, (pattern, str(words))
            assert holes == set(re.findall(r"\{(\w+)\}", words._args[0])), str(words)
            if locale == "zh_Hans_CN":
                assert str(words) != words._args[0], f"no Chinese for {words._args[0]!r}"
        for code, label in DEAD_LETTER_REASONS.items():
            assert str(label), code
