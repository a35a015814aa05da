"""Evacuation assignment, pure and exact (DESIGN §5 "Evacuation (contract)", "Objective, exactly").

Villages have people to move in four priority classes, shelters have available capacity, and each
candidate arc (village, shelter, travel_s) is a pair reachable within the limit. Integer people,
any split: first place as many class-1 people as possible, then (keeping that) class 2, then 3,
then 4; among all such plans minimise Σ people × travel_s. Nobody is hidden: every person is placed
or unplaced, a village's unplaced people with reason `no_route` (it has no candidate arc at all) or
`no_capacity` (it has candidates, but they are full).

Method and why it is exact. Let T_k be the maximum flow source → village → shelter → sink when
village v supplies its people of classes 1..k (arc capacities: Σ_{c≤k} d[v,c] into v, cap[s] out of
s, candidate arcs unbounded); call P_k = classes 1..k.
1. No plan places more than T_k people of P_k: those people alone form a flow of that network.
2. One plan reaches every T_k at once. Give each (village, class) its own source arc, capacity
   d[v,c] (same max-flow values). Take a maximum flow with the arcs of P_{k-1} open, open those of
   class k, and augment to a maximum flow. An augmenting path is simple, so it leaves the source
   once and never comes back: no source arc loses flow, so classes 1..k-1 keep their totals while
   the total reaches T_k. By induction a plan places exactly t_k = T_k − T_{k-1} of class k, all k.
3. By 1 and 2, step by step, the lexicographic maximum places exactly t_k of class k, and the plans
   that do so are exactly the feasible plans with those class totals. (This is Edmonds' greedy
   algorithm on the polymatroid of placeable (village, class) amounts.)
4. One min-cost flow then optimises over exactly that set: class node c supplies t_k, c → v with
   capacity d[v,c], v → s with unit cost travel_s, s → sink with capacity cap[s]. All capacities
   and supplies are integers, so an integral optimum exists (network matrices are totally
   unimodular) and OR-Tools' cost-scaling push-relabel returns one; its cost is the plan's
   Σ people × travel_s.

Travel times are whole seconds (int64). OR-Tools needs integer costs, and rounding inside the
solver would make it optimise one objective and report another; the caller rounds the road times
once at the boundary (±0.5 s per route) and the plan is then exactly optimal for the numbers it
reports. Bounds keep int64 safe: total people and total capacity ≤ 10^12 and travel ≤ 10^6 s, so
Σ people × travel ≤ 10^18 < 2^63, and OR-Tools' cost scaling (unit cost × (nodes + 1)) fits.

Which class rides which arc does not change the objective (travel does not depend on class); the
decomposition puts each village's class 1 on its nearest used arcs, then class 2, and so on.

`solve_together`, the `together` mode, keeps each village at ONE shelter with all its classes. That
is bin packing (NP-hard), so it is a heuristic, in two steps:
1. Class by class, 1 to 4, largest groups first (first-fit decreasing), each village goes to, or
   stays at, the first of its shelters with room for the whole rest of the village, else for this
   class, else the one that takes most of it. "First" is nearest first or, given the split plan as
   `guide`, the shelters that plan fills most from the village first. A village moves, with the
   people it has placed, only where more of it fits; every class-k group has its turn before any
   of class k+1.
2. Until nothing changes (at most IMPROVE_PASSES): each village moves to a nearer shelter with room
   for all it has placed, or trades shelters with another village when both fit and their trips
   together shorten. Neither changes who is placed; both shorten the objective.
It never places lexicographically more than `solve`, nor, placing the same people, at lower cost.
Its gap to `solve` (objectives and people placed) is for the caller to report.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import max_flow, min_cost_flow
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

CLASSES = 4
NO_ROUTE = "no_route"
NO_CAPACITY = "no_capacity"
MAX_PEOPLE = 10**12
MAX_TRAVEL_S = 10**6
# A message names this many problems; `SolverInputError.problems` keeps them all.
MESSAGE_PROBLEMS = 50
IMPROVE_PASSES = 10
# solve_parts' memo is cleared beyond this many parts (a prefecture has a few hundred).
MEMO_PARTS = 20_000


class SolverInputError(ValueError):
    """An instance the solver refuses; the message names each bad village, shelter or arc."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(problems[:MESSAGE_PROBLEMS])
        more = len(problems) - MESSAGE_PROBLEMS
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class Instance:
    """People per village and class, shelter capacities, candidate arcs with whole-second travel."""

    demand: np.ndarray        # int64 (n_villages, 4): people to move per priority class
    capacity: np.ndarray      # int64 (n_shelters,): available places of usable shelters
    arc_village: np.ndarray   # int32 (n_arcs,): index into demand's rows
    arc_shelter: np.ndarray   # int32 (n_arcs,): index into capacity
    arc_travel_s: np.ndarray  # int64 (n_arcs,): whole seconds, 0..MAX_TRAVEL_S; one arc per pair


@dataclass(frozen=True)
class Solution:
    """People per arc (and per class), placed and unplaced per village, and the objective."""

    flow: np.ndarray          # int64 (n_arcs,): people on each arc
    by_class: np.ndarray      # int64 (n_arcs, 4): the same people by class (rows sum to flow)
    placed: np.ndarray        # int64 (n_villages, 4)
    unplaced: np.ndarray      # int64 (n_villages, 4)
    reason: list[str | None]  # per village: None, NO_ROUTE or NO_CAPACITY
    objective_person_s: int   # Σ flow × travel_s
    solve_ms: float


# --- checking ------------------------------------------------------------------------------------


def _numbers(name: str, raw: object, ndim: int, problems: list[str]) -> np.ndarray | None:
    """`raw` as a numeric array of `ndim` dimensions, or None with a problem noted."""
    values = np.asarray(raw)
    if values.dtype.kind not in "iuf":
        problems.append(f"{name} must be numbers, got {values.dtype}")
        return None
    if values.ndim != ndim:
        problems.append(f"{name} must have {ndim} dimension(s), got shape {values.shape}")
        return None
    return values


def _shown(value: float) -> str:
    """A number as people read it: 3 rather than 3.0, 2.5 and nan as they are."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _whole(values: np.ndarray, label: Callable[..., str], what: str,
           upper: int | None = None) -> list[str]:
    """Problems of entries that are not finite, whole and within 0..upper; label(i) names one."""
    floating = values.astype(np.float64)
    finite = np.isfinite(floating)
    whole = finite & (floating == np.floor(floating))
    checks = [(~finite, "is not finite"), (~whole, "is not whole"), (floating < 0, "is negative")]
    if upper is not None:
        checks.append((floating > upper, f"exceeds {upper:,}"))
    # One problem per entry, its first failing check, in row order.
    why = np.full(values.shape, "", dtype=object)
    for mask, text in reversed(checks):
        why[mask] = text
    return [f"{label(*index)}: {what} {_shown(values[index])} {why[index]}"
            for index in zip(*np.nonzero(why != ""), strict=True)]


def _check_indices(name: str, values: np.ndarray, size: int) -> list[str]:
    """Problems of arc endpoints that are not whole indices into a table of `size` rows."""
    kind = name.split("_")[1]
    bad = (values < 0) | (values >= size) | (values != np.floor(values))
    return [f"arc {i}: unknown {kind} {_shown(values[i])} (there are {size})"
            for i in np.flatnonzero(bad)]


def _check_pairs(village: np.ndarray, shelter: np.ndarray, n_shelters: int) -> list[str]:
    """Problems of arcs that repeat a (village, shelter) pair already given."""
    key = village.astype(np.int64) * max(n_shelters, 1) + shelter
    order = np.argsort(key, kind="stable")
    repeat = np.nonzero(key[order][1:] == key[order][:-1])[0]
    return [f"arc {order[i + 1]}: repeats village {village[order[i + 1]]} → shelter "
            f"{shelter[order[i + 1]]} (arc {order[i]})" for i in repeat]


def _check_arcs(instance: Instance, n_villages: int, n_shelters: int,
                problems: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The arcs as int32/int32/int64 arrays, or None with the problems noted."""
    columns = [_numbers(name, getattr(instance, name), 1, problems)
               for name in ("arc_village", "arc_shelter", "arc_travel_s")]
    if any(column is None for column in columns):
        return None
    village, shelter, travel = columns
    if not len(village) == len(shelter) == len(travel):
        problems.append(f"arc_village, arc_shelter and arc_travel_s differ in length "
                        f"({len(village)}, {len(shelter)}, {len(travel)})")
        return None
    found = _check_indices("arc_village", village, n_villages)
    found += _check_indices("arc_shelter", shelter, n_shelters)
    found += _whole(travel, lambda i: f"arc {i}", "travel_s", MAX_TRAVEL_S)
    if not found:
        found = _check_pairs(village, shelter, n_shelters)
    problems += found
    if found:
        return None
    return village.astype(np.int32), shelter.astype(np.int32), travel.astype(np.int64)


def checked(instance: Instance) -> Instance:
    """The instance with canonical dtypes, or SolverInputError naming every bad row."""
    problems: list[str] = []
    demand = _numbers("demand", instance.demand, 2, problems)
    if demand is not None and demand.shape[1] != CLASSES:
        problems.append(f"demand must have {CLASSES} classes per village, got shape {demand.shape}")
        demand = None
    capacity = _numbers("capacity", instance.capacity, 1, problems)
    if demand is not None:
        problems += _whole(demand, lambda v, c: f"village {v} class {c + 1}", "demand")
    if capacity is not None:
        problems += _whole(capacity, lambda s: f"shelter {s}", "capacity")
    if demand is None or capacity is None:
        raise SolverInputError(problems)
    arcs = _check_arcs(instance, len(demand), len(capacity), problems)
    if problems or arcs is None:
        raise SolverInputError(problems)
    # Python ints: an int64 sum could wrap before the comparison.
    for name, total in (("demand", sum(map(int, demand.ravel()))),
                        ("capacity", sum(map(int, capacity)))):
        if total > MAX_PEOPLE:
            problems.append(f"total {name} {total:,} exceeds {MAX_PEOPLE:,} people")
    if problems:
        raise SolverInputError(problems)
    return Instance(demand.astype(np.int64), capacity.astype(np.int64), *arcs)


# --- exact split mode ----------------------------------------------------------------------------


def _class_totals(inst: Instance, live: np.ndarray) -> np.ndarray:
    """t_k, the people of class k in the lexicographic maximum (steps 1-3 of the module doc)."""
    n_v, n_s = len(inst.demand), len(inst.capacity)
    source, sink, shelter0 = n_v + n_s, n_v + n_s + 1, n_v
    villages = np.arange(n_v, dtype=np.int32)
    people = inst.demand.sum(axis=1)
    graph = max_flow.SimpleMaxFlow()
    source_arcs = graph.add_arcs_with_capacity(
        np.full(n_v, source, np.int32), villages, np.zeros(n_v, np.int64))
    graph.add_arcs_with_capacity(
        inst.arc_village[live], inst.arc_shelter[live] + shelter0, people[inst.arc_village[live]])
    graph.add_arcs_with_capacity(
        np.arange(n_s, dtype=np.int32) + shelter0, np.full(n_s, sink, np.int32), inst.capacity)
    cumulative = np.cumsum(inst.demand, axis=1)
    reached = np.zeros(CLASSES + 1, np.int64)
    for k in range(CLASSES):
        if not inst.demand[:, k].any():
            reached[k + 1] = reached[k]  # nobody of this class: nothing to solve
            continue
        graph.set_arcs_capacity(source_arcs, cumulative[:, k])
        status = graph.solve(source, sink)
        if status != graph.OPTIMAL:
            raise RuntimeError(f"max flow for classes 1..{k + 1} ended with {status}")
        reached[k + 1] = graph.optimal_flow()
    return np.diff(reached)


def _cheapest_plan(inst: Instance, live: np.ndarray,
                   totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Placed people per (village, class) and per arc at minimum cost with these class totals."""
    n_v, n_s = len(inst.demand), len(inst.capacity)
    village0, shelter0 = CLASSES, CLASSES + n_v
    sink = shelter0 + n_s
    graph = min_cost_flow.SimpleMinCostFlow()
    cls, vil = np.nonzero(inst.demand.T)  # class-major: one arc per (class, village) with people
    class_arcs = graph.add_arcs_with_capacity_and_unit_cost(
        cls.astype(np.int32), (vil + village0).astype(np.int32), inst.demand[vil, cls],
        np.zeros(len(cls), np.int64))
    people = inst.demand.sum(axis=1)
    travel_arcs = graph.add_arcs_with_capacity_and_unit_cost(
        inst.arc_village[live] + village0, inst.arc_shelter[live] + shelter0,
        people[inst.arc_village[live]], inst.arc_travel_s[live])
    graph.add_arcs_with_capacity_and_unit_cost(
        np.arange(n_s, dtype=np.int32) + shelter0, np.full(n_s, sink, np.int32), inst.capacity,
        np.zeros(n_s, np.int64))
    graph.set_nodes_supplies(np.r_[np.arange(CLASSES), sink].astype(np.int32),
                             np.r_[totals, -totals.sum()].astype(np.int64))
    status = graph.solve()
    if status != graph.OPTIMAL:
        raise RuntimeError(f"min-cost flow ended with {status}")
    placed = np.zeros_like(inst.demand)
    placed[vil, cls] = graph.flows(class_arcs)
    flow = np.zeros(len(inst.arc_village), np.int64)
    flow[live] = graph.flows(travel_arcs)
    return placed, flow


def _by_class(inst: Instance, flow: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """Each arc's people by class: per village, class 1 on the nearest arcs, then 2, 3, 4."""
    used = np.flatnonzero(flow)  # at most villages + shelters arcs carry anyone
    order = used[np.lexsort((inst.arc_travel_s[used], inst.arc_village[used]))]
    village, people = inst.arc_village[order], flow[order]
    # Each used arc is an interval of its village's placed people, nearest arc first; so is each
    # class, class 1 first: an arc's people of class c are the overlap of the two intervals.
    ends = np.cumsum(people)
    first = np.r_[True, village[1:] != village[:-1]] if len(village) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, ends - people, 0))
    arc_lo, arc_hi = ends - people - start, ends - start
    class_hi = np.cumsum(placed, axis=1)[village]
    class_lo = class_hi - placed[village]
    overlap = np.minimum(arc_hi[:, None], class_hi) - np.maximum(arc_lo[:, None], class_lo)
    by_class = np.zeros((len(flow), CLASSES), np.int64)
    by_class[order] = np.maximum(overlap, 0)
    return by_class


def _solution(inst: Instance, flow: np.ndarray, by_class: np.ndarray, placed: np.ndarray,
              started: float) -> Solution:
    """The Solution of these flows: unplaced people with their reason, and the objective."""
    unplaced = inst.demand - placed
    has_arc = np.zeros(len(inst.demand), bool)
    has_arc[inst.arc_village] = True
    reason: list[str | None] = [
        None if not left else (NO_CAPACITY if arc else NO_ROUTE)
        for left, arc in zip(unplaced.sum(axis=1).tolist(), has_arc.tolist(), strict=True)]
    objective = int(np.dot(flow, inst.arc_travel_s)) if len(flow) else 0
    return Solution(flow, by_class, placed, unplaced, reason, objective,
                    (time.perf_counter() - started) * 1000.0)


def _live_arcs(inst: Instance) -> np.ndarray:
    """Arcs that can carry anyone: from a village with people to a shelter with room."""
    people = inst.demand.sum(axis=1)
    return np.flatnonzero((people[inst.arc_village] > 0) & (inst.capacity[inst.arc_shelter] > 0))


def solve(instance: Instance) -> Solution:
    """The exact plan, people split freely: lexicographic classes, then least person-seconds."""
    started = time.perf_counter()
    inst = checked(instance)
    live = _live_arcs(inst)
    totals = _class_totals(inst, live) if len(live) else np.zeros(CLASSES, np.int64)
    if totals.any():
        placed, flow = _cheapest_plan(inst, live, totals)
    else:
        placed, flow = np.zeros_like(inst.demand), np.zeros(len(inst.arc_village), np.int64)
    return _solution(inst, flow, _by_class(inst, flow, placed), placed, started)


# --- together mode (heuristic) -------------------------------------------------------------------


@dataclass
class _Packing:
    """The together heuristic's state: each village's shelter, people placed, room left."""

    inst: Instance
    arcs_of: list[np.ndarray]  # per village, its arc indices, preferred (nearest) first
    arc_of: np.ndarray         # per village: the arc to its shelter, -1 while none
    arc_at: np.ndarray         # (village, shelter) → arc index, -1 for no arc
    placed: np.ndarray
    room: np.ndarray

    def choose(self, v: int, c: int) -> int:
        """Village v's shelter (as an arc) for its class-c people, or -1: the first with room for
        the rest of the village, else for this class, else the one that takes most of it."""
        arcs, current = self.arcs_of[v], int(self.arc_of[v])
        so_far = int(self.placed[v].sum())
        # Room each shelter would have for v, counting the places v holds already.
        room = self.room[self.inst.arc_shelter[arcs]] + np.where(arcs == current, so_far, 0)
        for want in (so_far + int(self.inst.demand[v, c:].sum()),
                     so_far + int(self.inst.demand[v, c])):
            hits = np.flatnonzero(room >= want)
            if len(hits):
                return int(arcs[hits[0]])
        best = int(np.argmax(room))  # the first, i.e. preferred, of equals
        if room[best] <= so_far:  # nowhere takes more of v than it has now
            return current
        return int(arcs[best])

    def move(self, v: int, arc: int) -> None:
        """Take village v, with everyone placed so far, to the shelter of `arc`."""
        people = int(self.placed[v].sum())
        if self.arc_of[v] >= 0:
            self.room[self.inst.arc_shelter[self.arc_of[v]]] += people
        self.room[self.inst.arc_shelter[arc]] -= people
        self.arc_of[v] = arc

    def place_class(self, v: int, c: int) -> None:
        """Place village v's class-c people, moving the village where more of it fits."""
        need = int(self.inst.demand[v, c])
        current = int(self.arc_of[v])
        if current < 0 or self.room[self.inst.arc_shelter[current]] < need:
            arc = self.choose(v, c)
            if arc >= 0 and arc != current:
                self.move(v, arc)
        if self.arc_of[v] < 0:
            return
        shelter = self.inst.arc_shelter[self.arc_of[v]]
        take = min(need, int(self.room[shelter]))
        self.placed[v, c] = take
        self.room[shelter] -= take

    def move_nearer(self) -> bool:
        """Take each village (largest first) to the nearest shelter nearer than its own with room
        for all it has placed; whether any moved."""
        people = self.placed.sum(axis=1)
        travel = self.inst.arc_travel_s
        moved = False
        for v in np.argsort(-people, kind="stable").tolist():
            current = int(self.arc_of[v])
            if current < 0 or not people[v]:
                continue
            arcs = self.arcs_of[v]
            nearer = arcs[(travel[arcs] < travel[current])
                          & (self.room[self.inst.arc_shelter[arcs]] >= people[v])]
            if len(nearer):
                self.move(v, int(nearer[np.argmin(travel[nearer])]))
                moved = True
        return moved

    def swap(self) -> bool:
        """Let each village (largest first) trade shelters with the one village whose trade
        shortens the two trips most, where both fit; whether any traded."""
        travel = self.inst.arc_travel_s
        if not len(travel):
            return False
        people = self.placed.sum(axis=1)
        housed = (self.arc_of >= 0) & (people > 0)  # arc_of -1 reads the last arc, masked here
        at = np.where(housed, self.inst.arc_shelter[self.arc_of], 0)  # each village's shelter
        trip = np.where(housed, travel[self.arc_of], 0)
        nearest = np.array([travel[arcs].min() if len(arcs) else 0 for arcs in self.arcs_of])
        by_shelter = np.ascontiguousarray(self.arc_at.T)
        traded = False
        for v in np.argsort(-people, kind="stable").tolist():
            if not housed[v] or trip[v] == nearest[v]:
                continue  # v cannot gain; a trade that only its partner gains, the partner finds
            here = at[v]
            v_there, w_here = self.arc_at[v, at], by_shelter[here]
            ok = housed & (at != here) & (v_there >= 0) & (w_here >= 0)
            ok &= (self.room[at] + people >= people[v]) & (self.room[here] + people[v] >= people)
            gain = people[v] * (trip[v] - travel[v_there]) + people * (trip - travel[w_here])
            w = int(np.argmax(np.where(ok, gain, 0)))
            if ok[w] and gain[w] > 0:
                self.room[here] += people[v] - people[w]
                self.room[at[w]] += people[w] - people[v]
                self.arc_of[v], self.arc_of[w] = v_there[w], w_here[w]
                at[v], at[w] = at[w], here
                trip[v], trip[w] = travel[v_there[w]], travel[w_here[w]]
                traded = True
        return traded


def solve_together(instance: Instance, guide: Solution | None = None) -> Solution:
    """Heuristic plan keeping each village whole at ONE shelter, classes in priority order."""
    started = time.perf_counter()
    inst = checked(instance)
    n_v, n_a = len(inst.demand), len(inst.arc_village)
    if guide is not None and len(guide.flow) != n_a:
        raise SolverInputError([f"guide has {len(guide.flow)} arcs, the instance {n_a}"])
    # Each village tries its shelters nearest first or, given the exact split plan, those that
    # take most of its people there first: the split plan knows where room is contested.
    split = np.zeros(n_a, np.int64) if guide is None else guide.flow
    order = np.lexsort((inst.arc_shelter, inst.arc_travel_s, -split, inst.arc_village))
    cuts = np.searchsorted(inst.arc_village[order], np.arange(1, n_v))
    arc_at = np.full((n_v, len(inst.capacity)), -1, np.int32)  # 2.7 MB for 1,106 × 618
    arc_at[inst.arc_village, inst.arc_shelter] = np.arange(n_a)
    packing = _Packing(inst, np.split(order, cuts), np.full(n_v, -1), arc_at,
                       np.zeros_like(inst.demand), inst.capacity.copy())
    # Class by class, so no class-2 person takes a place a class-1 person could have had; within a
    # class, largest groups first (first-fit decreasing: small groups fill the gaps left).
    for c in range(CLASSES):
        need = inst.demand[:, c]
        for v in np.lexsort((np.arange(n_v), -need)).tolist():
            if need[v] > 0 and len(packing.arcs_of[v]):
                packing.place_class(v, c)
    # Every move and trade keeps everyone placed and shortens trips, so this ends; the cap bounds
    # the time (1,106 villages × 618 shelters settled in 4-10 passes of ~0.1 s).
    for _ in range(IMPROVE_PASSES):
        if not (packing.move_nearer() | packing.swap()):
            break
    flow = np.zeros(n_a, np.int64)
    by_class = np.zeros((n_a, CLASSES), np.int64)
    chosen = np.flatnonzero(packing.arc_of >= 0)
    arcs = packing.arc_of[chosen]
    by_class[arcs] = packing.placed[chosen]
    flow[arcs] = packing.placed[chosen].sum(axis=1)
    return _solution(inst, flow, by_class, packing.placed, started)


# --- independent parts ---------------------------------------------------------------------------

def split(instance: Instance) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The instance's independent parts, each (villages, shelters, arcs) as sorted indices: the
    connected parts of the village–shelter arc graph (villages without arcs belong to none)."""
    inst = checked(instance)
    n_v, n_s = len(inst.demand), len(inst.capacity)
    if not len(inst.arc_village):
        return []
    graph = csr_matrix((np.ones(len(inst.arc_village)),
                        (inst.arc_village, n_v + inst.arc_shelter)), shape=(n_v + n_s,) * 2)
    _, labels = connected_components(graph, directed=False)
    arc_label = labels[inst.arc_village]
    order = np.argsort(arc_label, kind="stable")
    bounds = np.flatnonzero(np.diff(arc_label[order])) + 1
    parts = []
    for arcs in np.split(order, bounds):
        arcs = np.sort(arcs)
        parts.append((np.unique(inst.arc_village[arcs]), np.unique(inst.arc_shelter[arcs]), arcs))
    return parts


def _part_key(sub: Instance, method: str) -> bytes:
    digest = hashlib.blake2b(method.encode(), digest_size=16)
    for array in (sub.demand, sub.capacity, sub.arc_village, sub.arc_shelter, sub.arc_travel_s):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.digest()


def solve_parts(instance: Instance, method: Callable[[Instance], Solution] = solve,
                memo: dict | None = None) -> Solution:
    """The plan as the union of each independent part's plan (`split`). Exact with `solve`:
    parts share no village and no shelter, so their class totals, and their costs, add up.
    `memo` (part content → its solution) gives an unchanged part the same answer as last time,
    at no cost: a road closed in one township does not reshuffle the others' equally good
    assignments (measured: one closure re-planned from scratch moved 409 villages of other
    townships between equally optimal shelters)."""
    started = time.perf_counter()
    inst = checked(instance)
    flow = np.zeros(len(inst.arc_village), np.int64)
    by_class = np.zeros((len(inst.arc_village), CLASSES), np.int64)
    placed = np.zeros_like(inst.demand)
    name = getattr(method, "__qualname__", repr(method))
    for villages, shelters, arcs in split(inst):
        v_index = np.full(len(inst.demand), -1, np.int64)
        v_index[villages] = np.arange(len(villages))
        s_index = np.full(len(inst.capacity), -1, np.int64)
        s_index[shelters] = np.arange(len(shelters))
        sub = Instance(inst.demand[villages], inst.capacity[shelters],
                       v_index[inst.arc_village[arcs]].astype(np.int32),
                       s_index[inst.arc_shelter[arcs]].astype(np.int32), inst.arc_travel_s[arcs])
        key = _part_key(sub, name) if memo is not None else None
        part = memo.get(key) if memo is not None else None
        if part is None:
            part = method(sub)
            if memo is not None:
                if len(memo) > MEMO_PARTS:
                    memo.clear()
                memo[key] = part
        flow[arcs] = part.flow
        by_class[arcs] = part.by_class
        placed[villages] = part.placed
    return _solution(inst, flow, by_class, placed, started)
