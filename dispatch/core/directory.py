"""The code directory: which codes name a member, a team, an incident, … (DESIGN §2, §5 "Depot").

A package upstream of the one that keeps a kind of thing (the depot, upstream of the roster)
still has to know whether a scanned code names one: the keeper registers a resolver here in its
init_app, the asker calls `exists`, and neither imports the other. A kind without a resolver
(incidents, until the dispatch domain keeps them) answers None: the asker then takes any
well-formed code.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

Resolver = Callable[[Session, str], bool]

# kind -> resolver, one per kind for the process (registering again replaces it: the same
# function, each time an app is made).
_resolvers: dict[str, Resolver] = {}


def register(kind: str, exists: Resolver) -> None:
    """Let `exists(session, code)` answer whether `code` names a thing of `kind`."""
    _resolvers[kind] = exists


def exists(session: Session, kind: str, code: str) -> bool | None:
    """Whether `code` names a `kind`; None when no package keeps that kind."""
    resolver = _resolvers.get(kind)
    return None if resolver is None else resolver(session, code)


def kinds() -> tuple[str, ...]:
    """The kinds a resolver is registered for."""
    return tuple(sorted(_resolvers))
