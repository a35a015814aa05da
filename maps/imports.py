"""Import villages and shelters from GeoJSON or CSV (dispatch.core.tabular): every bad row
reported with its line, and nothing written unless every row is good."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from shapely import wkt as shapely_wkt
from shapely.errors import ShapelyError
from shapely.geometry import mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.core import tabular
from dispatch.core.errors import BadRequest, HubError
from dispatch.core.tabular import ImportRejected, RowError, RowProblem
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


def _geometry_columns(kind: FeatureKind) -> tuple[str, ...]:
    return ("lon", "lat") if kind is SHELTERS else ("wkt",)


def _features_from_csv(kind: FeatureKind, text: str) -> list[tuple[int, Any]]:
    # Unknown columns are ignored, as unknown properties are (maps.service.parse_fields).
    rows = tabular.csv_rows(text, required=("code",), columns=(*kind.fields,
                                                               *_geometry_columns(kind)),
                            max_rows=MAX_ROWS, unknown_ok=True)
    features: list[tuple[int, Any]] = []
    for line, row in rows:
        if isinstance(row, RowProblem):
            features.append((line, row))
            continue
        try:
            props = parse_fields(kind.fields, row, from_text=True)
            features.append((line, {"type": "Feature", "properties": props,
                                    "geometry": _csv_geometry(kind, row)}))
        except HubError as exc:
            problem = RowProblem(str(exc.message))
            problem.code = (row.get("code") or "").strip() or None
            features.append((line, problem))
    return features


def import_features(session: Session, kind: FeatureKind, text: str, *, fmt: str, actor: str,
                    upsert: bool = False) -> dict[str, int]:
    """Validate every row, then write all of them in the caller's transaction (or none)."""
    if kind not in (VILLAGES, SHELTERS):
        raise BadRequest(_l("Only villages and shelters can be imported."), code="bad_kind")
    rows = _features_from_csv(kind, text) if fmt == "csv" else tabular.features(
        text, hint=_("Send a GeoJSON FeatureCollection."), max_rows=MAX_ROWS)
    tabular.check_row_count(rows, max_rows=MAX_ROWS, empty=_("The file has no rows."),
                            too_many=_("At most %(count)d rows per import: split the file.",
                                       count=MAX_ROWS))
    existing = set(session.scalars(select(kind.model.code)))
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    good: list[tuple[str, dict[str, Any]]] = []
    # First validate every row without writing, so a bad row leaves nothing half-written.
    for line, feat in rows:
        if isinstance(feat, RowProblem):
            errors.append(RowError(line, feat.code, str(feat)))
            continue
        code = tabular.feature_code(feat)
        try:
            prepare(kind, feat)
        except HubError as exc:
            errors.append(RowError(line, code, str(exc.message)))
            continue
        if code in seen:
            errors.append(RowError(line, code, tabular.repeated(code, seen[code])))
        elif code in existing and not upsert:
            errors.append(RowError(line, code, _("%(code)s exists already (import with "
                                                 "mode=upsert to update it)", code=code)))
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
