"""CAP 1.2 export, pure: an alert's CAP messages, their Atom feed, and the checks that the schema
cannot make (DESIGN §5 "Alerts (contract)", §6 "Alert lifecycle").

Written with the standard library's ElementTree; no Flask, no database. The element order of every
message follows the sequence of the OASIS schema (cap-v1.2.xsd) exactly.

Format (CAP 1.2 §3.3.2): every time is written in China Standard Time, "2026-07-27T21:05:00+08:00":
whole seconds (fractions are dropped, not rounded, so a message and a later `references` to it
write the same string), a numeric offset, never "Z". Polygons (§3.2.4) are "lat,lon" pairs in
WGS 84, rounded to 6 decimals (~0.1 m), space-separated, the first pair repeated at the end; a
village stored as a multipolygon gives one <polygon> per exterior ring inside its one <area>
(CAP polygons have no holes, so interior rings are not exported).

Besides the standard fields each <info> carries <eventCode> `kind` = the alert's kind and
<parameter> `level` = its level, so a receiver can act on them without parsing prose; each
<area> carries <geocode> `village` = the village's code.

`check` finds what the schema lets through or cannot see: `24:00:00` (a valid xs:dateTime, not a
real time), times inside `references` (a plain string to the schema: 30 February, fractions,
missing or alphabetic offsets), polygons that are open, too short, or lie outside the township (a
swapped `lon,lat` lands far from it; to the schema a polygon is any string), references that are
not "sender,identifier,sent" triples, and language tags that are not RFC 5646 (`e-US` fits
xs:language; `zh_CN` is a locale name, not a tag). It also names the time faults the schema
rejects only with a pattern error, so a failed export says what is wrong.
"""

from __future__ import annotations

import math
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from alerts.choices import LEVELS, AlertKind

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"

# China Standard Time: the township's clock and the offset every written time carries.
CST = timezone(timedelta(hours=8), "CST")

# Statuses and message types the hub writes (CAP 1.2 §3.2.1); Ack and Error are not produced.
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel")

# <eventCode>, <parameter> and <geocode> domains (valueName) of the hub's own codes.
EVENT_CODE_NAME = "kind"
LEVEL_PARAMETER_NAME = "level"
GEOCODE_NAME = "village"

# Coordinates are written to 6 decimals (~0.11 m of latitude).
DECIMALS = 6


@dataclass(frozen=True)
class CapArea:
    """One affected village: its code, its areaDesc and its exterior rings as (lon, lat)."""

    code: str
    description: str
    rings: tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True)
class CapInfo:
    """One language block of a message (language is an RFC 5646 tag: zh-CN, en-US)."""

    language: str
    event: str
    headline: str
    description: str
    instruction: str
    sender_name: str = ""


@dataclass(frozen=True)
class CapReference:
    """An earlier message this one refers to."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapMessage:
    """One CAP message of an alert: Alert, then Updates, or a Cancel (DESIGN §5)."""

    sender: str
    identifier: str
    sent: datetime
    msg_type: str
    status: str
    kind: str
    level: str
    all_clear: bool = False
    references: tuple[CapReference, ...] = ()
    infos: tuple[CapInfo, ...] = ()
    areas: tuple[CapArea, ...] = ()
    expires: datetime | None = None
    web: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class FeedEntry:
    """One published CAP message in the Atom feed."""

    identifier: str
    title: str
    updated: datetime
    cap_url: str
    summary: str


# --- response: kind and level -> CAP's responseType, urgency, severity, certainty, category ----

# Category (CAP 1.2 §3.2.2): "Met - Meteorological (inc. flood)", "Geo - Geophysical (inc.
# landslide)". A flash flood is a flood raised on rainfall, so Met, as the standard files floods;
# both landslide kinds are Geo. A data alert is a gap in the township's gauge network, i.e. its
# monitoring infrastructure ("Infra - Utility, telecommunication, other non-transport
# infrastructure"), not a hazard itself.
CATEGORIES = {
    AlertKind.RAINSTORM: "Met",
    AlertKind.FLASH_FLOOD: "Met",
    AlertKind.LANDSLIDE_RAIN: "Geo",
    AlertKind.SLOPE_MOVEMENT: "Geo",
    AlertKind.DATA: "Infra",
}

# (responseType, urgency, severity, certainty) per kind and level (CAP 1.2 §3.2.2 definitions).
# - Rainstorm signals are public weather signals that set no village level (DESIGN §5): the
#   action they ask is to follow the warnings (Monitor); severity climbs with the CMA colour;
#   they are computed on observed sums (Observed); blue and yellow are hours of rain (action
#   within the hour: Expected), orange and red are 50 and 100 mm in 3 h (Immediate).
# - Flash flood and landslide: 准备转移 is Prepare / Expected, 立即转移 Evacuate / Immediate
#   (DESIGN §6). The flood or slide itself is not observed but foreseen from rain: critical
#   rainfall for prepare is reached when it is Possible (p <= ~50 %), for evacuate when Likely;
#   the rainfall landslide thresholds follow the same split (Guzzetti 2008 is a lower bound,
#   Caine 1980 a higher one).
# - Slope movement is measured by the sensors (Observed); attention asks to watch (Monitor,
#   Future), warning to prepare (Expected), alarm to leave (Immediate), matching the village
#   warning levels of DESIGN §5 (warning -> prepare, alarm -> evacuate).
# - Missing data: nothing for the public to do (None) and no known hazard (Unknown).
RESPONSES: dict[tuple[str, str], tuple[str, str, str, str]] = {
    (AlertKind.RAINSTORM, "blue"): ("Monitor", "Expected", "Minor", "Observed"),
    (AlertKind.RAINSTORM, "yellow"): ("Monitor", "Expected", "Moderate", "Observed"),
    (AlertKind.RAINSTORM, "orange"): ("Monitor", "Immediate", "Severe", "Observed"),
    (AlertKind.RAINSTORM, "red"): ("Monitor", "Immediate", "Extreme", "Observed"),
    (AlertKind.FLASH_FLOOD, "prepare"): ("Prepare", "Expected", "Severe", "Possible"),
    (AlertKind.FLASH_FLOOD, "evacuate"): ("Evacuate", "Immediate", "Extreme", "Likely"),
    (AlertKind.LANDSLIDE_RAIN, "prepare"): ("Prepare", "Expected", "Severe", "Possible"),
    (AlertKind.LANDSLIDE_RAIN, "evacuate"): ("Evacuate", "Immediate", "Extreme", "Likely"),
    (AlertKind.SLOPE_MOVEMENT, "attention"): ("Monitor", "Future", "Moderate", "Observed"),
    (AlertKind.SLOPE_MOVEMENT, "warning"): ("Prepare", "Expected", "Severe", "Observed"),
    (AlertKind.SLOPE_MOVEMENT, "alarm"): ("Evacuate", "Immediate", "Extreme", "Observed"),
    (AlertKind.DATA, "missing"): ("None", "Unknown", "Unknown", "Unknown"),
}

# A cleared alert (DESIGN §6: an Update with AllClear): no action is needed any more (Past), the
# remaining threat is minimal (Minor), and the all-clear itself was observed (the condition stayed
# below its lowest level for the hold time, or a person saw it).
ALL_CLEAR = ("AllClear", "Past", "Minor", "Observed")


def response(kind: str, level: str, all_clear: bool = False) -> dict:
    """CAP responseType, urgency, severity, certainty and category for an alert's kind and level."""
    if kind not in LEVELS or level not in LEVELS[kind]:
        raise ValueError(f"unknown kind and level: {kind!r}, {level!r}")
    response_type, urgency, severity, certainty = ALL_CLEAR if all_clear else RESPONSES[kind, level]
    return {"responseType": response_type, "urgency": urgency, "severity": severity,
            "certainty": certainty, "category": CATEGORIES[kind]}


# --- RFC 5646 language tags (well-formed, §2.1) ------------------------------------------------

_LANGTAG = (
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language, up to 3 extlangs
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
)
_LANGUAGE_TAG = re.compile(rf"{_LANGTAG}|x(?:-[a-z0-9]{{1,8}})+", re.IGNORECASE)
# RFC 5646 §2.1 "irregular" grandfathered tags, which the grammar above does not produce.
_IRREGULAR = frozenset({
    "en-gb-oed", "i-ami", "i-bnn", "i-default", "i-enochian", "i-hak", "i-klingon", "i-lux",
    "i-mingo", "i-navajo", "i-pwn", "i-tao", "i-tay", "i-tsu", "sgn-be-fr", "sgn-be-nl",
    "sgn-ch-de",
})


def is_language_tag(tag: str) -> bool:
    """Whether `tag` is a well-formed RFC 5646 language tag (zh-CN yes, zh_CN no)."""
    return bool(_LANGUAGE_TAG.fullmatch(tag)) or tag.lower() in _IRREGULAR


# --- writing -----------------------------------------------------------------------------------


def cap_time(ts: datetime) -> str:
    """A CAP 1.2 §3.3.2 dateTime in China Standard Time, whole seconds (…T21:05:00+08:00)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"CAP times need an offset: {ts!r} is naive")
    return ts.astimezone(CST).replace(microsecond=0).isoformat()


# CAP 1.2 §3.2.1: sender and identifier "MUST NOT include spaces, commas or restricted characters
# (< and &)": they are the fields of a `references` triple.
_BAD_ID_CHARS = re.compile(r"[\s,<&]")


def _check_id(what: str, value: str) -> None:
    if not value or _BAD_ID_CHARS.search(value):
        raise ValueError(f"{what} must be non-empty without spaces, commas, < or &: {value!r}")


def _coordinate(value: float) -> str:
    return f"{round(value, DECIMALS):.{DECIMALS}f}"


def _polygon(ring: Sequence[tuple[float, float]]) -> str:
    """A stored (lon, lat) ring as CAP "lat,lon ..." pairs, closed on its first point."""
    points = []
    for lon, lat in ring:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"coordinates must be finite: {(lon, lat)!r}")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"not a WGS 84 (lon, lat) pair: {(lon, lat)!r}")
        points.append(f"{_coordinate(lat)},{_coordinate(lon)}")
    if points and points[0] != points[-1]:
        points.append(points[0])
    # §3.2.4: at least 4 pairs with the first and last the same, i.e. 3 distinct corners.
    if len(set(points)) < 3:
        raise ValueError(f"a polygon needs at least 3 distinct points: {list(ring)!r}")
    return " ".join(points)


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _pair(parent: ET.Element, tag: str, name: str, value: str) -> None:
    element = ET.SubElement(parent, tag)
    _sub(element, "valueName", name)
    _sub(element, "value", value)


def _area(parent: ET.Element, area: CapArea) -> None:
    element = ET.SubElement(parent, "area")
    _sub(element, "areaDesc", area.description)
    for ring in area.rings:
        _sub(element, "polygon", _polygon(ring))
    _pair(element, "geocode", GEOCODE_NAME, area.code)


def _info(parent: ET.Element, message: CapMessage, info: CapInfo, fields: dict) -> None:
    # Children in the order of the XSD's info sequence.
    element = ET.SubElement(parent, "info")
    _sub(element, "language", info.language)
    _sub(element, "category", fields["category"])
    _sub(element, "event", info.event)
    for name in ("responseType", "urgency", "severity", "certainty"):
        _sub(element, name, fields[name])
    _pair(element, "eventCode", EVENT_CODE_NAME, message.kind)
    if message.expires is not None:
        _sub(element, "expires", cap_time(message.expires))
    _sub(element, "senderName", info.sender_name or message.sender)
    _sub(element, "headline", info.headline)
    _sub(element, "description", info.description)
    _sub(element, "instruction", info.instruction)
    if message.web:
        _sub(element, "web", message.web)
    _pair(element, "parameter", LEVEL_PARAMETER_NAME, message.level)
    for area in message.areas:
        _area(element, area)


def _validate(message: CapMessage) -> None:
    if message.msg_type not in MSG_TYPES:
        raise ValueError(f"msg_type must be one of {MSG_TYPES}: {message.msg_type!r}")
    if message.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}: {message.status!r}")
    if message.msg_type in ("Update", "Cancel") and not message.references:
        # §3.2.1: an Update or Cancel supersedes "the earlier message(s) identified in references".
        raise ValueError(f"an {message.msg_type} must reference the message it follows")
    if message.all_clear and message.msg_type != "Update":
        raise ValueError("an all-clear is an Update (DESIGN §6)")
    _check_id("sender", message.sender)
    _check_id("identifier", message.identifier)
    for ref in message.references:
        _check_id("referenced sender", ref.sender)
        _check_id("referenced identifier", ref.identifier)
    for info in message.infos:
        if not is_language_tag(info.language):
            raise ValueError(f"not an RFC 5646 language tag: {info.language!r}")


def cap_xml(message: CapMessage) -> bytes:
    """The message as CAP 1.2 XML (UTF-8, with declaration), elements in the XSD's order."""
    _validate(message)
    fields = response(message.kind, message.level, message.all_clear)
    # The default namespace as a plain attribute: ElementTree's register_namespace is global.
    root = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(root, "identifier", message.identifier)
    _sub(root, "sender", message.sender)
    _sub(root, "sent", cap_time(message.sent))
    _sub(root, "status", message.status)
    _sub(root, "msgType", message.msg_type)
    _sub(root, "scope", "Public")
    if message.note:
        _sub(root, "note", message.note)
    if message.references:
        # §3.2.1: "sender,identifier,sent" triples separated by whitespace.
        _sub(root, "references", " ".join(f"{r.sender},{r.identifier},{cap_time(r.sent)}"
                                          for r in message.references))
    for info in message.infos:
        _info(root, message, info, fields)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- checking ----------------------------------------------------------------------------------

_NS = {"cap": CAP_NS}
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_PAIR = re.compile(rf"({_NUMBER}),({_NUMBER})")


def _time_problem(text: str) -> str | None:
    """Why a CAP dateTime is not one (CAP 1.2 §3.3.2), or None."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return f"{text!r} is not a dateTime YYYY-MM-DDThh:mm:ss+hh:mm"
    *parts, fraction, offset = match.groups()
    if fraction:
        return f"{text!r} has a fraction of a second"
    if offset is None:
        return f"{text!r} has no time-zone offset"
    if offset == "Z":
        return f"{text!r} uses Z; CAP 1.2 wants a numeric offset (-00:00 for UTC)"
    if offset == "+00:00":
        return f"{text!r}: CAP 1.2 writes UTC as -00:00"
    hours, minutes = int(offset[1:3]), int(offset[4:])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        return f"{text!r} has an offset beyond ±14:00"
    try:
        datetime(*map(int, parts))
    except ValueError as error:
        return f"{text!r} is not a real time ({error})"
    return None


def _parse_time(text: str) -> datetime | None:
    if _time_problem(text) is not None:
        return None
    return datetime.fromisoformat(text.strip())


def _point_problem(lat: float, lon: float, bounds: tuple | None) -> str | None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"{lat},{lon} is not a WGS 84 lat,lon pair"
    if bounds is None:
        return None
    min_lon, min_lat, max_lon, max_lat = bounds
    if min_lat <= lat <= max_lat and min_lon <= lon <= max_lon:
        return None
    if min_lat <= lon <= max_lat and min_lon <= lat <= max_lon:
        return f"{lat},{lon} lies outside the bounds; it looks like lon,lat (swapped)"
    return f"{lat},{lon} lies outside the bounds {bounds}"


def _points(text: str) -> tuple[list[tuple[float, float]], list[str]]:
    """(lat, lon) pairs of a whitespace-separated "lat,lon" list, and the tokens that are not."""
    points, bad = [], []
    for token in text.split():
        match = _PAIR.fullmatch(token)
        if match is None:
            bad.append(token)
        else:
            points.append((float(match[1]), float(match[2])))
    return points, bad


def _polygon_problems(where: str, text: str, bounds: tuple | None) -> list[str]:
    points, bad = _points(text)
    problems = [f"{where}: {token!r} is not a lat,lon pair" for token in bad]
    if len(points) + len(bad) < 4:
        problems.append(f"{where}: {len(points) + len(bad)} points; a polygon needs at least 4")
    elif points and points[0] != points[-1]:
        problems.append(f"{where}: not closed (the last point must repeat the first)")
    problems += [f"{where}: {why}" for lat, lon in points
                 if (why := _point_problem(lat, lon, bounds))]
    return problems


def _circle_problems(where: str, text: str, bounds: tuple | None) -> list[str]:
    # §3.2.4: "lat,lon radius" with the radius in kilometres.
    parts = text.split()
    match = _PAIR.fullmatch(parts[0]) if len(parts) == 2 else None
    if match is None or re.fullmatch(_NUMBER, parts[1]) is None:
        return [f"{where}: {text!r} is not 'lat,lon radius'"]
    why = _point_problem(float(match[1]), float(match[2]), bounds)
    return [f"{where}: {why}"] if why else []


def _reference_problems(text: str) -> list[str]:
    problems = []
    for triple in text.split():
        fields = triple.split(",")
        if len(fields) != 3 or not fields[0] or not fields[1]:
            problems.append(f"references: {triple!r} is not sender,identifier,sent")
        elif (why := _time_problem(fields[2])) is not None:
            problems.append(f"references: {why}")
    return problems


def _area_problems(where: str, area: ET.Element, bounds: tuple | None) -> list[str]:
    problems = []
    for j, polygon in enumerate(area.findall("cap:polygon", _NS), 1):
        problems += _polygon_problems(f"{where}/polygon[{j}]", polygon.text or "", bounds)
    for j, circle in enumerate(area.findall("cap:circle", _NS), 1):
        problems += _circle_problems(f"{where}/circle[{j}]", circle.text or "", bounds)
    return problems


def _info_problems(where: str, info: ET.Element, sent: datetime | None,
                   bounds: tuple | None) -> list[str]:
    problems = []
    language = info.findtext("cap:language", None, _NS)
    if language is not None and not is_language_tag(language.strip()):
        problems.append(f"{where}/language: {language!r} is not an RFC 5646 tag (zh-CN, en-US)")
    for name in ("effective", "onset", "expires"):
        text = info.findtext(f"cap:{name}", None, _NS)
        if text is not None and (why := _time_problem(text)):
            problems.append(f"{where}/{name}: {why}")
    expires = info.findtext("cap:expires", None, _NS)
    expires_at = _parse_time(expires) if expires is not None else None
    if sent is not None and expires_at is not None and expires_at < sent:
        problems.append(f"{where}/expires: {expires.strip()} is before sent")
    for k, area in enumerate(info.findall("cap:area", _NS), 1):
        problems += _area_problems(f"{where}/area[{k}]", area, bounds)
    return problems



def _header_problems(root: ET.Element) -> list[str]:
    problems = []
    for name in ("identifier", "sender"):
        value = root.findtext(f"cap:{name}", "", _NS)
        if not value or _BAD_ID_CHARS.search(value):
            problems.append(f"{name}: {value!r} is empty or has spaces, commas, < or &")
    sent = root.findtext("cap:sent", None, _NS)
    if sent is None:
        problems.append("sent: missing")
    elif why := _time_problem(sent):
        problems.append(f"sent: {why}")
    references = root.findtext("cap:references", None, _NS)
    if references is not None:
        problems += _reference_problems(references)
    elif root.findtext("cap:msgType", "", _NS).strip() in ("Update", "Cancel"):
        problems.append("references: an Update or Cancel must reference earlier messages")
    return problems


def check(xml: bytes, *, bounds: tuple[float, float, float, float] | None = None) -> list[str]:
    """Problems of a CAP 1.2 message beyond its schema (DESIGN §6); bounds are (min_lon, min_lat,
    max_lon, max_lat) that every polygon point must lie in."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        return [f"not well-formed XML: {error}"]
    if root.tag != f"{{{CAP_NS}}}alert":
        return [f"not a CAP 1.2 alert: the root is {root.tag}"]
    problems = _header_problems(root)
    sent_text = root.findtext("cap:sent", None, _NS)
    sent = _parse_time(sent_text) if sent_text is not None else None
    for i, info in enumerate(root.findall("cap:info", _NS), 1):
        problems += _info_problems(f"info[{i}]", info, sent, bounds)
    return problems


# --- Atom (RFC 4287) ---------------------------------------------------------------------------

# Entry ids must be absolute IRIs (RFC 4287 §4.2.6) and never change; a CAP identifier is neither
# a URI nor globally scoped by itself, so an entry's id is a name-based UUID of it (RFC 4122 §4.3).
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_ENTRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CAP_NS)


def entry_id(identifier: str) -> str:
    """The Atom id of the entry for a CAP message: urn:uuid, the same for the same identifier."""
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, identifier)}"


def _link(parent: ET.Element, rel: str, media_type: str, href: str) -> None:
    ET.SubElement(parent, "link", {"rel": rel, "type": media_type, "href": href})


def atom_feed(entries: Sequence[FeedEntry], *, feed_id: str, title: str, self_url: str,
              updated: datetime, author: str | None = None) -> bytes:
    """An RFC 4287 Atom feed of published CAP messages, each entry linking its .cap."""
    # §4.2.6: the feed's id is an absolute IRI; §4.2.7.1: so is the self link here (the feed is
    # fetched and cached by readers that need its full address).
    for what, iri in (("feed_id", feed_id), ("self_url", self_url)):
        if not _ABSOLUTE_IRI.match(iri):
            raise ValueError(f"{what} must be an absolute IRI: {iri!r}")
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "id", feed_id)
    _sub(root, "title", title)
    _sub(root, "updated", cap_time(updated))
    # §4.1.1: a feed whose entries have no author must have one itself.
    _sub(ET.SubElement(root, "author"), "name", author or title)
    _link(root, "self", "application/atom+xml", self_url)
    for entry in entries:
        element = ET.SubElement(root, "entry")
        _sub(element, "id", entry_id(entry.identifier))
        _sub(element, "title", entry.title)
        _sub(element, "updated", cap_time(entry.updated))
        _link(element, "alternate", CAP_MEDIA_TYPE, entry.cap_url)
        _sub(element, "summary", entry.summary)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
