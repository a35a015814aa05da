"""The details the positions intake stores with a dead letter (dispatch.positions.fixes writes
them in English), in the office's words on the dead-letter page. Telemetry's page keeps the
readings' own and lets a package downstream of it that writes into the same store add its
(telemetry.pages.add_dead_letter_details; DESIGN §2: no upward import). Each is a JavaScript
pattern with named groups and its words with {group} holes; a {problem} group is put in words
through telemetry's DEAD_LETTER_PROBLEMS. tests/positions/test_letter_words.py checks that every
form of detail the decoders write matches one, and that each pattern is used."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from telemetry.pages import add_dead_letter_details

DETAILS = (
    (r"^lat (?<lat>\S+), lon (?<lon>\S+) look swapped: the other way round they lie in the "
     r"township$",
     _l("latitude {lat} and longitude {lon} look swapped: the other way round they lie in the "
        "township")),
    (r"^lat (?<lat>\S+) is outside -90\.\.90$", _l("latitude {lat} is outside -90 to 90")),
    (r"^lon (?<lon>\S+) is outside -180\.\.180$", _l("longitude {lon} is outside -180 to 180")),
    (r"^0, 0 is a phone without a fix$",
     _l("0, 0: the phone had no fix yet (it sends zeros)")),
    (r"^lat and lon must be finite numbers$",
     _l("latitude and longitude must be finite numbers")),
    (r"^lat and lon are required$", _l("latitude and longitude are missing")),
    (r"^location must be lat,lon$", _l("“location” must be latitude,longitude")),
    (r"^location must be an object$", _l("“location” must be a JSON object")),
    (r"^send an object with lat, lon and ts$",
     _l("send a JSON object with lat, lon and ts")),
    (r"^_type is required \(an OwnTracks message\)$",
     _l("_type is missing (not an OwnTracks message)")),
    (r"^event must be enter or leave$", _l("the event must be enter or leave")),
    (r"^desc must name the region \(1-200 characters\)$",
     _l("desc must name the region (1-200 characters)")),
    (r"^(?<count>\d+) locations > (?<limit>\d+)$",
     _l("{count} locations, more than the limit of {limit}")),
    (r"^(?<ts>.+) looks like milliseconds; OwnTracks sends epoch seconds$",
     _l("{ts} looks like milliseconds; OwnTracks sends seconds since 1970")),
    (r"^(?<name>\S+) must be epoch seconds \(a number\)$",
     _l("{name} must be seconds since 1970 (a number)")),
    (r"^(?<name>\S+) must be an ISO 8601 time$", _l("{name} must be an ISO 8601 time")),
    (r"^(?<name>\S+) must be an RFC 3339 time with an offset$",
     _l("{name} must be an RFC 3339 time with an offset")),
    (r"^(?<name>\S+) is too long to be a time$", _l("{name} is too long to be a time")),
    (r"^(?<ts>.+) is more than (?<seconds>\d+) s ahead of the hub clock$",
     _l("{ts} is more than {seconds} s ahead of the hub's clock")),
    (r"^(?<ts>.+) is older than (?<days>\d+) days$", _l("{ts} is more than {days} days old")),
    (r"^(?<ts>.+) is (?:after|past) the year 9999(?: in UTC)?$",
     _l("{ts} is after the year 9999")),
    (r"^(?<ts>.+) is before the year 1 in UTC$", _l("{ts} is before the year 1")),
    (r"^(?<ts>.+) is not a time$", _l("{ts} is not a time")),
    (r"^(?<name>\S+) (?<ts>'.*'): (?<problem>.+)$", _l("the time {ts} is not valid: {problem}")),
    (r"^(?<name>\S+) is required$", _l("{name} is missing")),
    (r"^(?<name>\S+) must be a number$", _l("{name} must be a number")),
)


def init_app(app: Flask) -> None:
    """Give the positions' dead letters their words on the dead-letter page."""
    add_dead_letter_details(app, DETAILS)
