"""maps.solver: hand-checked plans, an independent lexicographic LP (scipy/HiGHS, variables
x[arc, class]) on random instances, the together heuristic's guarantees, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from maps.solver import (
    CLASSES,
    MAX_PEOPLE,
    MAX_TRAVEL_S,
    NO_CAPACITY,
    NO_ROUTE,
    Instance,
    Solution,
    SolverInputError,
    solve,
    solve_parts,
    solve_together,
    split,
)


def instance(demand, capacity, arcs) -> Instance:
    """An Instance from a demand table (rows padded to 4 classes), capacities and (v, s, t) arcs."""
    rows = [list(row) + [0] * (CLASSES - len(row)) for row in demand]
    table = np.array(rows, np.int64).reshape(len(rows), CLASSES)
    v, s, t = (np.array(col, np.int64) for col in zip(*arcs, strict=True)) if arcs else ([],) * 3
    return Instance(table, np.array(capacity, np.int64), np.array(v, np.int32),
                    np.array(s, np.int32), np.array(t, np.int64))


def lexicographic_lp(inst: Instance) -> tuple[list[float], float]:
    """Class totals and Σ people × travel of the lexicographic optimum, by staged LPs.

    Independent of the solver: variables x[a, c] (people of class c on arc a), one LP per class
    (maximise class k with classes before k held at their optimum), then one minimising travel
    with every class total held."""
    n_v, n_s, n_a = len(inst.demand), len(inst.capacity), len(inst.arc_village)
    present = np.flatnonzero(inst.demand.sum(axis=0))  # a class nobody is in has no columns
    if n_a == 0 or not len(present):
        return [0.0] * CLASSES, 0.0
    columns = np.arange(n_a * len(present))
    arc, cls = columns // len(present), present[columns % len(present)]
    ones = np.ones(len(columns))
    village_rows = sp.csr_matrix((ones, (inst.arc_village[arc] * CLASSES + cls, columns)),
                                 shape=(n_v * CLASSES, len(columns)))
    shelter_rows = sp.csr_matrix((ones, (inst.arc_shelter[arc], columns)),
                                 shape=(n_s, len(columns)))
    a_ub = sp.vstack([village_rows, shelter_rows]).tocsr()
    b_ub = np.r_[inst.demand.ravel(), inst.capacity].astype(float)
    class_rows = sp.csr_matrix((ones, (cls, columns)), shape=(CLASSES, len(columns)))
    totals: list[float] = []

    def run(cost: np.ndarray) -> float:
        held = len(totals)
        a_eq, b_eq = (class_rows[:held], totals) if held else (None, None)
        result = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None),
                         method="highs")
        assert result.status == 0, result.message
        return float(result.fun)

    for k in range(CLASSES):
        totals.append(-run(-(cls == k).astype(float)) if k in present else 0.0)
    return totals, run(inst.arc_travel_s[arc].astype(float))


def assert_consistent(inst: Instance, sol: Solution) -> None:
    """What every plan owes: integral, within capacity, nobody lost, reasons right, objective."""
    for array in (sol.flow, sol.by_class, sol.placed, sol.unplaced):
        assert array.dtype == np.int64
        assert (array >= 0).all()
    assert (sol.placed + sol.unplaced == inst.demand).all()
    assert (sol.by_class.sum(axis=1) == sol.flow).all()
    per_village = np.zeros_like(inst.demand)
    np.add.at(per_village, inst.arc_village, sol.by_class)
    assert (per_village == sol.placed).all()
    used = np.zeros(len(inst.capacity), np.int64)
    np.add.at(used, inst.arc_shelter, sol.flow)
    assert (used <= inst.capacity).all()
    assert sol.objective_person_s == sum(
        int(f) * int(t) for f, t in zip(sol.flow, inst.arc_travel_s, strict=True))
    has_arc = set(inst.arc_village.tolist())
    for v, reason in enumerate(sol.reason):
        if not sol.unplaced[v].any():
            assert reason is None
        else:
            assert reason == (NO_CAPACITY if v in has_arc else NO_ROUTE)


# --- hand-checked ------------------------------------------------------------------------------


def test_short_capacity_places_class_1_before_a_nearer_class_2():
    inst = instance([[5, 0], [0, 5]], [5], [(0, 0, 900), (1, 0, 60)])
    sol = solve(inst)
    assert sol.placed.tolist() == [[5, 0, 0, 0], [0, 0, 0, 0]]
    assert sol.unplaced[1].tolist() == [0, 5, 0, 0]
    assert sol.reason == [None, NO_CAPACITY]
    assert sol.flow.tolist() == [5, 0]
    assert sol.objective_person_s == 4500
    assert_consistent(inst, sol)


def test_every_class_before_the_next_within_and_across_villages():
    # 10 places for 4 + 3 + 3 + 5 people of classes 1..4: the last class is cut, the third is not.
    inst = instance([[4, 0, 0, 5], [0, 3, 3, 0]], [10], [(0, 0, 500), (1, 0, 5)])
    sol = solve(inst)
    assert sol.placed.sum(axis=0).tolist() == [4, 3, 3, 0]
    assert sol.unplaced.tolist() == [[0, 0, 0, 5], [0, 0, 0, 0]]
    assert sol.objective_person_s == 4 * 500 + 6 * 5
    assert_consistent(inst, sol)


def test_placing_most_class_1_can_send_a_village_past_its_nearest_shelter():
    # Nearest-first would put village 0 in shelter 0 and strand village 1; the maximum needs both.
    inst = instance([[5], [5]], [5, 5], [(0, 0, 10), (0, 1, 20), (1, 0, 100)])
    sol = solve(inst)
    assert sol.flow.tolist() == [0, 5, 5]
    assert sol.objective_person_s == 5 * 20 + 5 * 100
    assert sol.reason == [None, None]


def test_least_person_seconds_among_the_maximal_plans():
    inst = instance([[3, 4]], [4, 10], [(0, 0, 60), (0, 1, 120)])
    sol = solve(inst)
    assert sol.flow.tolist() == [4, 3]
    assert sol.objective_person_s == 4 * 60 + 3 * 120
    # Class 1 rides the nearest arc; the split does not change the objective.
    assert sol.by_class.tolist() == [[3, 1, 0, 0], [0, 3, 0, 0]]


def test_a_village_with_no_arc_is_no_route_and_an_empty_one_has_no_reason():
    inst = instance([[2, 1], [0, 0], [1]], [10], [(2, 0, 30)])
    sol = solve(inst)
    assert sol.reason == [NO_ROUTE, None, None]
    assert sol.unplaced[0].tolist() == [2, 1, 0, 0]
    assert sol.placed[2].tolist() == [1, 0, 0, 0]


def test_a_full_shelter_is_no_capacity_and_carries_nobody():
    inst = instance([[3], [2]], [0, 2], [(0, 0, 10), (1, 0, 10), (1, 1, 50)])
    sol = solve(inst)
    assert sol.flow.tolist() == [0, 0, 2]
    assert sol.reason == [NO_CAPACITY, None]
    assert_consistent(inst, sol)


def test_ties_give_the_one_optimal_cost():
    inst = instance([[4], [4]], [3, 3, 10], [(0, 0, 7), (0, 1, 7), (1, 0, 7), (1, 1, 7),
                                             (1, 2, 8)])
    sol = solve(inst)
    assert sol.placed.sum() == 8
    assert sol.objective_person_s == 6 * 7 + 2 * 8
    assert_consistent(inst, sol)


def test_zero_demand_and_zero_capacity_give_an_empty_plan():
    for inst in (instance([[0, 0, 0, 0]], [5], [(0, 0, 1)]),
                 instance([[5]], [0], [(0, 0, 1)]),
                 instance([], [], []),
                 instance([[1]], [], [])):
        sol = solve(inst)
        assert sol.placed.sum() == 0
        assert sol.objective_person_s == 0
        assert_consistent(inst, sol)


def test_large_numbers_keep_an_exact_integer_objective():
    people = 3_000_000
    inst = instance([[people, people]], [people, 2 * people], [(0, 0, 7200), (0, 1, 7199)])
    sol = solve(inst)
    assert sol.placed.tolist() == [[people, people, 0, 0]]
    assert sol.objective_person_s == 2 * people * 7199
    assert isinstance(sol.objective_person_s, int)


def test_whole_seconds_given_as_floats_are_accepted():
    inst = Instance(np.array([[2.0, 0, 0, 0]]), np.array([5.0]), np.array([0]), np.array([0]),
                    np.array([12.0]))
    sol = solve(inst)
    assert sol.objective_person_s == 24
    assert sol.flow.dtype == np.int64


# --- against the independent LP ------------------------------------------------------------------


@st.composite
def instances(draw) -> Instance:
    """Small instances with short or ample capacity, lonely villages and shelters, ties, and
    (sometimes) millions of people."""
    n_v, n_s = draw(st.integers(0, 6)), draw(st.integers(0, 5))
    scale = draw(st.sampled_from([1, 1, 1_000, 1_000_000]))
    people = st.integers(0, 20).map(lambda p: p * scale)
    demand = draw(st.lists(st.lists(people, min_size=CLASSES, max_size=CLASSES),
                           min_size=n_v, max_size=n_v))
    # Short capacity (a few places) as often as ample.
    places = draw(st.sampled_from([10, 60]))
    capacity = draw(st.lists(st.integers(0, places).map(lambda p: p * scale),
                             min_size=n_s, max_size=n_s))
    travel = draw(st.sampled_from([st.integers(0, 3), st.integers(0, 7200)]))
    arcs = [(v, s, draw(travel)) for v in range(n_v) for s in range(n_s)
            if draw(st.integers(0, 2)) > 0]
    return instance(demand, capacity, arcs)


@settings(max_examples=120, deadline=None)
@given(instances())
def test_matches_the_lexicographic_lp(inst: Instance):
    sol = solve(inst)
    assert_consistent(inst, sol)
    totals, cost = lexicographic_lp(inst)
    placed = sol.placed.sum(axis=0)
    for k in range(CLASSES):
        assert placed[k] == pytest.approx(totals[k], rel=1e-9, abs=1e-6)
    assert sol.objective_person_s == pytest.approx(cost, rel=1e-6, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(instances(), st.booleans())
def test_together_keeps_villages_whole_and_never_beats_the_exact_plan(inst: Instance,
                                                                      guided: bool):
    exact = solve(inst)
    together = solve_together(inst, guide=exact if guided else None)
    assert_consistent(inst, together)
    used = np.zeros(len(inst.demand), np.int64)
    np.add.at(used, inst.arc_village, together.flow > 0)
    assert (used <= 1).all()
    assert ((together.by_class > 0).sum(axis=0) <= (together.flow > 0).sum()).all()
    # Lexicographically never ahead of the exact plan, and on the same people never cheaper.
    exact_totals = exact.placed.sum(axis=0).tolist()
    together_totals = together.placed.sum(axis=0).tolist()
    assert together_totals <= exact_totals
    if together_totals == exact_totals:
        assert together.objective_person_s >= exact.objective_person_s


# --- together, by hand ---------------------------------------------------------------------------


def test_together_gives_up_people_rather_than_split_a_village():
    inst = instance([[10]], [6, 6], [(0, 0, 10), (0, 1, 20)])
    assert solve(inst).placed.sum() == 10
    together = solve_together(inst)
    assert together.placed.tolist() == [[6, 0, 0, 0]]
    assert together.flow.tolist() == [6, 0]
    assert together.reason == [NO_CAPACITY]


def test_together_places_class_1_everywhere_before_class_2():
    # Village 0's class 2 is large and near; village 1's class 1 must still get its places.
    inst = instance([[1, 8], [4]], [10], [(0, 0, 10), (1, 0, 90)])
    together = solve_together(inst)
    assert together.placed.tolist() == [[1, 5, 0, 0], [4, 0, 0, 0]]


def test_together_moves_a_village_to_keep_it_whole():
    # Class 1 alone fits the near shelter; with its class 2 the village needs the far one.
    inst = instance([[2, 5], [3]], [5, 8], [(0, 0, 10), (0, 1, 40), (1, 0, 30)])
    together = solve_together(inst)
    assert together.placed.tolist() == [[2, 5, 0, 0], [3, 0, 0, 0]]
    assert together.flow.tolist() == [0, 7, 3]
    assert together.objective_person_s == 7 * 40 + 3 * 30


def test_together_trades_shelters_when_both_trips_get_shorter_overall():
    # Largest first puts village 0 in shelter 0 and leaves village 1 the far shelter 1; trading
    # costs village 0 two seconds a head and saves village 1 eighty-nine.
    inst = instance([[6], [5]], [6, 6], [(0, 0, 10), (0, 1, 12), (1, 0, 11), (1, 1, 100)])
    together = solve_together(inst)
    assert together.flow.tolist() == [0, 6, 5, 0]
    assert together.objective_person_s == 6 * 12 + 5 * 11
    assert solve(inst).objective_person_s == 1 * 10 + 5 * 12 + 5 * 11


def test_together_guided_by_the_split_plan_tries_its_shelters_first():
    # Alone, village 0 (the largest) takes its nearest shelter 0 and crowds out villages 1 and 2,
    # which have no other; the split plan sends village 0 to shelter 1, so everyone fits.
    inst = instance([[4], [3], [3]], [6, 4],
                    [(0, 0, 10), (0, 1, 11), (1, 0, 10), (2, 0, 10)])
    exact = solve(inst)
    assert exact.flow.tolist() == [0, 4, 3, 3]
    assert solve_together(inst).placed[:, 0].tolist() == [4, 2, 0]
    guided = solve_together(inst, guide=exact)
    assert guided.flow.tolist() == [0, 4, 3, 3]
    assert guided.objective_person_s == exact.objective_person_s


def test_together_refuses_a_guide_of_another_instance():
    inst = instance([[4]], [4], [(0, 0, 10)])
    other = solve(instance([[4]], [4, 4], [(0, 0, 10), (0, 1, 20)]))
    with pytest.raises(SolverInputError, match="guide has 2 arcs, the instance 1"):
        solve_together(inst, guide=other)


def test_together_equals_exact_when_each_nearest_shelter_has_room():
    inst = instance([[3, 4], [5], [0, 0, 2, 2]], [20, 20],
                    [(0, 0, 10), (0, 1, 30), (1, 1, 5), (1, 0, 50), (2, 0, 8)])
    exact, together = solve(inst), solve_together(inst)
    assert together.objective_person_s == exact.objective_person_s == 7 * 10 + 5 * 5 + 4 * 8
    assert (together.placed == exact.placed).all()


# --- bad input -----------------------------------------------------------------------------------


def raw(demand, capacity, village, shelter, travel) -> Instance:
    """An Instance of whatever arrays it is given, unchecked."""
    return Instance(*(np.asarray(x) for x in (demand, capacity, village, shelter, travel)))


@pytest.mark.parametrize(("bad", "named"), [
    (raw([[1, -2, 0, 0], [0, 0, 0, -1]], [5], [0], [0], [1]),
     ["village 0 class 2: demand -2", "village 1 class 4: demand -1"]),
    (raw([[1, 2.5, 0, 0]], [5], [0], [0], [1]), ["village 0 class 2: demand 2.5 is not whole"]),
    (raw([[1, np.nan, 0, 0]], [5], [0], [0], [1]), ["village 0 class 2: demand nan"]),
    (raw([[1, 0, 0, 0]], [5, -3, 1.5], [0], [0], [1]),
     ["shelter 1: capacity -3 is negative", "shelter 2: capacity 1.5 is not whole"]),
    (raw([[1, 0, 0, 0]], [5], [0, 3, -1], [0, 0, 0], [1, 1, 1]),
     ["arc 1: unknown village 3", "arc 2: unknown village -1"]),
    (raw([[1, 0, 0, 0]], [5], [0, 0], [0, 7], [1, 1]), ["arc 1: unknown shelter 7"]),
    (raw([[1, 0, 0, 0]], [5, 5, 5, 5], [0, 0, 0, 0], [0, 1, 2, 3], [np.inf, -4, 2.5, 10**7]),
     ["arc 0: travel_s inf is not finite", "arc 1: travel_s -4", "arc 2: travel_s 2.5 is not whole",
      "arc 3: travel_s 10000000 exceeds"]),
    (raw([[1, 0, 0, 0]], [5, 5], [0, 0, 0], [1, 0, 1], [1, 2, 3]),
     ["arc 2: repeats village 0 → shelter 1 (arc 0)"]),
    (raw([[1, 0, 0]], [5], [0], [0], [1]), ["demand must have 4 classes"]),
    (raw([1, 0, 0, 0], [5], [0], [0], [1]), ["demand must have 2 dimension(s)"]),
    (raw([["a", 0, 0, 0]], [5], [0], [0], [1]), ["demand must be numbers"]),
    (raw([[1, 0, 0, 0]], [5], [0, 0], [0], [1]), ["differ in length (2, 1, 1)"]),
    (raw([[MAX_PEOPLE, 1, 0, 0]], [MAX_PEOPLE + 1], [0], [0], [1]),
     ["total demand 1,000,000,000,001 exceeds", "total capacity 1,000,000,000,001 exceeds"]),
])
def test_bad_input_names_every_bad_row(bad: Instance, named: list[str]):
    for entry in (solve, solve_together):
        with pytest.raises(SolverInputError) as caught:
            entry(bad)
        for text in named:
            assert text in str(caught.value)
        assert len(caught.value.problems) == len(named)


def test_travel_at_the_limit_is_accepted():
    sol = solve(raw([[1, 0, 0, 0]], [1], [0], [0], [MAX_TRAVEL_S]))
    assert sol.objective_person_s == MAX_TRAVEL_S


def test_a_long_list_of_problems_is_cut_in_the_message_but_kept_whole():
    bad = raw(-np.ones((30, CLASSES)), [1], [], [], [])
    with pytest.raises(SolverInputError) as caught:
        solve(bad)
    assert len(caught.value.problems) == 120
    assert str(caught.value).endswith("; and 70 more")
    assert "village 29 class 4" in caught.value.problems[-1]


@settings(max_examples=80, deadline=None)
@given(instances())
def test_solving_part_by_part_is_as_exact_as_the_whole(inst: Instance):
    whole, parts = solve(inst), solve_parts(inst)
    assert_consistent(inst, parts)
    assert (parts.placed.sum(axis=0) == whole.placed.sum(axis=0)).all()
    assert parts.objective_person_s == whole.objective_person_s
    assert parts.reason == whole.reason
    covered = sorted(int(a) for _, _, arcs in split(inst) for a in arcs)
    assert covered == list(range(len(inst.arc_village)))


def test_an_unchanged_part_keeps_its_plan():
    # Two villages tie between two shelters in part A; part B is elsewhere. Changing B must
    # not reshuffle A (same answer from the memo), and the memo is keyed by content.
    a = [(0, 0, 100), (0, 1, 100), (1, 0, 100), (1, 1, 100)]
    b = [(2, 2, 50)]
    first = instance([[0, 10], [0, 10], [0, 5]], [10, 10, 5], a + b)
    memo: dict = {}
    before = solve_parts(first, memo=memo)
    changed = instance([[0, 10], [0, 10], [0, 5]], [10, 10, 2], a + b)
    after = solve_parts(changed, memo=memo)
    assert (after.flow[:4] == before.flow[:4]).all()
    assert after.unplaced[2].sum() == 3 and after.reason[2] == NO_CAPACITY
    assert len(memo) == 3  # A once, B twice (its content changed)
