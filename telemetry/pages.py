"""Office pages of telemetry: sensors, dead letters and one sensor's plots.

Pages are server-rendered Jinja with small ES modules (DESIGN §7); they read and change data
only through the JSON API of `telemetry.views`, so the API is the one place rules live.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from dispatch.core import auth
from dispatch.core.choices import OFFICE_ROLES, Role
from dispatch.core.db import db
from dispatch.core.errors import NotFound
from dispatch.core.models import Gateway
from telemetry.choices import DEFAULT_RANGES, LABELS, UNITS, SensorKind

bp = Blueprint("telemetry_pages", __name__, template_folder="templates",
               static_folder="static", static_url_path="/static/telemetry")


@bp.get("/sensors")
@auth.signed_in
def sensors_page():
    """The sensor registry: every sensor with its last value; editors register, edit, retire
    and import here."""
    from dispatch.core.choices import EDITORS

    kinds = {str(k): {"label": str(LABELS[k]), "units": list(UNITS[k]),
                      "range": list(DEFAULT_RANGES[k])} for k in SensorKind}
    # There is no gateways API yet: the register form's choices are rendered with the page.
    gateways = db.session.scalars(select(Gateway.code).where(Gateway.active.is_(True))
                                  .order_by(Gateway.code)).all()
    return render_template("sensors.html", kinds=kinds, gateways=gateways,
                           can_edit=auth.current_principal().role in EDITORS)


# --- dead letters ------------------------------------------------------------------------------

# The ingest reasons of DESIGN §5 in the office's words (the page shows the code beside them).
DEAD_LETTER_REASONS = {
    "bad_json": _l("Not valid JSON"),
    "bad_encoding": _l("Not UTF-8 text"),
    "schema": _l("Wrong fields or types"),
    "bad_timestamp": _l("Bad timestamp"),
    "not_finite": _l("Value is not a finite number"),
    "unknown_sensor": _l("Unknown sensor"),
    "foreign_sensor": _l("Sensor of another gateway"),
    "retired_sensor": _l("Retired sensor"),
    "unit_mismatch": _l("Wrong unit"),
    "out_of_range": _l("Outside the instrument's range"),
    "too_old": _l("Too old"),
    "future": _l("Time in the future"),
    "too_large": _l("Too large"),
    "conflict": _l("Conflicts with a stored value"),
    "swapped": _l("Latitude and longitude swapped"),
    "over_quota": _l("Over the gateway's quota (payloads not kept)"),
}

# The details ingest stores with a dead letter (English, written by telemetry.decode and
# telemetry.ingest), in the office's words: a JavaScript pattern with named groups for each
# form of detail, and its translation with {group} placeholders. The page shows the stored
# text itself only for a detail no pattern knows. tests/telemetry/test_dead_letter_words.py
# checks that every detail ingest writes matches one.
DEAD_LETTER_DETAILS = (
    (r"^(?<name>NaN|Infinity|-Infinity) is not JSON \(RFC 8259 §6\)$",
     _l("{name} is not allowed in JSON (RFC 8259 §6)")),
    (r"^duplicate key (?<key>.+)$", _l("the key {key} appears twice")),
    (r"^not UTF-8: .+ at byte (?<byte>\d+)$",
     _l("not UTF-8 text: an invalid byte at position {byte}")),
    (r"^not JSON: (?<problem>.+) at line (?<line>\d+) column (?<column>\d+)$",
     _l("not JSON: {problem} at line {line}, column {column}")),
    (r"^nested more than (?<limit>\d+) deep$", _l("nested more than {limit} levels deep")),
    (r"^sensor must be a code of 1-64 characters$",
     _l("the sensor must be a code of 1-64 characters")),
    (r"^value must be a number \(not a string, boolean or null\)$",
     _l("the value must be a number (not text, true/false or null)")),
    (r"^unit must be text$", _l("the unit must be text")),
    (r"^seq must be a whole number from 0 to 2\^63-1$",
     _l("seq must be a whole number from 0 to 2^63-1")),
    (r"^ts is required$", _l("the time (ts) is missing")),
    (r"^ts must be an RFC 3339 string with an offset$",
     _l("the time (ts) must be RFC 3339 text with an offset")),
    (r"^ts must be an RFC 3339 string, not an epoch number$",
     _l("the time (ts) must be RFC 3339 text, not a number of seconds")),
    (r"^value is not a finite number$", _l("the value is not a finite number")),
    (r"^a reading must be an object$", _l("a reading must be a JSON object")),
    (r"^the message must be a JSON object$", _l("the message must be a JSON object")),
    (r"^readings must be a list$", _l("“readings” must be a list")),
    (r"^ts (?<ts>\S+) is more than (?<ahead>\S+) ahead of the hub clock$",
     _l("the time {ts} is more than {ahead} ahead of the hub's clock")),
    (r"^ts (?<ts>\S+) is after the year 9999 in UTC$",
     _l("the time {ts} is after the year 9999 in UTC")),
    (r"^ts (?<ts>\S+) is before the year 1 in UTC$",
     _l("the time {ts} is before the year 1 in UTC")),
    (r"^ts (?<ts>\S+) is older than (?<days>\d+) days$",
     _l("the time {ts} is more than {days} days old")),
    (r"^ts (?<ts>.*?): (?<problem>(?:not YYYY|offset |outside |day |month |hour |minute "
     r"|second |year ).*)$", _l("the time {ts} is not valid: {problem}")),
    (r"^(?<size>\d+) bytes > (?<limit>\d+)$",
     _l("{size} bytes, more than the limit of {limit}")),
    (r"^(?<count>\d+) readings > (?<limit>\d+)$",
     _l("{count} readings, more than the limit of {limit}")),
    (r"^no active gateway (?<gateway>.+)$",
     _l("no active gateway {gateway} (unknown or disabled)")),
    (r"^(?<value>\S+) outside \[(?<low>[^,]+), (?<high>[^\]]+)\] (?<unit>.*)$",
     _l("{value} is outside the range {low} to {high} {unit}")),
    (r"^unit (?<unit>.+) but (?<sensor>\S+) reports in (?<expected>.+)$",
     _l("unit {unit}, but {sensor} reports in {expected}")),
    (r"^(?<sensor>.+) belongs to another gateway$", _l("{sensor} belongs to another gateway")),
    (r"^stored value (?<stored>\S+) stands, got (?<value>\S+)$",
     _l("the stored value {stored} stands; this reading has {value}")),
    (r"^unknown_sensor: (?<sensor>.+)$", _l("no sensor {sensor} is registered")),
    (r"^retired_sensor: (?<sensor>.+)$", _l("sensor {sensor} is retired")),
    (r"^over the dead-letter quota \((?<letters>\d+) letters or (?<bytes>\d+) bytes a "
     r"minute\): payloads not kept; (?<counted>.*)$",
     _l("over the dead-letter quota ({letters} letters or {bytes} bytes a minute): the "
        "payloads were not kept; {counted}")),
)

# The parts of a detail that come from Python's JSON reader and timestamp parser (the
# {problem} above), by how they begin.
DEAD_LETTER_PROBLEMS = {
    "Expecting value": _l("a value was expected"),
    "Extra data": _l("more data after the end"),
    "Expecting property name enclosed in double quotes":
        _l("a key in double quotes was expected"),
    "Expecting ':' delimiter": _l("“:” was expected"),
    "Expecting ',' delimiter": _l("“,” was expected"),
    "Unterminated string starting at": _l("a text is not closed"),
    "Invalid control character": _l("a control character inside a text"),
    "Invalid \\escape": _l("an invalid \\ escape"),
    "Invalid \\uXXXX escape": _l("an invalid \\u escape"),
    "Illegal trailing comma": _l("a comma before the end"),
    "not YYYY-MM-DDTHH:MM:SS": _l("not in the form YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM"),
    "offset out of range": _l("the offset is out of range (±23:59 at most)"),
    "outside the years 1-9999": _l("outside the years 1-9999 in UTC"),
    "day is out of range for month": _l("no such day in that month"),
    "month must be in": _l("no such month"),
    "hour must be in": _l("no such hour"),
    "minute must be in": _l("no such minute"),
    "second must be in": _l("no such second"),
    "year": _l("no such year"),
}


def add_dead_letter_details(app, details) -> None:
    """Let a package downstream of telemetry that writes into the dead-letter store (the
    positions intake) give its details words on the page: (JavaScript pattern with named groups,
    lazy words with {group} holes) pairs, tried after the readings' own."""
    app.extensions.setdefault("rescuehub.dead_letter_details", []).extend(details)


def dead_letter_details() -> tuple:
    """Every (pattern, words) pair of the app: the readings' first, then those added."""
    from flask import current_app

    return (*DEAD_LETTER_DETAILS,
            *current_app.extensions.get("rescuehub.dead_letter_details", ()))


@bp.get("/dead-letters")
@auth.roles(*OFFICE_ROLES)
def dead_letters_page():
    """The dead-letter office: rejected messages listed, filtered, shown safely and resolved."""
    role = auth.current_principal().role
    return render_template("dead_letters.html", reasons=DEAD_LETTER_REASONS,
                           details=[[pattern, str(words)] for pattern, words in
                                    dead_letter_details()],
                           problems={k: str(v) for k, v in DEAD_LETTER_PROBLEMS.items()},
                           can_act=role in {Role.COMMANDER, Role.DISPATCHER})


# --- one sensor: header, plots over a chosen range, sums, live ------------------------------

# Time range buttons: key, hours, and the series they read (raw reports or hourly roll-ups).
SENSOR_RANGES = (("6h", 6, "readings"), ("24h", 24, "readings"), ("3d", 72, "hourly"),
                 ("7d", 168, "hourly"))


def local_name(row) -> str:
    """A place's name in the page's language: the pinyin on English pages where the record has
    one, the Chinese name otherwise."""
    pinyin = getattr(row, "name_pinyin", "") or ""
    if pinyin and get_locale() is not None and get_locale().language != "zh":
        return pinyin
    return row.name_zh or row.code


def _place(model, row_id: int | None) -> dict | None:
    """Code and name of the village or hazard zone a sensor watches."""
    if row_id is None:
        return None
    row = db.session.get(model, row_id)
    return None if row is None else {"code": row.code, "name": local_name(row)}


@bp.get("/sensors/<code>")
@auth.signed_in
def sensor_page(code: str):
    """One sensor: its last value and QC flag, plots of a time range, rolling sums, live."""
    from maps.models import HazardZone, Village
    from telemetry import service
    from telemetry.choices import LABELS

    s = db.session
    try:
        sensor = service.find(s, code)
    except NotFound:
        raise NotFound(_("There is no sensor with the code %(code)s.", code=code)) from None
    described = service.describe(s, sensor)
    return render_template(
        "sensor.html", sensor=described, kind_label=LABELS.get(sensor.kind, sensor.kind),
        village=_place(Village, sensor.village_id), hazard=_place(HazardZone, sensor.hazard_id),
        ranges=SENSOR_RANGES)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
