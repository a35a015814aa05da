"""The kernel's code directory as the depot uses it: the roster answers for members and teams
(without case), a kind nobody keeps answers None."""

from __future__ import annotations

from dispatch.core import directory
from dispatch.core.db import db
from tests.depot import factories as f


def test_the_roster_answers_for_members_and_teams(app):
    f.depot()
    s = db.session
    assert {"member", "team"} <= set(directory.kinds())
    assert directory.exists(s, "member", "m001") is True
    assert directory.exists(s, "member", "M002") is False  # left the team
    assert directory.exists(s, "member", "ZH") is False
    assert directory.exists(s, "team", "zh") is True
    assert directory.exists(s, "incident", "INC-1") is None
