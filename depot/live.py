"""The depot's live events (DESIGN §5 Socket.IO `depot`), built in one place and sent after the
commit of the change they announce.

Every payload says what changed and where, never who holds what (the rooms hold roles that may
only read readiness): `{"kind": "site"|"bin"|"type"|"item"|"stock"|"kit"|…, "action": "create"|
"update"|"move"|"import"|…, "codes": [...], "sites": [...], "types": [...]}`. A page refetches what
it shows when an event names its site or types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dispatch.core import realtime

EVENT = "depot"
# Every signed-in person (DESIGN §5 "Depot": everyone reads readiness): the office's panel and
# map, and the keepers' pages, as the check-out events (depot.checkout_views) go.
ROOMS = (realtime.TOWNSHIP,)
# An event lists at most this many codes (an import of 5,000 items says how many, not which).
LISTED = 200


def change(kind: str, action: str, *, codes: Iterable[str] = (), sites: Iterable[str] = (),
           types: Iterable[str] = ()) -> dict[str, Any]:
    """The payload of one `depot` event: what kind of thing changed, how, which, where."""
    listed = sorted(set(codes))
    return {"kind": kind, "action": action, "codes": listed[:LISTED], "count": len(listed),
            "sites": sorted(set(sites)), "types": sorted(set(types))}


def send(payload: dict[str, Any]) -> str:
    """Send one `depot` event to every signed-in person (after the commit); returns its id."""
    return realtime.notify(EVENT, payload, ROOMS)
