"""Imports of tabular files, shared by every package that registers rows from a file (maps:
villages and shelters; telemetry: sensors): a CSV file or a GeoJSON FeatureCollection read into
numbered rows, every bad row reported with its line (CSV) or feature number (GeoJSON), and
nothing written unless every row is good. Every message is in the request's language.

A package turns each row into what its service takes, raises `RowProblem` for a row it cannot
read, collects `RowError`s, and raises `ImportRejected` with all of them before writing anything.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from dispatch.core import strict_json
from dispatch.core.body import problem_text
from dispatch.core.errors import BadRequest, HubError

# Rows an ImportRejected lists at the most (the count in its message is the whole number).
LISTED_ERRORS = 1000
# csv's "extra cells" key: a row with more cells than the header has columns.
_EXTRA = "\0extra"


@dataclass(frozen=True)
class RowError:
    """One refused row: its line (CSV) or feature number (GeoJSON), code if known, reason."""

    line: int
    code: str | None
    reason: str


class RowProblem(Exception):
    """One row cannot be read; the text says what to fix (in the request's language)."""

    code: str | None = None


class ImportRejected(HubError):
    """The file had bad rows; nothing was written. 422 with every row (up to LISTED_ERRORS)."""

    status = 422
    code = "import_rejected"

    def __init__(self, errors: Sequence[RowError]):
        super().__init__(_l("%(count)d row(s) refused; nothing was imported. Fix them and send "
                            "the whole file again.", count=len(errors)),
                         details={"rows": [vars(e) for e in errors[:LISTED_ERRORS]]})


def decode_text(raw: bytes) -> str:
    """An uploaded file's text (400 `bad_encoding` unless it is UTF-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(_("The file must be UTF-8 text: save it again as “CSV UTF-8”."),
                         code="bad_encoding") from None


def csv_rows(text: str, *, required: Sequence[str], columns: Sequence[str], max_rows: int,
             unknown_ok: bool = False) -> list[tuple[int, dict[str, str] | RowProblem]]:
    """The rows of a CSV file as (line, {column: cell}), header names stripped, at most
    max_rows + 1 of them (so the caller can say the file is too long); a row with more cells
    than the header has columns comes as a RowProblem. 400 `bad_csv` when the header lacks a
    `required` column, names one outside `columns` (unless unknown_ok), or the file is not
    CSV."""
    text = text.lstrip("\ufeff")
    # No field is longer than the file; csv's own limit (128 KiB) would refuse a detailed village
    # boundary as WKT (it answered 500).
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA)
    rows: list[tuple[int, dict[str, str] | RowProblem]] = []
    try:
        header = [(h or "").strip() for h in reader.fieldnames or []]
        _check_header(header, required, columns, unknown_ok)
        reader.fieldnames = header
        for row in reader:
            if row.get(_EXTRA):
                problem = RowProblem(_("the row has more cells than the first line has columns"))
                problem.code = (row.get("code") or "").strip() or None
                rows.append((reader.line_num, problem))
            else:
                row.pop(_EXTRA, None)
                rows.append((reader.line_num, row))
            if len(rows) > max_rows:
                break
    except csv.Error as exc:
        raise BadRequest(_("The CSV file cannot be read at line %(line)d (%(problem)s). Save it "
                           "again as CSV (UTF-8) from the spreadsheet.", line=reader.line_num,
                           problem=str(exc)), code="bad_csv") from None
    return rows


def _check_header(header: list[str], required: Sequence[str], columns: Sequence[str],
                  unknown_ok: bool) -> None:
    names = ", ".join(columns)
    missing = [c for c in required if c not in header]
    if missing:
        raise BadRequest(_("The first line must name the columns; missing: %(missing)s. "
                           "Columns: %(columns)s.", missing=", ".join(missing), columns=names),
                         code="bad_csv")
    unknown = [] if unknown_ok else [c for c in header if c not in columns]
    if unknown:
        raise BadRequest(_("Unknown column(s): %(unknown)s. Columns: %(columns)s.",
                           unknown=", ".join(unknown), columns=names), code="bad_csv")


def features(text: str, *, hint: str, max_rows: int) -> list[tuple[int, Any]]:
    """The features of a GeoJSON FeatureCollection as (number from 1, feature), at most
    max_rows + 1 of them; 400 `bad_json` for JSON strict_json refuses, `bad_geojson` (saying
    `hint`) for anything else than a FeatureCollection."""
    try:
        doc = strict_json.loads(text)
    except strict_json.JsonRefused as exc:
        raise BadRequest(_("The file is not valid JSON (%(problem)s).",
                           problem=problem_text(exc)), code="bad_json") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
            or not isinstance(doc.get("features"), list):
        raise BadRequest(hint, code="bad_geojson")
    return list(enumerate(doc["features"][:max_rows + 1], start=1))


def feature_code(feature: Any) -> str | None:
    """A feature's `code` property, stripped, if it has one."""
    props = feature.get("properties") if isinstance(feature, dict) else None
    code = props.get("code") if isinstance(props, dict) else None
    return (code.strip() or None) if isinstance(code, str) else None


def check_row_count(rows: Sequence[Any], *, max_rows: int, too_many: str, empty: str) -> None:
    """400 `too_many_rows` (saying `too_many`) past max_rows, `empty` (saying `empty`) for none."""
    if len(rows) > max_rows:
        raise BadRequest(too_many, code="too_many_rows")
    if not rows:
        raise BadRequest(empty, code="empty")


def repeated(code: str, line: int) -> str:
    """Why a row is refused whose code an earlier row of the file has (at `line`)."""
    return _("code %(code)s repeats line %(line)d of this file", code=code, line=line)
