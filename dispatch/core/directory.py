"""The code directory: which codes name a member, a team, an incident, … (DESIGN §2, §5 "Depot").

A package upstream of the one that keeps a kind of thing (the depot, upstream of the roster)
still has to know whether a scanned code names one: the keeper registers a resolver here in its
init_app, the asker calls `exists`, and neither imports the other. A kind without a resolver
(incidents, until the dispatch domain keeps them) answers None: the asker then takes any
well-formed code. A keeper may also say what a code names (`describe`: its name and a line about
it), for a page that shows whom a scanned code names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Entry:
    """What a code names, as a page shows it: the code as stored, a name, and what it belongs
    to (a member's team; empty when nothing)."""

    code: str
    name: str
    part_of: str = ""


Resolver = Callable[[Session, str], bool]
Describer = Callable[[Session, str], Entry | None]

# kind -> resolver, one per kind for the process (registering again replaces it: the same
# function, each time an app is made).
_resolvers: dict[str, Resolver] = {}
_describers: dict[str, Describer] = {}


def register(kind: str, exists: Resolver, describe: Describer | None = None) -> None:
    """Let `exists(session, code)` answer whether `code` names a thing of `kind`, and
    `describe(session, code)` what it names (None: nothing)."""
    _resolvers[kind] = exists
    if describe is not None:
        _describers[kind] = describe


def exists(session: Session, kind: str, code: str) -> bool | None:
    """Whether `code` names a `kind`; None when no package keeps that kind."""
    resolver = _resolvers.get(kind)
    return None if resolver is None else resolver(session, code)


def kinds() -> tuple[str, ...]:
    """The kinds a resolver is registered for."""
    return tuple(sorted(_resolvers))


def describe(session: Session, kind: str, code: str) -> Entry | None:
    """What `code` names among the `kind`s (None: nothing, or no package describes that kind;
    then `exists` still answers)."""
    describer = _describers.get(kind)
    return None if describer is None else describer(session, code)
