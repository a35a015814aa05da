"""Member bodies for the roster's API tests."""

from __future__ import annotations


def member(code: str = "M-01", **fields) -> dict:
    """A member body, complete as the contract writes it."""
    return {"code": code, "name": "王建国", "phone": "13800001234", "post": "water",
            "employment": "contract", "team": "FT", "squad": "A", "roles": ["rescue", "relief"],
            "skills": [{"skill": "boat", "level": 2, "expires": "2027-05-01"},
                       {"skill": "chainsaw", "level": 1, "expires": None}],
            "status": "on_shift", "user": None, **fields}


def add(client, headers, body) -> dict:
    answer = client.post("/api/v1/members", json=body, headers=headers)
    assert answer.status_code == 201, answer.json
    return answer.json
