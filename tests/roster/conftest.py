"""A small catalogue for the roster's API tests: skills, a team in two squads and another team,
registered through the API they test."""

from __future__ import annotations

import pytest

SKILLS = [
    {"code": "boat", "name_zh": "冲锋舟驾驶", "name_en": "Boat handling",
     "needs_certificate": True},
    {"code": "first_aid", "name_zh": "应急救护", "name_en": "First aid",
     "needs_certificate": True},
    {"code": "chainsaw", "name_zh": "油锯操作", "name_en": "Chainsaw",
     "needs_certificate": False},
]
TEAMS = [
    {"code": "FT", "name": "专职救援队", "parent": None},
    {"code": "A", "name": "A班", "parent": "FT"},
    {"code": "B", "name": "B班", "parent": "FT"},
    {"code": "ZH", "name": "综合应急救援队", "parent": None},
]


@pytest.fixture
def editor(bearer):
    return bearer("dispatcher")


@pytest.fixture
def catalogue(client, editor):
    """The skills and teams above, through POST /api/v1/skills and /api/v1/teams."""
    for skill in SKILLS:
        answer = client.post("/api/v1/skills", json=skill, headers=editor)
        assert answer.status_code == 201, answer.json
    for team in TEAMS:
        answer = client.post("/api/v1/teams", json=team, headers=editor)
        assert answer.status_code == 201, answer.json
    return editor
