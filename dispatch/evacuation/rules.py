"""The planner's pure decisions (DESIGN §5 "Evacuation (contract)"): who is to move from each
village in which priority class, which shelters can take people and how many, and what changed
between two versions of a plan. No Flask, no database: plain values in, plain values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LEVELS = ("none", "prepare", "evacuate")


@dataclass(frozen=True)
class VillageNeed:
    """What decides a village's people to move: its population and levels."""

    code: str
    population: int
    vulnerable: int
    moved: int = 0
    # The village's own flash-flood level (its whole population), and each of its hazard zones'
    # (level, people): DESIGN "People to move from a hazard zone's alert are the zone's people;
    # from a village's, its population".
    flood_level: str = "none"
    zones: tuple[tuple[str, int], ...] = ()
    # People in a shelter of this village that is itself at `evacuate` (they move again).
    sheltered: int = 0


def _at_least(level: str, wanted: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(wanted)


def _people_at(need: VillageNeed, wanted: str) -> int:
    """People at `wanted` or above: the whole village when its own level reaches it, else its
    zones' people that do (never more than its population)."""
    if _at_least(need.flood_level, wanted):
        return need.population
    return min(need.population, sum(p for lvl, p in need.zones if _at_least(lvl, wanted)))


def _vulnerable_share(need: VillageNeed, people: int) -> int:
    """The vulnerable among `people` of the village, in proportion (rounded down; the whole
    village's vulnerable when everyone moves)."""
    if people >= need.population:
        return need.vulnerable
    if need.population <= 0:
        return 0
    return need.vulnerable * people // need.population


def demand(need: VillageNeed, prepare_fraction: float) -> list[int]:
    """People to move by class [1, 2, 3, 4] (DESIGN): 1 the vulnerable at `evacuate`, 2 the rest
    at `evacuate`, 3 the vulnerable at `prepare`, 4 the rest at `prepare` × prepare_fraction;
    minus those already reported moved (counted against the vulnerable first, who go first);
    plus people sheltered in the village when it must be left (class 2)."""
    evacuate = _people_at(need, "evacuate")
    prepare = max(0, _people_at(need, "prepare") - evacuate)
    vulnerable_e = min(_vulnerable_share(need, evacuate), evacuate)
    vulnerable_p = min(max(0, _vulnerable_share(need, evacuate + prepare) - vulnerable_e),
                       prepare)
    classes = [vulnerable_e, evacuate - vulnerable_e, vulnerable_p,
               int((prepare - vulnerable_p) * prepare_fraction)]
    moved = need.moved
    for i in range(4):
        taken = min(moved, classes[i])
        classes[i] -= taken
        moved -= taken
    if evacuate > 0:
        classes[1] += need.sheltered
    return classes


@dataclass(frozen=True)
class ShelterState:
    """A shelter as the planner sees it."""

    code: str
    capacity_day: int
    capacity_night: int
    occupancy: int
    status: str
    # "evacuate" when the shelter lies in a village or hazard zone at that level.
    area_level: str = "none"


def is_night(local: datetime, night_start: int, night_end: int) -> bool:
    """Night capacity applies from night_start to night_end (minutes of the day, local)."""
    minute = local.hour * 60 + local.minute
    if night_start <= night_end:
        return night_start <= minute < night_end
    return minute >= night_start or minute < night_end


def availability(shelter: ShelterState, night: bool) -> tuple[int, str | None]:
    """(available places, why the shelter is unusable or None) — DESIGN: unusable when closed,
    when available ≤ 0, or inside a village or hazard zone at `evacuate`."""
    capacity = shelter.capacity_night if night else shelter.capacity_day
    available = capacity - shelter.occupancy
    if shelter.status == "closed":
        return available, "closed"
    if shelter.area_level == "evacuate":
        return available, "in_danger"
    if shelter.status == "full" or available <= 0:
        return available, "full"
    return available, None



# --- diff between two versions -------------------------------------------------------------------

def _by_village(plan: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for a in plan.get("assignments", ()):
        out.setdefault(a["village"], {})[a["shelter"]] = a["people"]
    return out


def _routes(plan: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    return {(a["village"], a["shelter"]): a["roads"] for a in plan.get("assignments", ())}


def _reasons(code: str, old: Mapping[str, Any], new: Mapping[str, Any], before: dict[str, int],
             after: dict[str, int]) -> list[dict[str, Any]]:
    """Why a village's people go elsewhere: its level or people changed, a road of its old route
    closed, an old shelter became unusable, else others took the places (capacity)."""
    why: list[dict[str, Any]] = []
    old_v = {v["code"]: v for v in old.get("villages", ())}.get(code)
    new_v = {v["code"]: v for v in new.get("villages", ())}.get(code)
    if old_v is None or new_v is None or old_v["level"] != new_v["level"]:
        why.append({"why": "level", "from": old_v["level"] if old_v else "none",
                    "to": new_v["level"] if new_v else "none"})
    elif old_v["to_move"] != new_v["to_move"]:
        why.append({"why": "people", "from": sum(old_v["to_move"]), "to": sum(new_v["to_move"])})
    closed = {r["code"]: r["why"] for r in new.get("closed_roads", ())}
    was_closed = {r["code"] for r in old.get("closed_roads", ())}
    routes = _routes(old)
    for shelter in before:
        for road in routes.get((code, shelter), ()):
            if road in closed and road not in was_closed:
                why.append({"why": "road_closed", "road": road, "reason": closed[road],
                            "shelter": shelter})
                break
    new_shelters = {s["code"]: s for s in new.get("shelters", ())}
    for shelter in before:
        state = new_shelters.get(shelter)
        if state is None:
            why.append({"why": "shelter_gone", "shelter": shelter})
        elif not state["usable"]:
            why.append({"why": "shelter_unusable", "shelter": shelter, "reason": state["why_not"]})
    if not why:
        why.append({"why": "capacity"})
    return why


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each village whose assignment differs between two plans: before, after (shelter →
    people) and why (DESIGN "the diff to the previous version: who moves elsewhere and why")."""
    before_all, after_all = _by_village(old), _by_village(new)
    old_routes, new_routes = _routes(old), _routes(new)
    old_unplaced = {v["code"]: v["unplaced"] for v in old.get("villages", ())}
    new_unplaced = {v["code"]: v["unplaced"] for v in new.get("villages", ())}
    moves = []
    for code in sorted(set(before_all) | set(after_all) | set(old_unplaced) | set(new_unplaced)):
        before, after = before_all.get(code, {}), after_all.get(code, {})
        # The same shelter over other roads is a move too: the team leader's route changed.
        rerouted = sorted(s for s in set(before) & set(after)
                          if old_routes[(code, s)] != new_routes[(code, s)])
        if before == after and not rerouted and (
                old_unplaced.get(code, 0) == new_unplaced.get(code, 0)):
            continue
        moves.append({"village": code, "before": before, "after": after, "rerouted": rerouted,
                      "unplaced": {"before": old_unplaced.get(code, 0),
                                   "after": new_unplaced.get(code, 0)},
                      "why": _reasons(code, old, new, before, after)})
    return moves


def levels_from(body: Any, known: Iterable[str]) -> dict[str, str]:
    """A drill's levels {"V012": "evacuate"}: ValueError naming each unknown village or level."""
    if not isinstance(body, Mapping):
        raise ValueError("levels must be an object of village code → level")
    known = set(known)
    bad = [f"{code}: unknown village" for code in body if code not in known]
    bad += [f"{code}: level must be none, prepare or evacuate" for code, level in body.items()
            if level not in LEVELS]
    if bad:
        raise ValueError("; ".join(sorted(bad)))
    return dict(body)
