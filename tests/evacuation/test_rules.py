"""The planner's pure decisions: people by class, shelter availability, night, the diff."""

from __future__ import annotations

from datetime import datetime

import pytest

from dispatch.evacuation import rules
from dispatch.evacuation.rules import ShelterState, VillageNeed


@pytest.mark.parametrize(("need", "fraction", "expected"), [
    # A village's own flash flood at evacuate: everyone, vulnerable first.
    (VillageNeed("V1", 1000, 150, flood_level="evacuate"), 0.0, [150, 850, 0, 0]),
    # At prepare: its vulnerable (class 3); the rest only by prepare_fraction.
    (VillageNeed("V1", 1000, 150, flood_level="prepare"), 0.0, [0, 0, 150, 0]),
    (VillageNeed("V1", 1000, 150, flood_level="prepare"), 0.5, [0, 0, 150, 425]),
    # A hazard zone's alert moves the zone's people, with their share of the vulnerable.
    (VillageNeed("V1", 1000, 150, zones=(("evacuate", 200),)), 0.0, [30, 170, 0, 0]),
    # Zone at evacuate and the village's flood at prepare: the zone's people now, the rest's
    # vulnerable next.
    (VillageNeed("V1", 1000, 150, flood_level="prepare", zones=(("evacuate", 200),)), 1.0,
     [30, 170, 120, 680]),
    # Zones never move more than the village's people.
    (VillageNeed("V1", 100, 10, zones=(("evacuate", 80), ("evacuate", 80))), 0.0, [10, 90, 0, 0]),
    # People already reported moved count against the vulnerable first.
    (VillageNeed("V1", 1000, 150, moved=200, flood_level="evacuate"), 0.0, [0, 800, 0, 0]),
    (VillageNeed("V1", 1000, 150, moved=1200, flood_level="evacuate"), 0.0, [0, 0, 0, 0]),
    # A shelter in the village at evacuate: its occupants move too.
    (VillageNeed("V1", 1000, 150, flood_level="evacuate", sheltered=40), 0.0, [150, 890, 0, 0]),
    # No level: nobody moves; no population: nobody to move.
    (VillageNeed("V1", 1000, 150), 1.0, [0, 0, 0, 0]),
    (VillageNeed("V1", 0, 0, flood_level="evacuate"), 1.0, [0, 0, 0, 0]),
])
def test_demand_by_class(need, fraction, expected):
    assert rules.demand(need, fraction) == expected


def test_demand_never_negative_and_sums_to_at_most_the_people():
    for moved in range(0, 1300, 97):
        for zone in range(0, 1200, 111):
            need = VillageNeed("V", 1000, 333, moved=moved, flood_level="prepare",
                               zones=(("evacuate", zone),))
            classes = rules.demand(need, 1.0)
            assert all(c >= 0 for c in classes)
            assert sum(classes) == max(0, 1000 - moved)


@pytest.mark.parametrize(("state", "night", "expected"), [
    (ShelterState("S", 300, 200, 50, "open"), False, (250, None)),
    (ShelterState("S", 300, 200, 50, "open"), True, (150, None)),
    (ShelterState("S", 300, 200, 300, "open"), False, (0, "full")),
    (ShelterState("S", 300, 200, 350, "open"), False, (-50, "full")),
    (ShelterState("S", 300, 200, 0, "full"), False, (300, "full")),
    (ShelterState("S", 300, 200, 0, "closed"), False, (300, "closed")),
    (ShelterState("S", 300, 200, 0, "open", "evacuate"), False, (300, "in_danger")),
])
def test_availability(state, night, expected):
    assert rules.availability(state, night) == expected


@pytest.mark.parametrize(("hour", "minute", "night"), [
    (19, 59, False), (20, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False),
    (12, 0, False)])
def test_night_runs_over_midnight(hour, minute, night):
    assert rules.is_night(datetime(2026, 7, 27, hour, minute), 20 * 60, 8 * 60) is night


def _plan(assignments, villages, closed=(), shelters=()):
    return {"assignments": [{"village": v, "shelter": s, "people": p, "roads": r}
                            for v, s, p, r in assignments],
            "villages": [{"code": c, "level": lv, "to_move": tm, "unplaced": u}
                         for c, lv, tm, u in villages],
            "closed_roads": [{"code": c, "why": w} for c, w in closed],
            "shelters": [{"code": c, "usable": u, "why_not": w} for c, u, w in shelters]}


def test_diff_names_the_closed_road_and_the_full_shelter():
    old = _plan([("V1", "S1", 100, ["R1", "R2"]), ("V2", "S2", 50, ["R9"])],
                [("V1", "evacuate", [10, 90, 0, 0], 0), ("V2", "evacuate", [5, 45, 0, 0], 0)],
                shelters=[("S1", True, None), ("S2", True, None), ("S3", True, None)])
    new = _plan([("V1", "S3", 100, ["R5"]), ("V2", "S3", 50, ["R7"])],
                [("V1", "evacuate", [10, 90, 0, 0], 0), ("V2", "evacuate", [5, 45, 0, 0], 0)],
                closed=[("R2", "closed: landslide")],
                shelters=[("S1", True, None), ("S2", False, "full"), ("S3", True, None)])
    moves = rules.diff(old, new)
    assert [m["village"] for m in moves] == ["V1", "V2"]
    assert moves[0]["before"] == {"S1": 100} and moves[0]["after"] == {"S3": 100}
    assert moves[0]["why"] == [{"why": "road_closed", "road": "R2",
                                "reason": "closed: landslide", "shelter": "S1"}]
    assert moves[1]["why"] == [{"why": "shelter_unusable", "shelter": "S2", "reason": "full"}]


def test_diff_of_equal_plans_is_empty_and_a_new_level_says_so():
    plan = _plan([("V1", "S1", 100, ["R1"])], [("V1", "evacuate", [10, 90, 0, 0], 0)])
    assert rules.diff(plan, plan) == []
    moves = rules.diff({}, plan)
    assert moves[0]["why"] == [{"why": "level", "from": "none", "to": "evacuate"}]


def test_drill_levels_name_each_bad_entry():
    assert rules.levels_from({"V1": "evacuate"}, ["V1", "V2"]) == {"V1": "evacuate"}
    with pytest.raises(ValueError, match="V2: level must be.*V9: unknown village"):
        rules.levels_from({"V9": "evacuate", "V2": "red"}, ["V1", "V2"])
    with pytest.raises(ValueError, match="object"):
        rules.levels_from(["V1"], ["V1"])


def test_diff_reports_a_new_route_to_the_same_shelter():
    old = _plan([("V1", "S1", 100, ["R1", "R2"])], [("V1", "evacuate", [10, 90, 0, 0], 0)],
                shelters=[("S1", True, None)])
    new = _plan([("V1", "S1", 100, ["R1", "R3", "R4"])], [("V1", "evacuate", [10, 90, 0, 0], 0)],
                closed=[("R2", "closed: washed out")], shelters=[("S1", True, None)])
    [move] = rules.diff(old, new)
    assert move["before"] == move["after"] == {"S1": 100} and move["rerouted"] == ["S1"]
    assert move["why"] == [{"why": "road_closed", "road": "R2", "reason": "closed: washed out",
                            "shelter": "S1"}]
