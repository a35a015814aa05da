"""alerts.cap: CAP 1.2 messages and the Atom feed (DESIGN §5 "Alerts", §6 "Alert lifecycle").

Every message a test here produces goes through `produce`, which validates it against the OASIS
CAP 1.2 schema with lxml. The published examples (tests/alerts/standards/cap-examples, copies of
../shared/standards) prove the validator accepts real CAP, and give the shape ours must have.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from alerts import cap
from alerts.cap import (
    CapArea,
    CapInfo,
    CapMessage,
    CapReference,
    FeedEntry,
    atom_feed,
    cap_time,
    cap_xml,
    check,
    entry_id,
    is_language_tag,
    response,
)
from alerts.choices import LEVELS

STANDARDS = Path(__file__).parent / "standards"
XSD = etree.XMLSchema(etree.parse(str(STANDARDS / "cap-v1.2.xsd")))
EXAMPLES = sorted((STANDARDS / "cap-examples").glob("*.xml"))
NS = {"cap": cap.CAP_NS, "atom": cap.ATOM_NS}

SENDER = "rescuehub@township.example"
# A township in hilly Zhejiang: (min_lon, min_lat, max_lon, max_lat).
TOWNSHIP = (119.0, 30.0, 119.5, 30.4)
SENT = datetime(2026, 7, 27, 13, 5, 0, 250_000, tzinfo=UTC)  # 21:05:00.25 in China
RAISED = datetime(2026, 7, 27, 12, 40, 0, 900_000, tzinfo=UTC)  # 20:40:00.9 in China

QINGSHAN = CapArea("V012", "青山村 Qingshan",
                   (((119.1, 30.2), (119.2, 30.2), (119.2, 30.3)),))
# A village in two parts (a multipolygon): one <area>, one <polygon> per ring; stored rings are
# closed, as shapely and GeoJSON give them.
SHUIKOU = CapArea("V013", "水口村 Shuikou",
                  (((119.3, 30.1), (119.35, 30.1), (119.35, 30.15), (119.3, 30.1)),
                   ((119.4, 30.1), (119.45, 30.12), (119.42, 30.16), (119.4, 30.1))))
INFOS = (
    CapInfo("zh-CN", "山洪", "青山村：立即转移",
            "1 小时雨量 46 毫米，超过立即转移临界雨量 45 毫米。", "立即按转移路线前往安置点。",
            "青山镇应急管理办公室"),
    CapInfo("en-US", "Flash flood", "Qingshan: evacuate now",
            "46 mm of rain in the last hour, above the 45 mm critical rainfall for evacuation.",
            "Go to your shelter along the evacuation route now.",
            "Qingshan Township Emergency Office"),
)


def message(**changes) -> CapMessage:
    """A flash-flood Alert for Qingshan, with `changes`."""
    fields = dict(sender=SENDER, identifier=f"{SENDER}.42.1", sent=RAISED, msg_type="Alert",
                  status="Actual", kind="flash_flood", level="evacuate", infos=INFOS,
                  areas=(QINGSHAN,), expires=RAISED + timedelta(hours=24),
                  web="https://hub.township.example/alerts/42")
    return CapMessage(**(fields | changes))


FIRST = CapReference(SENDER, f"{SENDER}.42.1", RAISED)
SECOND = CapReference(SENDER, f"{SENDER}.42.2", SENT)

MESSAGES = {
    "alert": message(),
    "update, prepare to evacuate": message(identifier=f"{SENDER}.42.2", sent=SENT,
                                           msg_type="Update", references=(FIRST,)),
    "update, all clear": message(identifier=f"{SENDER}.42.3", sent=SENT + timedelta(hours=3),
                                 msg_type="Update", all_clear=True, references=(FIRST, SECOND),
                                 note="Rain below the prepare level for 60 min."),
    "cancel": message(identifier=f"{SENDER}.42.3", sent=SENT + timedelta(minutes=10),
                      msg_type="Cancel", references=(SECOND,),
                      note="Raised in error: gauge G03 was being calibrated."),
    "rainstorm, red": message(kind="rainstorm", level="red", areas=(QINGSHAN, SHUIKOU)),
    "slope movement, alarm, two villages": message(kind="slope_movement", level="alarm",
                                                   areas=(QINGSHAN, SHUIKOU)),
    "landslide rain, prepare, exercise": message(kind="landslide_rain", level="prepare",
                                                 status="Exercise", areas=(SHUIKOU,)),
    "data missing, test, nothing optional": message(
        kind="data", level="missing", status="Test", expires=None, web=None,
        infos=tuple(CapInfo(i.language, i.event, i.headline, i.description, i.instruction)
                    for i in INFOS)),
}


def produce(msg: CapMessage) -> etree._Element:
    """The message's XML, parsed, after asserting it is valid CAP 1.2 (the OASIS XSD)."""
    xml = cap_xml(msg)
    root = etree.fromstring(xml)
    assert XSD.validate(root), XSD.error_log
    return root


def local(tag: str) -> str:
    return etree.QName(tag).localname


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text for e in root.findall(path, NS)]


# --- the validator and the published examples -----------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_published_examples_are_valid_and_pass_our_checks(path):
    assert XSD.validate(etree.parse(str(path))), XSD.error_log
    # -00:00 (NTWC), many-vertex polygons (IPAWS), circles and signatures are all fine CAP.
    assert check(path.read_bytes()) == []


@pytest.mark.parametrize(("old", "new"), [
    (b"<scope>Public</scope>", b""),  # a required element missing
    (b"<status>Actual</status>\n    <msgType>Alert</msgType>",
     b"<msgType>Alert</msgType>\n    <status>Actual</status>"),  # out of the XSD's order
    (b"<severity>Severe</severity>", b"<severity>Bad</severity>"),  # not in the enumeration
    (b"2003-06-17T14:57:00-07:00", b"2003-06-17T14:57:00"),  # no offset
])
def test_the_validator_refuses_a_broken_example(old, new):
    source = (STANDARDS / "cap-examples" / "oasis-cap12-A2-thunderstorm-polygon.xml").read_bytes()
    assert old in source
    assert not XSD.validate(etree.fromstring(source.replace(old, new)))


def child_orders(roots: list[etree._Element]) -> dict[str, list[list[str]]]:
    """Per element name (alert, info, area, ...), the sequences of child names seen."""
    orders: dict[str, list[list[str]]] = {}
    for root in roots:
        for element in root.iter(f"{{{cap.CAP_NS}}}*"):
            names = [local(c.tag) for c in element if isinstance(c.tag, str)]
            if names:
                orders.setdefault(local(element.tag), []).append(names)
    return orders


EXAMPLE_ORDERS = child_orders([etree.parse(str(p)).getroot() for p in EXAMPLES])
# What the brief asks of every <info> the hub writes (besides area, checked per message).
INFO_CHILDREN = ("language", "category", "event", "responseType", "urgency", "severity",
                 "certainty", "senderName", "headline", "description", "instruction")


@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_has_the_shape_of_the_published_examples(name):
    msg = MESSAGES[name]
    ours = child_orders([produce(msg)])
    for parent, sequences in ours.items():
        seen = EXAMPLE_ORDERS[parent]
        # Required children: those every published example of this element has.
        required = set.intersection(*(set(s) for s in seen))
        # Order: two children that also occur together in an example come in its order.
        pairs = {(a, b) for s in seen for i, a in enumerate(s) for b in s[i + 1:] if a != b}
        for sequence in sequences:
            assert required <= set(sequence), (parent, required - set(sequence))
            for i, a in enumerate(sequence):
                for b in sequence[i + 1:]:
                    assert (b, a) not in pairs or (a, b) in pairs, (parent, a, b)
    assert {"identifier", "sender", "sent", "status", "msgType", "scope"} <= set(ours["alert"][0])
    for sequence in ours["info"]:
        assert set(INFO_CHILDREN) <= set(sequence)
        assert ("web" in sequence) == (msg.web is not None)
        assert sequence.count("area") == len(msg.areas)


def test_times_and_polygons_are_written_like_the_examples():
    examples = b"".join(p.read_bytes() for p in EXAMPLES)
    example_times = re.findall(rb"<sent>([^<]+)</sent>", examples)
    example_polygons = re.findall(rb"<polygon>([^<]+)</polygon>", examples)
    ours = cap_xml(MESSAGES["rainstorm, red"])
    time_form = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
    pair = rb"-?\d+(?:\.\d+)?,-?\d+(?:\.\d+)?"
    polygon_form = re.compile(pair + rb"(?: " + pair + rb")+")
    for times in (example_times, re.findall(rb"<sent>([^<]+)</sent>", ours)):
        assert times and all(time_form.fullmatch(t) for t in times)
    for polygons in (example_polygons, re.findall(rb"<polygon>([^<]+)</polygon>", ours)):
        assert polygons and all(polygon_form.fullmatch(p) for p in polygons)


# --- what the messages say ------------------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_is_valid_and_passes_the_checks_in_the_township(name):
    msg = MESSAGES[name]
    root = produce(msg)
    assert check(cap_xml(msg), bounds=TOWNSHIP) == []
    assert cap_xml(msg).startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<alert xmlns=")
    assert root.tag == f"{{{cap.CAP_NS}}}alert"
    assert texts(root, "cap:info/cap:language") == ["zh-CN", "en-US"]


def test_an_alert_says_what_and_where():
    root = produce(MESSAGES["alert"])
    assert texts(root, "cap:identifier") == [f"{SENDER}.42.1"]
    assert texts(root, "cap:sent") == ["2026-07-27T20:40:00+08:00"]
    assert texts(root, "cap:msgType") == ["Alert"] and texts(root, "cap:scope") == ["Public"]
    assert root.find("cap:references", NS) is None and root.find("cap:note", NS) is None
    zh, en = root.findall("cap:info", NS)
    assert [local(e.tag) for e in zh] == [
        "language", "category", "event", "responseType", "urgency", "severity", "certainty",
        "eventCode", "expires", "senderName", "headline", "description", "instruction", "web",
        "parameter", "area"]
    assert texts(zh, "cap:event") == ["山洪"] and texts(en, "cap:event") == ["Flash flood"]
    assert texts(zh, "cap:senderName") == ["青山镇应急管理办公室"]
    assert texts(en, "cap:expires") == ["2026-07-28T20:40:00+08:00"]
    assert [texts(en, f"cap:{n}")[0] for n in ("category", "responseType", "urgency", "severity",
                                                 "certainty")] == [
        "Met", "Evacuate", "Immediate", "Extreme", "Likely"]
    assert texts(en, "cap:eventCode/cap:value") == ["flash_flood"]
    assert texts(en, "cap:parameter/cap:value") == ["evacuate"]
    assert texts(en, "cap:area/cap:areaDesc") == ["青山村 Qingshan"]
    assert texts(en, "cap:area/cap:geocode/cap:value") == ["V012"]
    assert texts(en, "cap:web") == ["https://hub.township.example/alerts/42"]


def test_an_update_references_the_previous_message_exactly_as_it_was_sent():
    alert = produce(MESSAGES["alert"])
    update = produce(MESSAGES["update, prepare to evacuate"])
    triple = ",".join([alert.findtext("cap:sender", namespaces=NS),
                       alert.findtext("cap:identifier", namespaces=NS),
                       alert.findtext("cap:sent", namespaces=NS)])
    assert texts(update, "cap:references") == [triple]
    assert triple == f"{SENDER},{SENDER}.42.1,2026-07-27T20:40:00+08:00"


def test_several_references_are_separated_by_spaces():
    root = produce(MESSAGES["update, all clear"])
    assert texts(root, "cap:references") == [
        f"{SENDER},{SENDER}.42.1,2026-07-27T20:40:00+08:00 "
        f"{SENDER},{SENDER}.42.2,2026-07-27T21:05:00+08:00"]


def test_a_cleared_alert_is_an_update_with_all_clear():
    root = produce(MESSAGES["update, all clear"])
    assert texts(root, "cap:msgType") == ["Update"]
    assert texts(root, "cap:info/cap:responseType") == ["AllClear", "AllClear"]
    assert texts(root, "cap:info/cap:urgency") == ["Past", "Past"]
    assert texts(root, "cap:note") == ["Rain below the prepare level for 60 min."]


def test_a_cancel_references_the_previous_message_and_keeps_its_infos():
    root = produce(MESSAGES["cancel"])
    assert texts(root, "cap:msgType") == ["Cancel"]
    assert texts(root, "cap:references") == [f"{SENDER},{SENDER}.42.2,2026-07-27T21:05:00+08:00"]
    assert texts(root, "cap:note") == ["Raised in error: gauge G03 was being calibrated."]
    assert texts(root, "cap:info/cap:headline") == [i.headline for i in INFOS]
    # The Nevada cancel (IPAWS 2019) has the same header shape.
    nevada = etree.parse(str(STANDARDS / "cap-examples" / "ipaws-2019-nevada-cancel-signed.xml"))
    header = ["identifier", "sender", "sent", "status", "msgType", "references"]
    assert [local(e.tag) for e in root if local(e.tag) in header] == header
    assert [local(e.tag) for e in nevada.getroot() if local(e.tag) in header] == header


def test_optional_fields_are_left_out_when_not_given():
    # Every published example has an area, and so has every message above; CAP does not
    # require one, and a message without is still valid.
    root = produce(replace(MESSAGES["data missing, test, nothing optional"], areas=()))
    for path in ("cap:note", "cap:references", "cap:info/cap:expires", "cap:info/cap:web",
                 "cap:info/cap:area"):
        assert root.find(path, NS) is None, path
    # Without a sender name the block names the sender's address (every info has senderName).
    assert texts(root, "cap:info/cap:senderName") == [SENDER, SENDER]
    assert texts(root, "cap:info/cap:responseType") == ["None", "None"]
    assert texts(root, "cap:info/cap:category") == ["Infra", "Infra"]


# --- times (CAP 1.2 §3.3.2) -----------------------------------------------------------------


@pytest.mark.parametrize(("ts", "text"), [
    (datetime(2026, 7, 27, 13, 5, tzinfo=UTC), "2026-07-27T21:05:00+08:00"),
    # Fractions dropped, not rounded: 59.999 s stays in its second.
    (datetime(2026, 7, 27, 13, 5, 59, 999_999, tzinfo=UTC), "2026-07-27T21:05:59+08:00"),
    # Past 16:00 UTC it is the next day in China.
    (datetime(2026, 7, 27, 16, 30, tzinfo=UTC), "2026-07-28T00:30:00+08:00"),
    (datetime(2026, 7, 27, 21, 5, tzinfo=timezone(timedelta(hours=8))),
     "2026-07-27T21:05:00+08:00"),
    (datetime(2026, 7, 27, 8, 5, tzinfo=timezone(timedelta(hours=-5))),
     "2026-07-27T21:05:00+08:00"),
    (datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-10))),
     "2027-01-01T17:59:59+08:00"),
])
def test_times_are_china_standard_time_in_whole_seconds(ts, text):
    assert cap_time(ts) == text
    root = produce(message(sent=ts))
    assert texts(root, "cap:sent") == [text]


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 30),
                    timezones=st.builds(timezone, st.integers(-14 * 60, 14 * 60).map(
                        lambda m: timedelta(minutes=m)))))
@settings(max_examples=200, deadline=None)
def test_any_aware_time_is_written_as_a_real_cap_time_of_the_same_second(ts):
    text = cap_time(ts)
    assert text.endswith("+08:00") and "Z" not in text and "." not in text
    assert cap._time_problem(text) is None
    assert datetime.fromisoformat(text) == ts.replace(microsecond=0)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive"):
        cap_time(datetime(2026, 7, 27, 21, 5))


# --- polygons (CAP 1.2 §3.2.4) --------------------------------------------------------------


@pytest.mark.parametrize(("ring", "polygon"), [
    # Stored (lon, lat), written "lat,lon", closed on the first point.
    (((119.1, 30.2), (119.2, 30.2), (119.2, 30.3)),
     "30.200000,119.100000 30.200000,119.200000 30.300000,119.200000 30.200000,119.100000"),
    # A closed ring is not closed twice.
    (((119.1, 30.2), (119.2, 30.2), (119.2, 30.3), (119.1, 30.2)),
     "30.200000,119.100000 30.200000,119.200000 30.300000,119.200000 30.200000,119.100000"),
    # Rounded to 6 decimals; a ring that closes only after rounding is closed.
    (((119.12345678, 30.2), (119.2, 30.2000004), (119.2, 30.3), (119.1234571, 30.20000001)),
     "30.200000,119.123457 30.200000,119.200000 30.300000,119.200000 30.200000,119.123457"),
])
def test_rings_become_closed_lat_lon_polygons(ring, polygon):
    root = produce(message(areas=(CapArea("V012", "青山村", (ring,)),)))
    assert texts(root, "cap:info/cap:area/cap:polygon") == [polygon, polygon]


def test_a_village_in_two_parts_is_one_area_with_two_polygons():
    root = produce(message(areas=(QINGSHAN, SHUIKOU)))
    zh = root.find("cap:info", NS)
    areas = zh.findall("cap:area", NS)
    assert [a.findtext("cap:areaDesc", namespaces=NS) for a in areas] == ["青山村 Qingshan",
                                                                         "水口村 Shuikou"]
    assert [len(a.findall("cap:polygon", NS)) for a in areas] == [1, 2]
    assert texts(areas[1], "cap:polygon") == [
        "30.100000,119.300000 30.100000,119.350000 30.150000,119.350000 30.100000,119.300000",
        "30.100000,119.400000 30.120000,119.450000 30.160000,119.420000 30.100000,119.400000"]


def _rounded(point):
    # A named function, not a lambda: Hypothesis parses a lambda's source (tests/telemetry/
    # test_rain.py says why that can fail on Python 3.11.2).
    return (round(point[0], 6), round(point[1], 6))


@given(st.lists(st.tuples(st.floats(TOWNSHIP[0], TOWNSHIP[2]), st.floats(TOWNSHIP[1], TOWNSHIP[3])),
                min_size=3, max_size=40, unique_by=_rounded))
@settings(max_examples=60, deadline=None)
def test_any_ring_in_the_township_gives_a_valid_message_that_passes_the_checks(ring):
    msg = message(areas=(CapArea("V012", "青山村", (tuple(ring),)),))
    produce(msg)
    assert check(cap_xml(msg), bounds=TOWNSHIP) == []


# --- bad messages are refused when written ----------------------------------------------------

NAIVE = datetime(2026, 7, 27, 21, 5)


@pytest.mark.parametrize(("changes", "why"), [
    ({"sent": NAIVE}, "naive"),
    ({"expires": NAIVE}, "naive"),
    ({"msg_type": "Update", "references": (CapReference(SENDER, "x.1", NAIVE),)}, "naive"),
    ({"msg_type": "Ack"}, "msg_type"),
    ({"status": "Unknown"}, "status"),
    ({"msg_type": "Update"}, "must reference"),
    ({"msg_type": "Cancel"}, "must reference"),
    ({"all_clear": True}, "all-clear is an Update"),
    ({"msg_type": "Cancel", "all_clear": True, "references": (FIRST,)}, "all-clear is an Update"),
    ({"infos": (CapInfo("zh_CN", "山洪", "h", "d", "i"),)}, "RFC 5646"),
    ({"identifier": "rescuehub 42.1"}, "identifier"),
    ({"sender": "rescuehub,township"}, "sender"),
    ({"sender": ""}, "sender"),
    ({"msg_type": "Update", "references": (CapReference(SENDER, "a&b", RAISED),)}, "identifier"),
    ({"kind": "tsunami"}, "unknown kind"),
    ({"level": "red"}, "unknown kind and level"),
    ({"areas": (CapArea("V1", "x", (((119.1, 30.2), (119.2, 30.2)),)),)}, "3 distinct"),
    ({"areas": (CapArea("V1", "x", (((119.1, 30.2), (119.2, 30.2), (119.1, 30.2)),)),)},
     "3 distinct"),
    ({"areas": (CapArea("V1", "x", ((),)),)}, "3 distinct"),
    ({"areas": (CapArea("V1", "x", (((119.1, 30.2), (119.2, float("nan")), (1, 2)),)),)},
     "finite"),
    # Given as (lat, lon): a latitude of 119 is caught before anything is written.
    ({"areas": (CapArea("V1", "x", (((30.2, 119.1), (30.2, 119.2), (30.3, 119.2)),)),)},
     "WGS 84"),
])
def test_a_bad_message_is_refused(changes, why):
    with pytest.raises(ValueError, match=why):
        cap_xml(message(**changes))


# --- check: what the schema lets through ------------------------------------------------------

BASE = MESSAGES["update, prepare to evacuate"]
POLYGON = "cap:info[1]/cap:area[1]/cap:polygon[1]"
CLOSED = "30.200000,119.100000 30.200000,119.200000 30.300000,119.200000 30.200000,119.100000"
REFERENCE = f"{SENDER},{SENDER}.42.1,"


# (what, xpath of the element to change, its new text (None: remove it), valid for the XSD,
#  the problems check() finds: each a (count, fragment) that many problems contain).
@pytest.mark.parametrize(("xpath", "text", "xsd_valid", "count", "fragment"), [
    ("cap:sent", "2026-07-27T24:00:00+08:00", True, 1, "sent: '2026-07-27T24:00:00+08:00' is "
     "not a real time"),
    ("cap:sent", "2026-07-27T21:05:00.5+08:00", False, 1, "fraction of a second"),
    ("cap:sent", "2026-07-27T21:05:00", False, 1, "no time-zone offset"),
    ("cap:sent", "2026-07-27T13:05:00Z", False, 1, "uses Z"),
    ("cap:sent", "2026-07-27T13:05:00+00:00", True, 1, "UTC as -00:00"),
    ("cap:sent", "2026-07-27T21:05:00+15:00", False, 1, "beyond ±14:00"),
    ("cap:sent", "27/07/2026 21:05", False, 1, "not a dateTime"),
    ("cap:info[1]/cap:expires", "2026-07-27T21:05:00", False, 1, "info[1]/expires: "),
    ("cap:info[2]/cap:expires", "2026-07-26T21:05:00+08:00", True, 1,
     "info[2]/expires: 2026-07-26T21:05:00+08:00 is before sent"),
    # The schema takes any string in references.
    ("cap:references", REFERENCE + "2026-02-30T20:40:00+08:00", True, 1, "not a real time"),
    ("cap:references", REFERENCE + "2026-07-27T24:00:00+08:00", True, 1, "not a real time"),
    ("cap:references", REFERENCE + "2026-07-27T20:40:00.9+08:00", True, 1, "fraction"),
    ("cap:references", REFERENCE + "2026-07-27T20:40:00", True, 1, "no time-zone offset"),
    ("cap:references", REFERENCE + "2026-07-27T12:40:00Z", True, 1, "uses Z"),
    ("cap:references", f"{SENDER}.42.1,2026-07-27T20:40:00+08:00", True, 1,
     "not sender,identifier,sent"),
    ("cap:references", f"{REFERENCE}2026-07-27T20:40:00+08:00,{SENDER}.42.0", True, 1,
     "not sender,identifier,sent"),
    # Separated by a comma instead of a space: one mangled triple.
    ("cap:references", f"{REFERENCE}2026-07-27T20:40:00+08:00,{REFERENCE}2026-07-27T20:41:00+08:00",
     True, 1, "not sender,identifier,sent"),
    ("cap:references", None, True, 1, "an Update or Cancel must reference"),
    ("cap:identifier", f"{SENDER},42,2", True, 1, "identifier:"),
    ("cap:sender", "rescue hub", True, 1, "sender:"),
    # Polygons are plain strings to the schema.
    (POLYGON, CLOSED.rsplit(" ", 1)[0] + " 30.250000,119.150000", True, 1, "not closed"),
    # Open and short: the count is the problem named (an open 3-point ring is short either way).
    (POLYGON, CLOSED.rsplit(" ", 1)[0], True, 1, "3 points; a polygon needs at least 4"),
    (POLYGON, "30.200000,119.100000 30.200000,119.200000 30.200000,119.100000", True, 1,
     "3 points; a polygon needs at least 4"),
    (POLYGON, "", True, 1, "0 points"),
    (POLYGON, " ".join(",".join(reversed(p.split(","))) for p in CLOSED.split()), True, 4,
     "not a WGS 84 lat,lon pair"),
    (POLYGON, CLOSED.replace("30.300000,119.200000", "30.300000;119.200000"), True, 1,
     "'30.300000;119.200000' is not a lat,lon pair"),
    (POLYGON, CLOSED.replace("30.300000,119.200000", "35.300000,119.200000"), True, 1,
     "35.3,119.2 lies outside the bounds (119.0, 30.0, 119.5, 30.4)"),
    (POLYGON, CLOSED.replace("30.300000,119.200000", "30.300000,-119.200000"), True, 1,
     "outside the bounds"),
    ("cap:info[2]/cap:language", "zh_CN", False, 1, "info[2]/language: 'zh_CN' is not an RFC"),
    # xs:language takes any 1-8 letters, RFC 5646 a language of 2-3 (or 4-8) letters.
    ("cap:info[2]/cap:language", "e-US", True, 1, "not an RFC 5646 tag"),
    ("cap:info[1]/cap:language", "zh-C", True, 1, "not an RFC 5646 tag"),
])
def test_check_finds_what_the_schema_lets_through(xpath, text, xsd_valid, count, fragment):
    root = produce(BASE)
    element = root.find(xpath, NS)
    assert element is not None
    if text is None:
        element.getparent().remove(element)
    else:
        element.text = text
    assert XSD.validate(root) is xsd_valid, XSD.error_log
    problems = check(etree.tostring(root, xml_declaration=True, encoding="utf-8"),
                     bounds=TOWNSHIP)
    assert len(problems) == count, problems
    assert all(fragment in p for p in problems), problems


def test_check_without_bounds_still_catches_a_latitude_beyond_90():
    # Swapped lon,lat in China puts 119 in the latitude, whatever the bounds.
    swapped = " ".join(",".join(reversed(p.split(","))) for p in CLOSED.split())
    xml = cap_xml(BASE).replace(CLOSED.encode(), swapped.encode())
    problems = check(xml)
    assert len(problems) == 2 * 4 and all("not a WGS 84 lat,lon pair" in p for p in problems)


def test_check_names_a_swap_that_is_still_on_the_globe():
    # West of 90° E (Kashgar, 75.9° E 39.5° N) a swapped pair is a real place, in the Arctic.
    kashgar = (75.8, 39.4, 76.1, 39.6)
    ring = ((75.9, 39.45), (76.0, 39.45), (76.0, 39.55))
    good = cap_xml(message(areas=(CapArea("K1", "Kashgar", (ring,)),)))
    swapped = cap_xml(message(areas=(CapArea("K1", "Kashgar", (tuple((y, x) for x, y in ring),)),)))
    assert check(good, bounds=kashgar) == []
    problems = check(swapped, bounds=kashgar)
    assert len(problems) == 2 * 4 and all("looks like lon,lat (swapped)" in p for p in problems)
    assert problems[0] == ("info[1]/area[1]/polygon[1]: 75.9,39.45 lies outside the bounds; it "
                           "looks like lon,lat (swapped)")
    assert check(swapped) == []  # only bounds can tell


def test_check_says_which_polygon_of_which_info_and_area():
    root = produce(message(areas=(QINGSHAN, SHUIKOU)))
    root.find("cap:info[2]/cap:area[2]/cap:polygon[2]", NS).text = "30.1,119.4 30.12,119.45"
    problems = check(etree.tostring(root), bounds=TOWNSHIP)
    assert problems == ["info[2]/area[2]/polygon[2]: 2 points; a polygon needs at least 4"]


@pytest.mark.parametrize(("old", "new", "bounds", "problem"), [
    (b"<circle>32.9525,-115.5527 0</circle>", b"<circle>32.9525,-115.5527</circle>", None,
     "info[1]/area[1]/circle[1]: '32.9525,-115.5527' is not 'lat,lon radius'"),
    (b"<circle>32.9525,-115.5527 0</circle>", b"<circle>-115.5527,32.9525 0</circle>", None,
     "info[1]/area[1]/circle[1]: -115.5527,32.9525 is not a WGS 84 lat,lon pair"),
    (b"", b"", TOWNSHIP,
     "info[1]/area[1]/circle[1]: 32.9525,-115.5527 lies outside the bounds "
     "(119.0, 30.0, 119.5, 30.4)"),
])
def test_check_reads_circles_too(old, new, bounds, problem):
    source = (STANDARDS / "cap-examples" / "oasis-cap12-A3-earthquake-update.xml").read_bytes()
    assert old in source
    assert check(source.replace(old, new), bounds=bounds) == [problem]


@pytest.mark.parametrize(("xml", "problem"), [
    (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><sent>", "not well-formed XML"),
    (b"", "not well-formed XML"),
    (b"<alert><sent>2026-07-27T21:05:00+08:00</sent></alert>", "not a CAP 1.2 alert: the root "
     "is alert"),
    (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "not a CAP 1.2 alert"),
])
def test_check_refuses_what_is_not_a_cap_alert(xml, problem):
    problems = check(xml)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_check_reports_a_missing_sent():
    root = produce(BASE)
    root.remove(root.find("cap:sent", NS))
    assert check(etree.tostring(root)) == ["sent: missing"]


# --- RFC 5646 language tags -------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "ok"), [
    ("zh-CN", True), ("en-US", True), ("zh-Hans-CN", True), ("es-419", True), ("en", True),
    ("de-CH-1901", True), ("sl-rozaj-biske", True), ("zh-yue-HK", True), ("i-klingon", True),
    ("en-a-bbb-x-a-ccc", True), ("x-whatever", True), ("ZH-cn", True),
    ("zh_CN", False), ("e-US", False), ("zh-C", False), ("", False), ("en-", False),
    ("en--US", False), ("123", False), ("toolonglanguage", False), ("en-US ", False),
    ("zh-CN-x", False),
])
def test_language_tags_are_rfc_5646(tag, ok):
    assert is_language_tag(tag) is ok


# --- response: kind and level -> CAP values ---------------------------------------------------


@pytest.mark.parametrize(("kind", "level", "expected"), [
    # (responseType, urgency, severity, certainty, category)
    ("rainstorm", "blue", ("Monitor", "Expected", "Minor", "Observed", "Met")),
    ("rainstorm", "yellow", ("Monitor", "Expected", "Moderate", "Observed", "Met")),
    ("rainstorm", "orange", ("Monitor", "Immediate", "Severe", "Observed", "Met")),
    ("rainstorm", "red", ("Monitor", "Immediate", "Extreme", "Observed", "Met")),
    # DESIGN §6: 准备转移 -> Prepare / Expected, 立即转移 -> Evacuate / Immediate.
    ("flash_flood", "prepare", ("Prepare", "Expected", "Severe", "Possible", "Met")),
    ("flash_flood", "evacuate", ("Evacuate", "Immediate", "Extreme", "Likely", "Met")),
    ("landslide_rain", "prepare", ("Prepare", "Expected", "Severe", "Possible", "Geo")),
    ("landslide_rain", "evacuate", ("Evacuate", "Immediate", "Extreme", "Likely", "Geo")),
    ("slope_movement", "attention", ("Monitor", "Future", "Moderate", "Observed", "Geo")),
    ("slope_movement", "warning", ("Prepare", "Expected", "Severe", "Observed", "Geo")),
    ("slope_movement", "alarm", ("Evacuate", "Immediate", "Extreme", "Observed", "Geo")),
    ("data", "missing", ("None", "Unknown", "Unknown", "Unknown", "Infra")),
])
def test_response_of_each_kind_and_level(kind, level, expected):
    keys = ("responseType", "urgency", "severity", "certainty", "category")
    assert response(kind, level) == dict(zip(keys, expected, strict=True))
    cleared = response(kind, level, all_clear=True)
    assert cleared == dict(zip(keys, ("AllClear", "Past", "Minor", "Observed", expected[4]),
                               strict=True))
    # And so they are written, in both language blocks.
    root = produce(message(kind=kind, level=level))
    for key, value in zip(keys, expected, strict=True):
        assert texts(root, f"cap:info/cap:{key}") == [value, value]


def test_response_covers_every_level_of_every_kind():
    assert set(cap.RESPONSES) == {(k, lv) for k, levels in LEVELS.items() for lv in levels}


@pytest.mark.parametrize(("kind", "level"), [
    ("tsunami", "red"), ("rainstorm", "evacuate"), ("flash_flood", "alarm"), ("data", "none"),
    ("flash_flood", None),
])
def test_response_refuses_an_unknown_kind_or_level(kind, level):
    with pytest.raises(ValueError, match="unknown kind and level"):
        response(kind, level)


# --- Atom feed (RFC 4287) ---------------------------------------------------------------------

FEED = "https://hub.township.example/api/v1/alerts.atom"
ENTRIES = [
    FeedEntry(f"{SENDER}.42.2", "青山村：准备转移 Qingshan: prepare to evacuate", SENT,
              "https://hub.township.example/api/v1/alerts/42.cap", "山洪 Flash flood"),
    FeedEntry(f"{SENDER}.41.1", "红色暴雨信号 Red rainstorm signal", RAISED,
              "https://hub.township.example/api/v1/alerts/41.cap", "G03 3 h 102 mm"),
]


def feed(entries=ENTRIES, **changes) -> etree._Element:
    args = dict(feed_id=FEED, title="青山镇预警 Qingshan warnings", self_url=FEED, updated=SENT)
    xml = atom_feed(entries, **(args | changes))
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<feed xmlns=")
    return etree.fromstring(xml)


def test_the_feed_has_what_rfc_4287_requires():
    root = feed()
    assert root.tag == f"{{{cap.ATOM_NS}}}feed"
    # §4.1.1: exactly one id, title and updated; an author (the entries have none); a self link.
    for name in ("id", "title", "updated", "author"):
        assert len(root.findall(f"atom:{name}", NS)) == 1, name
    assert texts(root, "atom:id") == [FEED]
    assert texts(root, "atom:title") == ["青山镇预警 Qingshan warnings"]
    assert texts(root, "atom:updated") == ["2026-07-27T21:05:00+08:00"]
    assert texts(root, "atom:author/atom:name") == ["青山镇预警 Qingshan warnings"]
    [self_link] = root.findall("atom:link", NS)
    assert dict(self_link.attrib) == {"rel": "self", "type": "application/atom+xml", "href": FEED}


def test_each_entry_links_its_cap_message():
    entries = feed().findall("atom:entry", NS)
    assert len(entries) == 2
    for element, entry in zip(entries, ENTRIES, strict=True):
        # §4.1.2: one id, title, updated; no content, so a rel="alternate" link.
        assert texts(element, "atom:id") == [entry_id(entry.identifier)]
        assert texts(element, "atom:title") == [entry.title]
        assert texts(element, "atom:updated") == [cap_time(entry.updated)]
        assert texts(element, "atom:summary") == [entry.summary]
        [link] = element.findall("atom:link", NS)
        assert dict(link.attrib) == {"rel": "alternate", "type": "application/cap+xml",
                                     "href": entry.cap_url}
    assert texts(entries[1], "atom:updated") == ["2026-07-27T20:40:00+08:00"]


def test_entry_ids_are_absolute_stable_and_distinct():
    first, second = (entry_id(e.identifier) for e in ENTRIES)
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                        r"[0-9a-f]{12}", first)
    assert first == entry_id(f"{SENDER}.42.2") and first != second


def test_the_feed_can_be_empty_and_names_its_author():
    root = feed([], author="Qingshan Township Emergency Office")
    assert root.findall("atom:entry", NS) == []
    assert texts(root, "atom:author/atom:name") == ["Qingshan Township Emergency Office"]


@pytest.mark.parametrize(("changes", "why"), [
    ({"feed_id": "alerts.atom"}, "feed_id must be an absolute IRI"),
    ({"self_url": "/api/v1/alerts.atom"}, "self_url must be an absolute IRI"),
    ({"updated": NAIVE}, "naive"),
])
def test_a_bad_feed_is_refused(changes, why):
    with pytest.raises(ValueError, match=why):
        feed(**changes)


def test_a_naive_entry_time_is_refused():
    entry = FeedEntry("x.1", "t", NAIVE, "https://hub.township.example/api/v1/alerts/1.cap", "s")
    with pytest.raises(ValueError, match="naive"):
        feed([entry])


# --- purity ------------------------------------------------------------------------------------


def test_cap_imports_only_the_standard_library_and_the_alert_choices():
    tree = ast.parse(Path(cap.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "math", "re", "uuid", "xml.etree.ElementTree",
                        "collections.abc", "dataclasses", "datetime", "alerts.choices"}
