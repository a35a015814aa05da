"""The audit chain: appends link up, and any changed, deleted or reordered row is named."""

import json
import stat
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask_babel import force_locale
from sqlalchemy import delete, select, text, update

from dispatch.core import audit
from dispatch.core.db import db
from dispatch.core.models import AuditEntry, AuditHead
from dispatch.core.settings import load_settings


def _fill(n: int = 5) -> None:
    with db.transaction() as s:
        for i in range(n):
            audit.record(s, actor="user:zhang", action="item.update", entity_type="item",
                         entity_id=f"PUMP-{i}", before={"status": "ok"},
                         after={"status": "repair", "note": "叶轮损坏"})


def _verify():
    return audit.verify(db.session)


def en(problem) -> str:
    """A problem (a lazy string) in English, whatever the app's default language."""
    with force_locale("en"):
        return str(problem)


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
    assert [(b.seq, "changed" in en(b.problem)) for b in verdict.breaks] == [(3, True)]


def test_deleted_row_is_named(app):
    _fill()
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    verdict = _verify()
    assert not verdict.ok
    assert verdict.breaks[0].seq == 2 and "missing" in en(verdict.breaks[0].problem)


def test_deleted_last_row_is_noticed(app):
    _fill()
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    verdict = _verify()
    assert not verdict.ok and "end at entry 5" in en(verdict.breaks[-1].problem)


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


# --- Checkpoints: the chain anchored outside the database -------------------------------------

def _checkpoint(data_dir):
    with db.transaction() as s:
        return audit.take_checkpoint(s, data_dir, datetime.now(UTC))


def _checkpoints(data_dir):
    found, problems = audit.read_checkpoints(audit.checkpoint_file(data_dir))
    assert problems == []
    return found


def _verify_with(data_dir):
    return audit.verify(db.session, checkpoints=_checkpoints(data_dir))


def _rewrite_from(seq: int) -> None:
    """The attack of someone with database write access: change entry `seq`, then recompute
    every later hash and the head, so the chain is consistent again."""
    with db.transaction() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.seq >= seq - 1)
                         .order_by(AuditEntry.seq)).all()
        prev = rows[0].hash if seq > 1 else audit.GENESIS
        for row in rows[1:] if seq > 1 else rows:
            if row.seq == seq:
                row.after = '{"status":"ok"}'
            row.prev_hash = prev
            row.hash = prev = audit.entry_hash(row.seq, row.at, row.actor, row.action,
                                               row.entity_type, row.entity_id, row.before,
                                               row.after, row.prev_hash)
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))


def _truncate_to(seq: int) -> None:
    """Delete the entries after `seq` and move the head back to it."""
    with db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq > seq))
        last = s.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=last))


def _wipe() -> None:
    with db.transaction() as s:
        s.execute(delete(AuditEntry))
        s.execute(delete(AuditHead))


def test_checkpoint_is_appended_once_per_head_to_a_private_file(app, data_dir):
    assert _checkpoint(data_dir) == (None, False)  # an empty chain has nothing to anchor
    _fill(3)
    first, written = _checkpoint(data_dir)
    assert written and (first.seq, first.hash) == (3, db.session.get(AuditHead, 1).last_hash)
    assert _checkpoint(data_dir) == (first, False)  # the head has not moved
    _fill(2)
    second, written = _checkpoint(data_dir)
    assert written and second.seq == 5
    path = audit.checkpoint_file(data_dir)
    assert path == data_dir / "audit" / "checkpoints.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [3, 5]
    assert set(json.loads(lines[0])) == {"seq", "hash", "entry_at", "at"}
    assert _verify_with(data_dir).ok and _verify_with(data_dir).checkpoints == 2


@pytest.mark.parametrize("attack, seq", [
    (lambda: _rewrite_from(2), 5),
    (lambda: _truncate_to(3), 5),
    (_wipe, 5),
], ids=["rewrite_and_rehash", "delete_last_and_move_head", "wipe"])
def test_a_consistent_rewrite_before_the_last_checkpoint_is_found(app, data_dir, attack, seq):
    _fill(5)
    _checkpoint(data_dir)
    attack()
    db.session.close()
    # The chain alone looks intact: this is what went unnoticed before checkpoints.
    assert _verify().ok
    verdict = _verify_with(data_dir)
    assert not verdict.ok
    assert [b.seq for b in verdict.breaks if b.checkpoint] == [seq]
    # And the next checkpoint refuses to bless the rewritten chain.
    with pytest.raises(audit.ChainBroken):
        _checkpoint(data_dir)


def test_an_older_checkpoint_pins_the_entries_it_covered(app, data_dir):
    _fill(3)
    _checkpoint(data_dir)
    _fill(2)
    _checkpoint(data_dir)
    _truncate_to(2)
    db.session.close()
    verdict = _verify_with(data_dir)
    # Entry 3 (first checkpoint) and the chain's end (second) are both named.
    assert sorted(b.seq for b in verdict.breaks if b.checkpoint) == [5]
    assert "deleted" in en(verdict.breaks[-1].problem)


def test_changes_after_the_last_checkpoint_are_not_detectable(app, data_dir):
    """What the README says the chain cannot see: a consistent rewrite of later entries."""
    _fill(3)
    _checkpoint(data_dir)
    _fill(2)
    _rewrite_from(5)
    db.session.close()
    assert _verify_with(data_dir).ok


def test_an_edited_checkpoint_file_is_named(app, data_dir):
    _fill(2)
    _checkpoint(data_dir)
    with audit.checkpoint_file(data_dir).open("a") as fh:
        fh.write('{"seq": 2, "hash": "not a hash"}\n')
    _found, problems = audit.read_checkpoints(audit.checkpoint_file(data_dir))
    assert [p.checkpoint for p in problems] == [True] and "line 2" in en(problems[0].problem)


def test_cli_verify_checks_the_checkpoints(app, runner, data_dir):
    _fill(4)
    first = runner.invoke("audit", "verify")
    assert first.exit_code == 0 and "no checkpoints" in first.output
    taken = runner.invoke("audit", "verify", "--checkpoint")
    assert taken.exit_code == 0 and "checkpoint written: entry 4" in taken.output
    again = runner.invoke("audit", "verify")
    assert again.exit_code == 0 and "1 checkpoint(s) match" in again.output
    _truncate_to(2)
    broken = runner.invoke("audit", "verify")
    assert broken.exit_code == 1
    last = broken.output.strip().splitlines()[-1]
    assert "checkpoint" in last and "restore" in last
    assert broken.output.count("rescuehub:") == 1


def test_cli_verify_refuses_to_checkpoint_a_broken_chain(app, runner, data_dir):
    _fill(3)
    with db.transaction() as s:
        s.execute(text("UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 2"))
    assert runner.invoke("audit", "verify", "--checkpoint").exit_code == 1
    assert not audit.checkpoint_file(data_dir).exists()


class _Anchor(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server's name)
        _Anchor.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(_Anchor.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def anchor():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Anchor)
    _Anchor.received, _Anchor.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/anchor"
    server.shutdown()
    server.server_close()


def _with_anchor(app, overrides, url):
    app.config["SETTINGS"] = load_settings({**overrides, "audit": {"anchor_url": url}})


def test_job_sends_each_new_checkpoint_to_the_county_once(app, overrides, data_dir, anchor):
    from dispatch.core.jobs import audit_checkpoint

    _with_anchor(app, overrides, anchor)
    _fill(2)
    audit_checkpoint()
    audit_checkpoint()
    assert [r["seq"] for r in _Anchor.received] == [2]
    assert _Anchor.received[0]["hash"] == db.session.get(AuditHead, 1).last_hash
    _fill(1)
    audit_checkpoint()
    assert [r["seq"] for r in _Anchor.received] == [2, 3]


def test_a_failing_anchor_is_retried_at_the_next_checkpoint(app, overrides, data_dir, anchor,
                                                            caplog, monkeypatch):
    from dispatch.core.jobs import audit_checkpoint

    monkeypatch.setattr(audit.time, "sleep", lambda s: None)
    _with_anchor(app, overrides, anchor)
    _Anchor.status = 503
    _fill(2)
    audit_checkpoint()  # never raises; the local checkpoint is written all the same
    assert len(_Anchor.received) == audit.ANCHOR_ATTEMPTS
    assert [c.seq for c in _checkpoints(data_dir)] == [2]
    assert "not accepted" in caplog.text and "503" in caplog.text
    _Anchor.status = 200
    audit_checkpoint()
    assert len(_Anchor.received) == audit.ANCHOR_ATTEMPTS + 1
    audit_checkpoint()
    assert len(_Anchor.received) == audit.ANCHOR_ATTEMPTS + 1


def test_an_unreachable_anchor_does_not_raise(app, caplog):
    checkpoint = audit.Checkpoint(1, "a" * 64, "2026-01-01T00:00:00+00:00", "x")
    assert not audit.send_to_anchor("http://127.0.0.1:1/", checkpoint, attempts=2, pause_s=0)
    assert caplog.text.count("not accepted") == 2
