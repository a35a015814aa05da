"""Every detail the positions intake stores with a dead letter has words on the dead-letter
page (dispatch.positions.letter_words, added to telemetry's through
telemetry.pages.add_dead_letter_details): each form the decoders write matches a pattern, every
pattern is used, its {holes} are groups, and Chinese keeps them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask_babel import force_locale

from dispatch.positions.fixes import (
    MAX_LOCATIONS,
    MAX_MESSAGE_BYTES,
    REASONS,
    Area,
    Rejection,
    Window,
    decode_osmand,
    decode_owntracks,
    decode_tablet,
    decode_traccar,
    traccar_body,
)
from dispatch.positions.letter_words import DETAILS
from telemetry.pages import DEAD_LETTER_DETAILS, DEAD_LETTER_PROBLEMS

NOW = datetime(2026, 7, 27, 14, 0, tzinfo=UTC)
TST = int((NOW - timedelta(minutes=5)).timestamp())
WINDOW = Window(NOW, max_future_s=300, max_age_days=7, area=Area(108.9, 33.0, 109.2, 33.3).grown())
LON, LAT = 109.05, 33.15
ISO = "2026-07-27T13:55:00Z"


def owntracks(**fields) -> bytes:
    body = {"_type": "location", "lat": LAT, "lon": LON, "tst": TST, **fields}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def transition(**fields) -> bytes:
    return owntracks(**{"_type": "transition", "event": "enter", "desc": "V01", **fields})


def traccar(coords=None, **fields):
    location = {"coords": {"latitude": LAT, "longitude": LON, **(coords or {})},
                "timestamp": ISO, **fields}
    return {k: v for k, v in location.items() if v is not ...}


def osmand(**params):
    return {k: v for k, v in {"id": "p1", "lat": str(LAT), "lon": str(LON), "timestamp":
                              str(TST), **params}.items() if v is not ...}


def tablet(**fields):
    return {k: v for k, v in {"lat": LAT, "lon": LON, "ts": ISO, **fields}.items()
            if v is not ...}


def rejections() -> list[Rejection]:
    """A refusal of every form the decoders write (one or more inputs for each raise)."""
    out = [decode_owntracks(raw, WINDOW) for raw in (
        b"x" * (MAX_MESSAGE_BYTES + 1), b"{", b"[1]", b'{"a": NaN}', b"\xff",
        json.dumps({"lat": LAT}).encode(),
        owntracks(lat=...), owntracks(lon="109"), owntracks(lat=LON, lon=LAT),
        owntracks(lat=91.0), owntracks(lon=181.0), owntracks(lat=0, lon=0),
        owntracks(lat=0.5).replace(b"0.5", b"1e400"), owntracks(tst=...), owntracks(tst="now"),
        owntracks(tst=TST * 1000), owntracks(tst=-5), owntracks(tst=1e17),
        owntracks(tst=TST + 3600), owntracks(tst=TST - 30 * 86400),
        transition(event="stay"), transition(desc=""))]
    out += [decode_osmand(osmand(**params), WINDOW) for params in (
        {"lat": ...}, {"lat": "north"}, {"lat": ..., "lon": ..., "location": "1,2,3"},
        {"timestamp": "x" * 65}, {"timestamp": "2026-13-01T00:00:00Z"},
        {"timestamp": "0001-01-01T00:00:00+01:00"}, {"timestamp": "9999-12-31T23:00:00-05:00"},
        {"timestamp": "2026-07-28T14:00:00Z"})]
    out += traccar_body(b"{}")[2:] + traccar_body(b"nope")[2:]
    out += decode_traccar([traccar()] * (MAX_LOCATIONS + 1), WINDOW)
    for location in ("x", {"timestamp": ISO}, traccar(timestamp=...), traccar(timestamp=5),
                     traccar(coords={"latitude": None}), traccar(timestamp="yesterday")):
        out += decode_traccar(location, WINDOW)
    out += [decode_tablet(data, WINDOW) for data in (
        [1], tablet(ts=...), tablet(ts=5), tablet(lat=True), tablet(ts="2026-07-27 13:55:00"))]
    assert all(isinstance(r, Rejection) for r in out), [r for r in out
                                                         if not isinstance(r, Rejection)]
    return out


def js(pattern: str) -> re.Pattern:
    return re.compile(pattern.replace("(?<", "(?P<"))


def test_every_detail_the_decoders_write_has_words_and_every_pattern_is_used():
    found = rejections()
    assert {r.reason for r in found} == set(REASONS)
    patterns = [js(p) for p, _ in (*DEAD_LETTER_DETAILS, *DETAILS)]
    ours = [js(p) for p, _ in DETAILS]
    used = set()
    for rejection in found:
        match = next((p for p in patterns if p.match(rejection.detail)), None)
        assert match is not None, rejection
        used.add(match.pattern)
        problem = match.match(rejection.detail).groupdict().get("problem")
        if problem is not None and match in ours:
            assert problem.startswith(tuple(DEAD_LETTER_PROBLEMS)), rejection
    assert [p.pattern for p in ours if p.pattern not in used] == []


@pytest.mark.parametrize("locale", ["en", "zh_Hans_CN"])
def test_holes_are_groups_in_both_languages(app, locale):
    with app.test_request_context(), force_locale(locale):
        for pattern, words in DETAILS:
            groups = set(js(pattern).groupindex)
            assert set(re.findall(r"\{(\w+)\}", str(words))) <= groups, (pattern, str(words))
            if locale == "zh_Hans_CN":
                assert str(words) != words._args[0], f"no Chinese for {words._args[0]!r}"


def test_the_dead_letter_page_carries_them(client, login):
    login("dispatcher")
    page = client.get("/dead-letters").get_data(as_text=True)
    assert "township" in page and "look swapped" in page
