"""Import villages and shelters from GeoJSON or CSV: every bad row reported with its line, and
nothing written unless every row is good."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from shapely import wkt as shapely_wkt
from shapely.errors import ShapelyError
from shapely.geometry import mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.core import strict_json
from dispatch.core.body import problem_text
from dispatch.core.errors import BadRequest, HubError
from maps.service import (
    SHELTERS,
    VILLAGES,
    FeatureKind,
    create,
    parse_fields,
    prepare,
    update,
)

MAX_ROWS = 20_000


@dataclass(frozen=True)
class RowError:
    """One refused row: its line (CSV) or feature number (GeoJSON), code if known, reason."""

    line: int
    code: str | None
    reason: str


class ImportRejected(HubError):
    """The file had bad rows; nothing was written."""

    status = 422
    code = "import_rejected"

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} row(s) refused; nothing was imported. Fix them and "
                         "send the whole file again.",
                         details={"rows": [e.__dict__ for e in errors[:1000]]})


def _features_from_geojson(text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = strict_json.loads(text)
    except strict_json.JsonRefused as exc:
        raise BadRequest(_l("The file is not valid JSON (%(problem)s).",
                            problem=problem_text(exc)), code="bad_json") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
            or not isinstance(doc.get("features"), list):
        raise BadRequest(_l("Send a GeoJSON FeatureCollection."), code="bad_geojson")
    return [(i + 1, f) for i, f in enumerate(doc["features"])]


def _csv_geometry(kind: FeatureKind, row: dict[str, str]) -> dict[str, Any] | None:
    if kind is SHELTERS:
        lon, lat = (row.get("lon") or "").strip(), (row.get("lat") or "").strip()
        if not lon or not lat:
            raise BadRequest(_l("lon and lat are required."), code="bad_geometry")
        try:
            return {"type": "Point", "coordinates": [float(lon), float(lat)]}
        except ValueError:
            raise BadRequest(_l("lon and lat must be numbers."), code="bad_geometry") from None
    text = (row.get("wkt") or "").strip()
    if not text:
        raise BadRequest(_l("wkt (the boundary as WKT) is required."), code="bad_geometry")
    try:
        return mapping(shapely_wkt.loads(text))
    except (ShapelyError, ValueError) as exc:
        raise BadRequest(_l("wkt is not valid (%(problem)s).", problem=str(exc)),
                         code="bad_geometry") from None


@dataclass(frozen=True)
class _BadRow:
    """A CSV row that could not become a feature, and why."""

    code: str | None
    message: str


def _features_from_csv(kind: FeatureKind, text: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        if not reader.fieldnames or "code" not in reader.fieldnames:
            raise BadRequest(_l("The first CSV line must name the columns, including code."),
                             code="bad_csv")
        features: list[tuple[int, Any]] = []
        for row in reader:
            line = reader.line_num
            try:
                props = parse_fields(kind.fields, row, from_text=True)
                features.append((line, {"type": "Feature", "properties": props,
                                        "geometry": _csv_geometry(kind, row)}))
            except HubError as exc:
                features.append((line, _BadRow(row.get("code"), str(exc.message))))
    except csv.Error as exc:  # e.g. a bare carriage return inside a field
        raise BadRequest(_l("The CSV file cannot be read at line %(line)d (%(problem)s). Save it "
                            "again as CSV (UTF-8) from the spreadsheet.", line=reader.line_num,
                            problem=str(exc)), code="bad_csv") from None
    return features


def import_features(session: Session, kind: FeatureKind, text: str, *, fmt: str, actor: str,
                    upsert: bool = False) -> dict[str, int]:
    """Validate every row, then write all of them in the caller's transaction (or none)."""
    if kind not in (VILLAGES, SHELTERS):
        raise BadRequest(_l("Only villages and shelters can be imported."), code="bad_kind")
    rows = _features_from_csv(kind, text) if fmt == "csv" else _features_from_geojson(text)
    if len(rows) > MAX_ROWS:
        raise BadRequest(_l("At most %(count)d rows per import: split the file.",
                            count=MAX_ROWS), code="too_many_rows")
    if not rows:
        raise BadRequest(_l("The file has no rows."), code="empty")
    existing = set(session.scalars(select(kind.model.code)))
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    good: list[tuple[str, dict[str, Any]]] = []
    # First validate every row without writing, so a bad row leaves nothing half-written.
    for line, feat in rows:
        if isinstance(feat, _BadRow):
            errors.append(RowError(line, feat.code, feat.message))
            continue
        props = feat.get("properties") if isinstance(feat, dict) else None
        code = props.get("code") if isinstance(props, dict) else None
        try:
            prepare(kind, feat)
        except HubError as exc:
            errors.append(RowError(line, code if isinstance(code, str) else None,
                                   str(exc.message)))
            continue
        if code in seen:
            errors.append(RowError(line, code, f"code repeats line {seen[code]}"))
        elif code in existing and not upsert:
            errors.append(RowError(line, code, f"{code} exists already (import with "
                                               "mode=upsert to update it)"))
        else:
            seen[code] = line
            good.append((code, feat))
    if errors:
        raise ImportRejected(errors)
    created = updated = 0
    for code, feat in good:
        if code in existing:
            update(session, kind, code, feat, actor=actor)
            updated += 1
        else:
            create(session, kind, feat, actor=actor)
            created += 1
    return {"created": created, "updated": updated}
