"""The audit chain: appends link up, and any changed, deleted or reordered row is named."""

import json

from sqlalchemy import delete, select, text, update

from dispatch.core import audit
from dispatch.core.db import db
from dispatch.core.models import AuditEntry


def _fill(n: int = 5) -> None:
    with db.transaction() as s:
        for i in range(n):
            audit.record(s, actor="user:zhang", action="item.update", entity_type="item",
                         entity_id=f"PUMP-{i}", before={"status": "ok"},
                         after={"status": "repair", "note": "叶轮损坏"})


def _verify():
    return audit.verify(db.session)


def test_chain_is_intact(app):
    _fill()
    verdict = _verify()
    assert verdict.ok and verdict.entries == 5
    rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert json.loads(rows[2].after)["note"] == "叶轮损坏"


def test_changed_row_is_named(app):
    _fill()
    with db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3)
                  .values(after='{"status":"ok"}'))
    verdict = _verify()
    assert [(b.seq, "changed" in b.problem) for b in verdict.breaks] == [(3, True)]


def test_deleted_row_is_named(app):
    _fill()
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    verdict = _verify()
    assert not verdict.ok
    assert verdict.breaks[0].seq == 2 and "missing" in verdict.breaks[0].problem


def test_deleted_last_row_is_noticed(app):
    _fill()
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    verdict = _verify()
    assert not verdict.ok and "end at entry 5" in verdict.breaks[-1].problem


def test_reordered_rows_are_named(app):
    _fill()
    with db.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seq=-4))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=4))
        s.execute(update(AuditEntry).where(AuditEntry.seq == -4).values(seq=3))
    verdict = _verify()
    # 3 and 4 are named; 5 no longer follows what now stands at 4.
    assert {b.seq for b in verdict.breaks} == {3, 4, 5}


def test_cli_verify(app, runner):
    _fill(3)
    ok = runner.invoke("audit", "verify")
    assert ok.exit_code == 0 and "3 entries" in ok.output
    with db.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 2"))
    broken = runner.invoke("audit", "verify")
    assert broken.exit_code == 1
    assert "entry 2:" in broken.output
    assert "restore" in broken.output


def test_append_after_verify_continues_chain(app):
    _fill(2)
    db.session.close()
    _fill(2)
    assert _verify().entries == 4 and _verify().ok
