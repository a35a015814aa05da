"""Helpers for tests that send readings over HTTP as a gateway."""

import json
from datetime import UTC, datetime, timedelta


def ts(minutes_ago: float = 5) -> str:
    """A reading time that many minutes ago, RFC 3339 with an offset."""
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def post(client, headers, body):
    """POST /api/v1/readings with a gateway's headers (a body given as bytes is sent as is)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/v1/readings", data=data,
                       headers={**headers, "Content-Type": "application/json"})
