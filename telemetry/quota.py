"""The dead-letter quota: how many rejections per gateway and minute keep their raw payload.

Without it a gateway could fill the disk: 100 bad 500 KiB messages from one gateway grew the
database by 51 MB in half a second, and one 475 KiB batch of 1,000 unknown sensors by 488 MB
(each rejected reading keeps the whole message). Past `ingest.dead_letters_per_minute` letters
or `ingest.dead_letter_bytes_per_minute` payload bytes in a gateway's minute, a rejection is
still counted (its reason in rescuehub_readings_rejected, rescuehub_dead_letters_dropped, the
HTTP answer) but only added to one `over_quota` dead letter per gateway and minute, without
its payload.

The counters are in memory, per process (the ingest writer for MQTT, each web process for
HTTP): a check is a dictionary lookup under a lock, never a query. A restart or a second process
starts its own counts, so the bound is per process, which is what keeps ingest cheap.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from telemetry import metrics
from telemetry.models import DeadLetter

WINDOW_S = 60
# An over_quota letter keeps this many first bytes of the first payload it stands for, so the
# office sees what the gateway was sending.
HEAD_KEPT = 256

@dataclass
class _Window:
    """A gateway's use of one minute, and the over_quota letter that minute writes to."""

    index: int
    letters: int = 0
    bytes: int = 0
    summary_id: int | None = None
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class Drops:
    """One transaction's rejections of one gateway that were over its quota."""

    topic: str
    head: bytes
    count: int = 0
    bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class DeadLetterQuota:
    """Per-gateway counters of the letters and payload bytes kept in the current minute."""

    def __init__(self, letters_per_window: int, bytes_per_window: int,
                 window_s: int = WINDOW_S):
        self.letters_per_window = letters_per_window
        self.bytes_per_window = bytes_per_window
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def window(self, now: datetime) -> int:
        return int(now.timestamp() // self.window_s)

    def _current(self, gateway: str, now: datetime) -> _Window:
        index = self.window(now)
        window = self._windows.get(gateway)
        if window is None or window.index != index:
            window = self._windows[gateway] = _Window(index)
        return window

    def take(self, gateway: str, nbytes: int, now: datetime) -> bool:
        """Count one letter of `nbytes` against the gateway's minute; False when it is over
        the quota (then nothing is counted: the letter is dropped)."""
        with self._lock:
            window = self._current(gateway, now)
            if window.letters + 1 > self.letters_per_window \
                    or window.bytes + nbytes > self.bytes_per_window:
                return False
            window.letters += 1
            window.bytes += nbytes
            return True

    def summary(self, gateway: str, now: datetime, drops: Drops) -> tuple[int | None, Counter]:
        """The over_quota letter this minute writes to (None: none yet) and the reasons it
        will stand for once `drops` are added."""
        with self._lock:
            window = self._current(gateway, now)
            window.reasons.update(drops.reasons)
            return window.summary_id, Counter(window.reasons)

    def started(self, gateway: str, now: datetime, summary_id: int, drops: Drops) -> None:
        """A new over_quota letter stands for this minute from now on (holding `drops`)."""
        with self._lock:
            window = self._current(gateway, now)
            window.summary_id = summary_id
            window.reasons = Counter(drops.reasons)


def quota_of(app: Flask) -> DeadLetterQuota:
    """This process's quota (one per app), from the ingest.* settings."""
    quota = app.extensions.get("rescuehub.dead_letter_quota")
    if quota is None:
        settings = app.config["SETTINGS"]
        quota = app.extensions.setdefault("rescuehub.dead_letter_quota", DeadLetterQuota(
            settings.ingest.dead_letters_per_minute,
            settings.ingest.dead_letter_bytes_per_minute))
    return quota


def summary_detail(reasons: Counter, letters: int, nbytes: int) -> str:
    """An over_quota letter's detail: what its dropped rejections were."""
    counted = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
    return (f"over the dead-letter quota ({letters} letters or {nbytes} bytes a minute): "
            f"payloads not kept; {counted}")[:500]


def counted_drops(drops: Counter[tuple[str, str]]) -> None:
    """Count dropped rejections into this process's /metrics (after their commit)."""
    for (gateway, reason), n in drops.items():
        metrics.dead_letters_dropped.labels(gateway=gateway, reason=reason).inc(n)


def gateway_states(session, now: datetime, window_s: int = WINDOW_S) -> dict[str, dict]:
    """Per gateway with unresolved over_quota letters: how many rejections they stand for,
    since when, and whether the gateway went over its quota in the last two minutes."""
    rows = session.execute(
        select(DeadLetter.gateway, func.sum(DeadLetter.dropped_count),
               func.min(DeadLetter.received_at), func.max(DeadLetter.received_at))
        .where(DeadLetter.reason == "over_quota", DeadLetter.resolved_at.is_(None))
        .group_by(DeadLetter.gateway)).all()
    recent = now - timedelta(seconds=2 * window_s)
    return {gateway: {"over_quota": last >= recent, "dropped": int(dropped or 0),
                      "dropped_since": first.isoformat()}
            for gateway, dropped, first, last in rows}
