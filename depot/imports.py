"""CSV imports of the depot (dispatch.core.tabular): serialized items, and stock received into
bins. Every row is read with the same checks as the API's bodies (depot.service); all rows are
written or none, and each bad row is named with its line and reason (422 `import_rejected`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from depot import fields, service
from depot.models import Item
from dispatch.core import audit, tabular
from dispatch.core.errors import HubError
from dispatch.core.tabular import ImportRejected, RowError, RowProblem

# The most rows one import takes (the app's body limit holds about this many lines).
MAX_ROWS = 5000
ITEM_COLUMNS = ("code", "type", "serial", "status", "condition", "bin", "home_site",
                "purchased", "expires", "inspection_due")
STOCK_COLUMNS = ("type", "bin", "qty", "kind", "reason")
# A quantity cell: a plain decimal number (no thousands separators, no exponent).
_NUMBER = re.compile(r"[+-]?\d{1,15}(\.\d{1,15})?", re.ASCII)


def _body(row: dict[str, str]) -> dict[str, Any]:
    """A row as a body: empty cells are absent."""
    return {k: v.strip() for k, v in row.items() if v is not None and v.strip()}


def _rows(text: str, *, required: tuple[str, ...], columns: tuple[str, ...]):
    rows = tabular.csv_rows(text, required=required, columns=columns, max_rows=MAX_ROWS)
    tabular.check_row_count(rows, max_rows=MAX_ROWS, empty=_("The file has no rows."),
                            too_many=_("At most %(count)d rows per import: split the file.",
                                       count=MAX_ROWS))
    return rows


def _reason(exc: HubError) -> str:
    return str(exc.message)


def import_items(session: Session, text: str, *, actor: str, today) -> list[Item]:
    """Items from a CSV file (columns ITEM_COLUMNS; `code` and `type` required): every row
    checked first, then all stored (each audited) or none."""
    rows = _rows(text, required=("code", "type"), columns=ITEM_COLUMNS)
    codes = [(row.get("code") or "").strip().upper() for _line, row in rows
             if not isinstance(row, RowProblem)]
    taken = set(session.scalars(select(Item.code).where(Item.code.in_(codes)))) if codes \
        else set()
    seen: dict[str, int] = {}
    errors: list[RowError] = []
    good: list[Item] = []
    known = service.Known.load(session)
    for line, row in rows:
        if isinstance(row, RowProblem):
            errors.append(RowError(line, row.code, str(row)))
            continue
        code = (row.get("code") or "").strip() or None
        try:
            item = service.new_item(session, _body(row), today=today, known=known)
        except HubError as exc:
            errors.append(RowError(line, code, _reason(exc)))
            continue
        if item.code in seen:
            errors.append(RowError(line, code, tabular.repeated(item.code, seen[item.code])))
        elif item.code in taken:
            errors.append(RowError(line, code, _("item %(code)s exists already",
                                                 code=item.code)))
        else:
            seen[item.code] = line
            good.append(item)
    if errors:
        raise ImportRejected(errors)
    return service.add_items(session, good, actor=actor)


def _stock_body(row: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "receipt", **_body(row)}
    qty = body.get("qty")
    if isinstance(qty, str) and _NUMBER.fullmatch(qty):
        body["qty"] = int(qty) if "." not in qty else float(qty)
    return body


def import_stock(session: Session, text: str, *, actor: str) -> list[tuple[str, str]]:
    """Stock moves from a CSV file (columns STOCK_COLUMNS; `kind` defaults to receipt): every
    row checked and applied in order in the caller's transaction; any bad row (including one
    that takes more than its bin then holds) and nothing is kept. Returns (type, bin) per row."""
    rows = _rows(text, required=("type", "bin", "qty"), columns=STOCK_COLUMNS)
    errors: list[RowError] = []
    moves: list[tuple[int, service.MoveFields]] = []
    known = service.Known.load(session)
    for line, row in rows:
        if isinstance(row, RowProblem):
            errors.append(RowError(line, row.code, str(row)))
            continue
        try:
            moves.append((line, service.read_move(session, _stock_body(row), known)))
        except HubError as exc:
            errors.append(RowError(line, (row.get("type") or "").strip() or None, _reason(exc)))
    if errors:
        raise ImportRejected(errors)
    done: list[tuple[str, str]] = []
    # One audit entry per stock line the file changed (its quantity before and after, and its
    # moves), not per row: the ledger holds every row with who, when and why.
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for line, move in moves:
        try:
            answer = service.move_stock(session, move, actor=actor, audited=False)
        except HubError as exc:
            errors.append(RowError(line, move.kind.code, _reason(exc)))
            continue
        key = (move.kind.code, move.bin.path)
        before = Decimal(str(answer["quantity"])) - Decimal(str(answer["qty"]))
        entry = lines.setdefault(key, {"before": fields.amount_json(before), "moves": []})
        entry["after"] = answer["quantity"]
        entry["moves"].append(answer["id"])
        done.append(key)
    if errors:
        raise ImportRejected(errors)
    for (type_code, path), entry in lines.items():
        audit.record(session, actor=actor, action="depot_stock.import",
                     entity_type="depot_stock", entity_id=f"{type_code}@{path}",
                     before={"quantity": entry["before"]},
                     after={"quantity": entry["after"], "moves": entry["moves"]})
    return done
