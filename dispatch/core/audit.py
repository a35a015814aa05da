"""The audit trail (全程留痕): an append-only, hash-chained log of every change.

Each entry's hash covers its own fields and the previous entry's hash, so changing, deleting or
reordering any row breaks the chain at that row. The single `audit_head` row holds the last
sequence number and hash: an append first updates it, which serialises concurrent appends (a row
lock on PostgreSQL, the write lock on SQLite) and lets `verify` notice rows cut off the end.
Call `record` inside the same transaction as the change it describes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dispatch.core.db import utcnow
from dispatch.core.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, datetimes as ISO 8601 UTC."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def entry_hash(seq: int, at: datetime, actor: str, action: str, entity_type: str,
               entity_id: str, before: str, after: str, prev_hash: str) -> str:
    """SHA-256 over the entry's fields and the previous hash."""
    material = canonical([seq, at.astimezone(UTC).isoformat(timespec="microseconds"), actor,
                          action, entity_type, entity_id, before, after, prev_hash])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def record(session: Session, *, actor: str, action: str, entity_type: str, entity_id: Any,
           before: Any = None, after: Any = None) -> int:
    """Append one entry in the caller's transaction; returns its sequence number."""
    head = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).first()
    if head is None:
        session.execute(insert(AuditHead).values(id=1, seq=1, last_hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head
    at = utcnow()
    before_text, after_text = canonical(before), canonical(after)
    digest = entry_hash(seq, at, actor, action, entity_type, str(entity_id), before_text,
                        after_text, prev)
    session.execute(insert(AuditEntry).values(
        seq=seq, at=at, actor=actor, action=action, entity_type=entity_type,
        entity_id=str(entity_id), before=before_text, after=after_text, prev_hash=prev,
        hash=digest))
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    return seq


@dataclass(frozen=True)
class Break:
    """Where and how the chain is broken."""

    seq: int
    problem: str


@dataclass(frozen=True)
class Verdict:
    """The result of verifying the chain."""

    entries: int
    breaks: list[Break]

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify(session: Session, *, progress=None) -> Verdict:
    """Walk the chain in order and report every row that was changed, deleted or reordered."""
    breaks: list[Break] = []
    expected_seq, prev = 1, GENESIS
    count = 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for row in rows.yield_per(1000):
        count += 1
        if row.seq != expected_seq:
            breaks.append(Break(expected_seq, f"entries {expected_seq}..{row.seq - 1} are missing"))
        elif row.prev_hash != prev:
            breaks.append(Break(row.seq, "does not follow the previous entry (reordered or the "
                                         "previous entry was replaced)"))
        digest = entry_hash(row.seq, row.at, row.actor, row.action, row.entity_type,
                            row.entity_id, row.before, row.after, row.prev_hash)
        if digest != row.hash:
            breaks.append(Break(row.seq, "its content was changed after it was written"))
        expected_seq, prev = row.seq + 1, row.hash
        if progress is not None:
            progress(count)
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.last_hash) if head else (0, GENESIS)
    if head_seq != expected_seq - 1 or head_hash != prev:
        breaks.append(Break(expected_seq, f"the chain should end at entry {head_seq}, but the "
                                          f"last entry found is {expected_seq - 1}"))
    return Verdict(count, breaks)
