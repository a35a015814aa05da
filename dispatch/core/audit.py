"""The audit trail (全程留痕): an append-only, hash-chained log of every change.

Each entry's hash covers its own fields and the previous entry's hash, so changing, deleting or
reordering any row breaks the chain at that row. The single `audit_head` row holds the last
sequence number and hash: an append first updates it, which serialises concurrent appends (a row
lock on PostgreSQL, the write lock on SQLite) and lets `verify` notice rows cut off the end.
Call `record` inside the same transaction as the change it describes.

Everything in the database can be rewritten by whoever can write to it: the rows, their hashes
and the head together. So the head is also anchored outside the database: `take_checkpoint`
appends (sequence number, hash, entry time) to an append-only file in the data directory and,
when `audit.anchor_url` is set, the job sends it to the county. `verify` checks the chain
against every checkpoint: a checkpointed entry rewritten, deleted or cut off is found even when
the chain was recomputed to look consistent. Changes after the last checkpoint are not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from dispatch.core.db import utcnow
from dispatch.core.models import AuditEntry, AuditHead

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# How often the running hub checkpoints the chain (the audit_checkpoint job): what a rewrite by
# someone with database access can go unnoticed for.
CHECKPOINT_EVERY = timedelta(minutes=5)


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


# The three statements of an entry, built once (every write of the hub appends one): the head
# advanced with its sequence number and hash returned, the entry, the head's new hash. On the
# tables, not the mapped classes: no object of the caller's session is looked at or changed
# (the ORM's "auto" synchronisation walked every object of the session on each entry: a depot
# import of 600 items, audited item by item, spent most of its time there).
_HEAD, _ENTRIES = AuditHead.__table__, AuditEntry.__table__
_ADVANCE = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1)
            .returning(_HEAD.c.seq, _HEAD.c.last_hash))
_APPEND = insert(_ENTRIES)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("digest"))


def record(session: Session, *, actor: str, action: str, entity_type: str, entity_id: Any,
           before: Any = None, after: Any = None) -> int:
    """Append one entry in the caller's transaction; returns its sequence number."""
    head = session.execute(_ADVANCE).first()
    if head is None:
        session.execute(insert(_HEAD).values(id=1, seq=1, last_hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head
    at = utcnow()
    before_text, after_text = canonical(before), canonical(after)
    digest = entry_hash(seq, at, actor, action, entity_type, str(entity_id), before_text,
                        after_text, prev)
    session.execute(_APPEND, {
        "seq": seq, "at": at, "actor": actor, "action": action, "entity_type": entity_type,
        "entity_id": str(entity_id), "before": before_text, "after": after_text,
        "prev_hash": prev, "hash": digest})
    session.execute(_MOVE_HEAD, {"digest": digest})
    return seq


@dataclass(frozen=True)
class Break:
    """Where and how the chain is broken (`checkpoint`: found only against a checkpoint, i.e.
    the chain was rewritten to look consistent)."""

    seq: int
    problem: Any
    checkpoint: bool = False


@dataclass(frozen=True)
class Verdict:
    """The result of verifying the chain (and how many checkpoints it was held against)."""

    entries: int
    breaks: list[Break]
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, kept outside the database: entry `seq`, its hash and
    time, and when the checkpoint was taken."""

    seq: int
    hash: str
    entry_at: str
    at: str

    def line(self) -> bytes:
        return (canonical({"seq": self.seq, "hash": self.hash, "entry_at": self.entry_at,
                           "at": self.at}) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """One line of the checkpoint file; ValueError when it is not one."""
        body = json.loads(text)
        if not isinstance(body, dict) or not isinstance(body.get("seq"), int) \
                or body["seq"] < 1 or not isinstance(body.get("hash"), str) \
                or len(body["hash"]) != 64:
            raise ValueError("not a checkpoint")
        return cls(body["seq"], body["hash"], str(body.get("entry_at", "")),
                   str(body.get("at", "")))


class ChainBroken(Exception):
    """The chain since the last checkpoint does not verify: no checkpoint is taken (it would
    pin the damage as the truth)."""

    def __init__(self, breaks: list[Break]):
        self.breaks = breaks
        super().__init__("; ".join(f"entry {b.seq}: {b.problem}" for b in breaks))


def checkpoint_file(data_dir: Path) -> Path:
    """Where the checkpoints are appended: <data.dir>/audit/checkpoints.log."""
    return data_dir / "audit" / "checkpoints.log"


def read_checkpoints(path: Path) -> tuple[list[Checkpoint], list[Break]]:
    """Every checkpoint in the file (none when it does not exist), and a Break for each line
    that is not one (the file was edited)."""
    checkpoints: list[Checkpoint] = []
    problems: list[Break] = []
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            for number, text in enumerate(fh, start=1):
                try:
                    checkpoints.append(Checkpoint.parse(text))
                except ValueError:
                    problems.append(Break(0, _l("line %(line)d of the checkpoint file %(path)s "
                                                "is not a checkpoint (the file was edited)",
                                                line=number, path=str(path)), True))
    except FileNotFoundError:
        pass
    return checkpoints, problems


def last_checkpoint(path: Path) -> Checkpoint | None:
    """The file's last checkpoint, read from its end (the file grows for ever)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 4096))
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return None
    for text in reversed(lines):
        try:
            return Checkpoint.parse(text.decode("utf-8"))
        except ValueError:
            continue
    return None


def _walk(rows: Iterator[AuditEntry], expected_seq: int, prev: str | None,
          pinned: dict[int, Checkpoint], progress: Callable[[int], None] | None = None,
          seen: set[int] | None = None) -> tuple[int, list[Break], int, str | None]:
    """Check each row's place, link and hash (and the hash a checkpoint pinned for it; the
    pinned entries found are added to `seen`); returns (rows, breaks, next expected seq, last
    hash). `prev` None: the first row's link is not checked (a walk that starts mid-chain)."""
    breaks: list[Break] = []
    count = 0
    for row in rows:
        count += 1
        if row.seq != expected_seq:
            breaks.append(Break(expected_seq, _l("entries %(first)d..%(last)d are missing",
                                                 first=expected_seq, last=row.seq - 1)))
        elif prev is not None and row.prev_hash != prev:
            breaks.append(Break(row.seq, _l("does not follow the previous entry (reordered or "
                                            "the previous entry was replaced)")))
        digest = entry_hash(row.seq, row.at, row.actor, row.action, row.entity_type,
                            row.entity_id, row.before, row.after, row.prev_hash)
        if digest != row.hash:
            breaks.append(Break(row.seq, _l("its content was changed after it was written")))
        pin = pinned.get(row.seq)
        if pin is not None and seen is not None:
            seen.add(row.seq)
        if pin is not None and pin.hash != row.hash:
            breaks.append(Break(row.seq, _l("differs from the checkpoint taken at %(at)s: this "
                                            "entry or one before it was rewritten",
                                            at=pin.at), True))
        expected_seq, prev = row.seq + 1, row.hash
        if progress is not None:
            progress(count)
    return count, breaks, expected_seq, prev


def verify(session: Session, *, progress=None,
           checkpoints: list[Checkpoint] | None = None) -> Verdict:
    """Walk the chain in order and report every row that was changed, deleted or reordered,
    and every checkpoint the chain no longer matches (rewritten, deleted, truncated, wiped)."""
    checkpoints = checkpoints or []
    pinned: dict[int, Checkpoint] = {}
    breaks: list[Break] = []
    for cp in checkpoints:
        earlier = pinned.setdefault(cp.seq, cp)
        if earlier.hash != cp.hash:
            breaks.append(Break(cp.seq, _l("two checkpoints disagree about this entry (the "
                                           "checkpoint file was edited)"), True))
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    seen: set[int] = set()
    count, found, expected_seq, prev = _walk(rows.yield_per(1000), 1, GENESIS, pinned, progress,
                                             seen)
    breaks += found
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.last_hash) if head else (0, GENESIS)
    if head_seq != expected_seq - 1 or head_hash != prev:
        breaks.append(Break(expected_seq, _l("the chain should end at entry %(head)d, but the "
                                             "last entry found is %(last)d",
                                             head=head_seq, last=expected_seq - 1)))
    last = max(checkpoints, key=lambda c: c.seq, default=None)
    if last is not None and last.seq > expected_seq - 1:
        breaks.append(Break(last.seq, _l("the checkpoint taken at %(at)s recorded %(seq)d "
                                         "entries, but the chain holds only %(found)d: entries "
                                         "were deleted from its end (or the log wiped)",
                                         at=last.at, seq=last.seq, found=expected_seq - 1),
                            True))
    else:
        for seq in sorted(set(pinned) - seen):
            breaks.append(Break(seq, _l("this entry, checkpointed at %(at)s, is missing",
                                        at=pinned[seq].at), True))
    return Verdict(count, breaks, len(checkpoints))


def take_checkpoint(session: Session, data_dir: Path, now: datetime) -> tuple[Checkpoint | None,
                                                                              bool]:
    """Append the chain's head to the checkpoint file, after checking the entries since the
    last checkpoint; returns (the latest checkpoint, whether this call wrote it). Nothing is
    written when the head has not moved, or the chain is empty. ChainBroken when the chain no
    longer extends the last checkpoint."""
    path = checkpoint_file(data_dir)
    last = last_checkpoint(path)
    head = session.execute(select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
                           ).first()
    if head is None or head.seq == 0:
        if last is not None:
            raise ChainBroken([Break(last.seq, _l("the audit log is empty but was checkpointed "
                                                  "at entry %(seq)d", seq=last.seq), True)])
        return None, False
    if last is not None and (last.seq, last.hash) == (head.seq, head.last_hash):
        return last, False
    start = last.seq if last is not None else 1
    rows = session.execute(select(AuditEntry).where(AuditEntry.seq >= start, AuditEntry.seq
                                                    <= head.seq).order_by(AuditEntry.seq))
    pinned = {last.seq: last} if last is not None else {}
    _count, breaks, expected_seq, prev = _walk(
        rows.scalars().yield_per(1000), start, None if last else GENESIS, pinned)
    if last is not None and head.seq < last.seq:
        breaks.append(Break(last.seq, _l("the chain ends at entry %(head)d, before the last "
                                         "checkpoint's %(seq)d", head=head.seq, seq=last.seq),
                            True))
    elif expected_seq - 1 != head.seq or prev != head.last_hash:
        breaks.append(Break(expected_seq, _l("the chain should end at entry %(head)d, but the "
                                             "last entry found is %(last)d",
                                             head=head.seq, last=expected_seq - 1)))
    if breaks:
        raise ChainBroken(breaks)
    entry_at = session.scalar(select(AuditEntry.at).where(AuditEntry.seq == head.seq))
    checkpoint = Checkpoint(head.seq, head.last_hash,
                            entry_at.astimezone(UTC).isoformat(timespec="microseconds"),
                            now.astimezone(UTC).isoformat(timespec="seconds"))
    append_checkpoint(path, checkpoint)
    return checkpoint, True


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line with O_APPEND (one write, so concurrent writers never interleave) and
    fsync it; the file is created mode 0600 in a 0700 directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, checkpoint.line())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new file's directory entry must survive a power cut too
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


ANCHOR_ATTEMPTS = 3
ANCHOR_TIMEOUT_S = 5.0


def send_to_anchor(url: str, checkpoint: Checkpoint, *, attempts: int = ANCHOR_ATTEMPTS,
                   timeout_s: float = ANCHOR_TIMEOUT_S, pause_s: float = 1.0) -> bool:
    """POST a checkpoint as JSON to the county's anchor, a few tries; True once it answered
    2xx. Never raises: a failure is logged and the caller tries again next time."""
    body = json.dumps({"seq": checkpoint.seq, "hash": checkpoint.hash,
                       "entry_at": checkpoint.entry_at, "at": checkpoint.at}).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = str(exc)
        log.warning("audit anchor %s: checkpoint %s not accepted (try %d of %d): %s", url,
                    checkpoint.seq, attempt, attempts, problem)
        if attempt < attempts:
            time.sleep(pause_s * attempt)
    return False
