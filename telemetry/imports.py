"""Import sensors from CSV or GeoJSON (dispatch.core.tabular): every bad row reported with its
line (CSV) or feature number (GeoJSON), and nothing written unless every row is good.

Each row becomes the body of `POST /api/v1/sensors` and goes through `telemetry.service.register`,
so an import follows the same rules and leaves the same audit records as registering by hand.
"""

from __future__ import annotations

import math
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.core import tabular
from dispatch.core.errors import HubError
from dispatch.core.models import Gateway
from dispatch.core.tabular import ImportRejected, RowError, RowProblem
from maps.models import HazardZone, Village
from telemetry import service
from telemetry.models import Sensor

# A township has tens of sensors, a prefecture a few thousand: both fit well inside these.
MAX_BYTES = 512 * 1024
MAX_ROWS = 5_000

REQUIRED = ("code", "kind", "unit", "gateway", "lon", "lat")
OPTIONAL = ("name", "village", "hazard", "range_min", "range_max", "range", "interval_s")
NUMBERS = ("lon", "lat", "range_min", "range_max", "interval_s")


# A row of the file: the registration body, or why it could not be read.
Row = dict[str, Any] | RowProblem


def _number(field: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise RowProblem(_("%(field)s must be a number, not “%(text)s”", field=field,
                           text=text[:40])) from None
    if not math.isfinite(value):
        raise RowProblem(_("%(field)s must be a finite number", field=field))
    return int(value) if value.is_integer() and field == "interval_s" else value


def _range_text(text: str) -> list[float]:
    # "0,200", "0;200" or "[0, 200]": a spreadsheet cell holding both limits.
    parts = [p for p in text.strip("[] ").replace(";", ",").split(",") if p.strip()]
    if len(parts) != 2:
        raise RowProblem(_("range must be two numbers “min,max”, e.g. “0,200”"))
    return [float(_number("range", p.strip())) for p in parts]


def _with_range(body: dict[str, Any]) -> dict[str, Any]:
    """Fold range_min/range_max into the API's `range: [min, max]`."""
    low, high = body.pop("range_min", None), body.pop("range_max", None)
    if low is None and high is None:
        return body
    if low is None or high is None:
        raise RowProblem(_("give both range_min and range_max, or neither"))
    if "range" in body and body["range"] is not None:
        raise RowProblem(_("give either range or range_min/range_max, not both"))
    body["range"] = [low, high]
    return body


def _csv_rows(text: str) -> list[tuple[int, Row]]:
    rows: list[tuple[int, Row]] = []
    for line, row in tabular.csv_rows(text, required=REQUIRED, columns=REQUIRED + OPTIONAL,
                                      max_rows=MAX_ROWS):
        if isinstance(row, RowProblem):
            rows.append((line, row))
            continue
        try:
            rows.append((line, _csv_body(row)))
        except RowProblem as problem:
            problem.code = (row.get("code") or "").strip() or None
            rows.append((line, problem))
    return rows


def _csv_body(row: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for column, cell in row.items():
        text = (cell or "").strip()
        if not text:
            continue  # an empty cell is an absent field
        if column in NUMBERS:
            body[column] = _number(column, text)
        elif column == "range":
            body[column] = _range_text(text)
        else:
            body[column] = text
    return _with_range(body)


def _geojson_rows(text: str) -> list[tuple[int, Row]]:
    rows: list[tuple[int, Row]] = []
    hint = _("Send a GeoJSON FeatureCollection of Point features, or a CSV file.")
    for number, feature in tabular.features(text, hint=hint, max_rows=MAX_ROWS):
        try:
            rows.append((number, _feature_body(feature)))
        except RowProblem as problem:
            problem.code = tabular.feature_code(feature)
            rows.append((number, problem))
    return rows


def _feature_body(feature: Any) -> dict[str, Any]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RowProblem(_("not a GeoJSON Feature"))
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise RowProblem(_("the feature has no properties (code, kind, unit, gateway, …)"))
    geometry = feature.get("geometry")
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not isinstance(geometry, dict) or geometry.get("type") != "Point" \
            or not isinstance(coords, list) or len(coords) not in (2, 3):
        raise RowProblem(_("the geometry must be a Point [lon, lat]"))
    body = {k: v for k, v in props.items() if k in OPTIONAL + REQUIRED and v is not None}
    body["lon"], body["lat"] = coords[0], coords[1]
    return _with_range(body)


def _known_codes(session: Session, model) -> set[str]:
    return set(session.scalars(select(model.code)))


def _row_reason(body: dict[str, Any], seen: dict[str, int],
                known: dict[str, set[str]]) -> str | None:
    """What is wrong with a row that the registry would refuse with a less helpful message."""
    code = body.get("code")
    if isinstance(code, str) and code.strip():
        code = code.strip()
        if code in seen:
            return tabular.repeated(code, seen[code])
        if code in known["sensors"]:
            return _("sensor %(code)s is registered already; change it on the sensors page "
                     "instead, or remove this row", code=code)
    gateway = body.get("gateway")
    if isinstance(gateway, str) and gateway.strip() and gateway.strip() not in known["gateways"]:
        return _("gateway %(code)s is not registered: add it first (rescuehub gateway add "
                 "%(code)s) or correct the code", code=gateway.strip())
    for field, label in (("village", "villages"), ("hazard", "hazards")):
        value = body.get(field)
        if isinstance(value, str) and value.strip() and value.strip() not in known[label]:
            return (_("village %(code)s is not on the map: import the village first or "
                      "correct the code", code=value.strip()) if field == "village" else
                    _("hazard zone %(code)s is not on the map: add it first or correct the "
                      "code", code=value.strip()))
    return None


def import_sensors(session: Session, text: str, *, fmt: str, actor: str) -> list[Sensor]:
    """Register every row in the caller's transaction, or raise with every bad row (the caller
    then rolls back, so a bad file leaves nothing behind)."""
    rows = _csv_rows(text) if fmt == "csv" else _geojson_rows(text)
    tabular.check_row_count(rows, max_rows=MAX_ROWS, empty=_("The file has no sensors in it."),
                            too_many=_("At most %(count)d sensors per file: split the file.",
                                       count=MAX_ROWS))
    known = {"sensors": _known_codes(session, Sensor),
             "gateways": _known_codes(session, Gateway),
             "villages": _known_codes(session, Village),
             "hazards": _known_codes(session, HazardZone)}
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    created: list[Sensor] = []
    for line, body in rows:
        code = body.code if isinstance(body, RowProblem) else body.get("code")
        code = (code.strip() or None) if isinstance(code, str) else None
        reason = str(body) if isinstance(body, RowProblem) else _row_reason(body, seen, known)
        if reason is None:
            # register() raises before it adds anything, so a refused row writes nothing.
            try:
                created.append(service.register(session, body, actor=actor))
            except HubError as exc:
                reason = str(exc.message)
        if code and code not in seen:
            seen[code] = line
        if reason is not None:
            errors.append(RowError(line, code, reason))
    if errors:
        raise ImportRejected(errors)
    return created
