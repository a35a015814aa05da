"""Benchmark: evacuation plans end to end (issue #20, "Performance").

In this process, on fresh data directories (SpatiaLite by default; PostGIS on
RESCUEHUB_TEST_DATABASE_URL's server with --db postgis|both), each plan through
dispatch.evacuation.planner.make_plan: read inputs, route, solve, store the version, send the
`plan` event. The road graph is built by the first plan of a data directory ("cold", shown apart);
the timed plans reuse it, as the hub's planner thread does.

The scenario, at both scales, is a drill (levels by hand): every village WITHOUT a shelter at
`evacuate`, every village holding a shelter at `prepare`. "Every village at evacuate" would plan
nothing: by the contract a shelter in a village at `evacuate` is unusable, and every demo shelter
lies in a village, so no shelter would be usable and everyone would be `no_route`.

- township (`rescuehub demo`, 66 villages): end-to-end time, p50 and max over --runs plans
  (target p50 < 200 ms).
- prefecture (`rescuehub demo --scale prefecture`, 103 townships, 1,106 villages): the same
  (target p50 < 1.5 s), with the plan's own breakdown (route_ms, solve_ms, total_ms).
- at both scales, the plan's objective against an INDEPENDENT LP of the same instance
  (scipy.optimize.linprog, HiGHS, lexicographic stage by stage: max class 1, then class 2 with
  class 1 held, ..., then min Σ people × travel_s with every class total held), built from the
  plan's own numbers (villages' to_move, usable shelters' available) and every candidate arc
  (village, usable shelter) within evacuation.max_travel_min, recomputed as service.compute does
  (its network, inputs, access walks and maps.routing.reach_targets over the roads the plan lists
  open); the ratio must print 1.000000; and the LP's own time.
- prefecture: re-plans after --closures road closures in a row (trigger "road"), each closing,
  through the maps service as PATCH /api/v1/roads/{code} does, the open segment that carries the
  most people in the current plan (target p50 < 1 s); the first one's diff (rules.diff), with how
  many of its villages lie outside the closed road's road component (the optimum splits by
  component, so those are only other, equally good plans). The roads are opened again after.
- at both scales, the `together` mode: time, and its gap to the exact plan (objective, placed).

Run: .venv/bin/python bench/evacuation.py [--runs 10] [--scale township|prefecture|both]
     [--db spatialite|postgis|both] [--closures 5] [--keep]
Progress goes to stderr, the figures table to stdout. The machine's other load changes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ingest
from ingest import RESCUEHUB, ROOT, BenchError, Row, log, percentile, verdict

ingest.LOG_NAME = "evacuation"

TARGETS_MS = {"township": 200.0, "prefecture": 1500.0}
TARGET_ROAD_MS = 1000.0
TOGETHER_RUNS = 5
DEMO_ARGS = {"township": ("demo",), "prefecture": ("demo", "--scale", "prefecture")}


@dataclass
class Scale:
    """One data directory with its demo loaded, and the app bound to it."""

    label: str  # backend
    name: str  # township | prefecture
    env: dict
    app: object = None


# --- set-up -------------------------------------------------------------------------------------

def load_demo(scale: Scale) -> None:
    """`rescuehub demo` (prefecture: --scale prefecture) into the scale's data dir, its output
    shown as progress."""
    started = time.monotonic()
    proc = subprocess.Popen([RESCUEHUB, *DEMO_ARGS[scale.name]], env=scale.env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        log(f"{scale.label} {scale.name}: {line.rstrip()}")
    if proc.wait() != 0:
        raise BenchError(f"rescuehub demo failed: {' / '.join(lines[-5:])}")
    log(f"{scale.label} {scale.name}: demo loaded in {time.monotonic() - started:.1f} s")


def open_app(scale: Scale, stack: contextlib.ExitStack) -> None:
    from dispatch import create_app
    from dispatch.core.settings import load_settings

    scale.app = create_app(settings=load_settings(environ=scale.env))
    stack.callback(ingest._dispose, scale)


def scenario(scale: Scale) -> dict[str, str]:
    """The drill's levels: villages without a shelter at evacuate, those with one at prepare."""
    from sqlalchemy import select

    from dispatch.core.db import db
    from maps.models import Shelter, Village

    with scale.app.app_context():
        try:
            s = db.session
            villages = s.execute(select(Village.id, Village.code)).all()
            holding = set(s.scalars(select(Shelter.village_id)))
        finally:
            db.remove()
    # A shelter in a village at `evacuate` is unusable (DESIGN §5), so the villages holding
    # shelters stay at `prepare` (their vulnerable move, class 3) and keep their shelters usable.
    return {code: "prepare" if vid in holding else "evacuate" for vid, code in villages}


def plan(scale: Scale, levels: dict[str, str], *, mode: str = "split", trigger: str = "manual",
         ref: str = "bench") -> tuple[float, dict]:
    """One plan through the planner: (wall ms, stored body)."""
    from dispatch.core.db import db
    from dispatch.evacuation import planner

    with scale.app.app_context():
        try:
            started = time.perf_counter()
            version = planner.make_plan(scale.app, trigger=trigger, ref=ref, actor="bench",
                                        drill_levels=levels, mode=mode)
            wall = (time.perf_counter() - started) * 1000
            return wall, version.body
        finally:
            db.remove()


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):.0f} ms, max {max(values):.0f} ms"


def _parts(body: dict) -> str:
    m = body["metrics"]
    return f"route {m['route_ms']:.0f}, solve {m['solve_ms']:.0f}, compute {m['total_ms']:.0f}"


def _breakdown(walls: list[float], bodies: list[dict]) -> str:
    """Medians of the plan's own timing, the rest of compute (inputs, document) and the rest of
    the wall time (store, commit, event)."""
    def p50(values) -> float:
        return percentile(list(values), 0.5)

    m = [b["metrics"] for b in bodies]
    return (f"p50 route {p50(x['route_ms'] for x in m):.0f}, solve "
            f"{p50(x['solve_ms'] for x in m):.0f}, compute (total_ms) "
            f"{p50(x['total_ms'] for x in m):.0f} of which inputs+document "
            f"{p50(x['total_ms'] - x['route_ms'] - x['solve_ms'] for x in m):.0f}, store+event "
            f"{p50(w - x['total_ms'] for w, x in zip(walls, m, strict=True)):.0f} ms")


def describe(scale: Scale, levels: dict[str, str], body: dict) -> None:
    m = body["metrics"]
    usable = sum(1 for s in body["shelters"] if s["usable"])
    evacuate = sum(1 for lv in levels.values() if lv == "evacuate")
    log(f"{scale.label} {scale.name}: scenario: {evacuate} villages without a shelter at "
        f"evacuate, {len(levels) - evacuate} holding a shelter at prepare (a shelter in a "
        f"village at evacuate is unusable, so 'every village at evacuate' would leave no "
        f"shelter usable); {usable} of {len(body['shelters'])} shelters usable, "
        f"{'night' if body['night'] else 'day'} capacity")
    log(f"{scale.label} {scale.name}: plan: {m['to_move']:,} to move, {m['placed']:,} placed, "
        f"unplaced {m['unplaced']}, {len(body['assignments'])} assignments, max travel "
        f"{m['max_travel_s']} s, objective {body['objective_person_s']:,} person-s")


def timed_plans(scale: Scale, levels: dict[str, str], runs: int, mode: str = "split"):
    """A cold plan (builds the road graph) when none was made yet, then `runs` timed ones."""
    walls, bodies = [], []
    for i in range(runs):
        wall, body = plan(scale, levels, mode=mode)
        walls.append(wall)
        bodies.append(body)
        log(f"{scale.label} {scale.name}: {mode} plan {i + 1}/{runs}: {wall:.0f} ms "
            f"({_parts(body)})")
    return walls, bodies


# --- the independent LP ------------------------------------------------------------------------

def candidate_arcs(scale: Scale, levels: dict[str, str], body: dict):
    """Every (village row, usable shelter row, travel_s) within max_travel for the plan's own
    villages (to_move > 0) and usable shelters, as service.compute measures travel: its network
    and access walks, reach_targets over the roads the plan lists open, rounded once."""
    import numpy as np

    from dispatch.core.db import db
    from dispatch.evacuation import service
    from maps import routing

    cfg = scale.app.config["SETTINGS"].evacuation
    with scale.app.app_context():
        try:
            s = db.session
            net = service.network(s)
            inputs = service.read_inputs(s, net, levels)
        finally:
            db.remove()
    speed = cfg.access_speed_kmh
    v_nodes, v_access = service._access(
        net, service._lonlat(inputs.villages), speed)
    s_nodes, s_access = service._access(
        net, service._lonlat(inputs.shelters), speed)
    codes_v = [v["code"] for v in body["villages"]]
    codes_s = [s["code"] for s in body["shelters"]]
    if codes_v != [v.code for v in inputs.villages] or codes_s != [
            s.code for s in inputs.shelters]:
        raise BenchError("the plan's villages or shelters differ from the database's")
    ids = net.graph.node_ids
    if ([v["node"] for v in body["villages"]] != ids[v_nodes].tolist()
            or [s["node"] for s in body["shelters"]] != ids[s_nodes].tolist()):
        raise BenchError("the plan's road nodes differ from the ones recomputed here")
    closed = {r["code"] for r in body["closed_roads"]}
    open_segments = np.array([code not in closed for code in net.graph.codes])
    wanted = np.flatnonzero([sum(v["to_move"]) > 0 for v in body["villages"]])
    usable = np.flatnonzero([s["usable"] for s in body["shelters"]])
    limit_s = cfg.max_travel_min * 60.0
    reach = routing.reach_targets(net.graph, open_segments, s_nodes[usable], limit_s,
                                  sources=v_nodes[wanted])
    total = (reach.time_s + v_access[wanted][None, :]
             + s_access[usable][:, None])
    ok = np.isfinite(total) & (total <= limit_s)
    rows, cols = np.nonzero(ok)
    travel = np.rint(total[rows, cols]).astype(np.int64)
    return wanted, usable, cols, rows, travel


def lexicographic_lp(demand, capacity, arc_v, arc_s, travel) -> tuple[list[float], float, float]:
    """(class totals, min Σ people × travel_s, seconds) by staged HiGHS LPs over x[arc, class]:
    max class 1; max class 2 with class 1's total held; ...; then min person-seconds with every
    class total held. Columns only where the village has people of that class; stage k has only
    the columns of classes ≤ k (later classes only take room, so leaving them out loses
    nothing)."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.optimize import linprog

    started = time.perf_counter()
    n_v, n_s = demand.shape[0], len(capacity)
    arc, cls = np.nonzero(demand[arc_v] > 0)  # one column per (arc, class with people)
    b_ub = np.r_[demand.ravel(), capacity].astype(float)
    present = [k for k in range(4) if demand[:, k].any()]
    totals = [0.0] * 4
    fun = 0.0
    for stage in [*present, None]:  # None: the person-seconds stage
        top = 3 if stage is None else stage
        keep = np.flatnonzero(cls <= top)
        a, c, n = arc[keep], cls[keep], len(keep)
        cols, ones = np.arange(n), np.ones(n)
        a_ub = sp.vstack([
            sp.csr_matrix((ones, (arc_v[a] * 4 + c, cols)), shape=(n_v * 4, n)),
            sp.csr_matrix((ones, (arc_s[a], cols)), shape=(n_s, n))]).tocsr()
        held = [k for k in present if k < top or stage is None]
        a_eq = b_eq = None
        if held:
            on = np.isin(c, held)
            a_eq = sp.csr_matrix((ones[on], (np.searchsorted(held, c[on]), cols[on])),
                                 shape=(len(held), n))
            b_eq = [totals[k] for k in held]
        cost = travel[a].astype(float) if stage is None else -(c == stage).astype(float)
        result = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None),
                         method="highs")
        if result.status != 0:
            raise BenchError(f"the LP stage {'cost' if stage is None else stage + 1} failed: "
                             f"{result.message}")
        if stage is None:
            fun = float(result.fun)
        else:
            totals[stage] = -float(result.fun)
    return totals, fun, time.perf_counter() - started


def lp_check(scale: Scale, levels: dict[str, str], body: dict) -> dict:
    """The plan's objective and class totals against the independent LP of its instance."""
    import numpy as np

    started = time.perf_counter()
    wanted, usable, arc_v, arc_s, travel = candidate_arcs(scale, levels, body)
    arcs_s = time.perf_counter() - started
    villages, shelters = body["villages"], body["shelters"]
    demand = np.array([villages[i]["to_move"] for i in wanted], np.int64).reshape(-1, 4)
    capacity = np.array([shelters[j]["available"] for j in usable], np.int64)
    # The plan's own arcs must be candidates with the same travel_s, or the LP is another instance.
    travel_of = {(villages[wanted[v]]["code"], shelters[usable[s]]["code"]): int(t)
                 for v, s, t in zip(arc_v.tolist(), arc_s.tolist(), travel.tolist(), strict=True)}
    disagree = [a for a in body["assignments"]
                if travel_of.get((a["village"], a["shelter"])) != a["travel_s"]]
    totals, optimum, lp_s = lexicographic_lp(demand, capacity, arc_v, arc_s, travel)
    by_class = np.zeros(4, np.int64)
    for a in body["assignments"]:
        by_class += np.array(a["by_class"], np.int64)
    out = {"arcs": len(travel), "columns": int((demand[arc_v] > 0).sum()), "lp_s": lp_s,
           "arcs_s": arcs_s, "optimum": optimum, "objective": body["objective_person_s"],
           "ratio": body["objective_person_s"] / optimum if optimum else float("nan"),
           "totals": totals, "by_class": by_class.tolist(), "disagree": len(disagree),
           "villages": len(wanted), "shelters": len(usable)}
    out["classes_equal"] = all(abs(t - p) < 1e-6 * max(1.0, p)
                               for t, p in zip(totals, out["by_class"], strict=True))
    log(f"{scale.label} {scale.name}: LP: {out['villages']} villages × {out['shelters']} usable "
        f"shelters, {out['arcs']:,} candidate arcs ({arcs_s:.1f} s to recompute), "
        f"{out['columns']:,} columns; class totals LP {[round(t, 3) + 0.0 for t in totals]}, plan "
        f"{out['by_class']}; optimum {optimum:,.3f} person-s, plan {out['objective']:,}; "
        f"ratio {out['ratio']:.6f}; LP {lp_s:.2f} s; plan arcs disagreeing {len(disagree)}")
    return out


# --- re-planning after road closures -----------------------------------------------------------

def busiest_open_road(body: dict) -> tuple[str, int]:
    """The open segment carrying the most people in this plan (ties: the lowest code)."""
    load: dict[str, int] = {}
    for a in body["assignments"]:
        for road in a["roads"]:
            load[road] = load.get(road, 0) + a["people"]
    closed = {r["code"] for r in body["closed_roads"]}
    candidates = [(people, code) for code, people in load.items() if code not in closed]
    if not candidates:
        raise BenchError("no assignment uses an open road: nothing to close")
    people, code = min(candidates, key=lambda pc: (-pc[0], pc[1]))
    return code, people


def road_components(scale: Scale, body: dict, road: str) -> tuple[dict[str, int], int]:
    """Each village's road component (over the roads open in this plan) and the road's."""
    import numpy as np

    from dispatch.core.db import db
    from dispatch.evacuation import service
    from maps import routing

    with scale.app.app_context():
        try:
            net = service.network(db.session)
        finally:
            db.remove()
    closed = {r["code"] for r in body["closed_roads"]}
    labels = routing.components(net.graph, np.array([c not in closed for c in net.graph.codes]))
    nodes = net.graph.node_index([v["node"] for v in body["villages"]])
    village = {v["code"]: int(labels[n]) for v, n in zip(body["villages"], nodes, strict=True)}
    return village, int(labels[net.graph.arc_tail[net.by_code[road]]])


def set_road(scale: Scale, code: str, is_open: bool) -> None:
    """Open or close a segment as PATCH /api/v1/roads/{code} does (maps service, committed)."""
    from dispatch.core.db import db
    from maps import service as maps

    body = {"is_open": is_open, "closed_reason": "" if is_open else "bench: closure"}
    with scale.app.app_context():
        try:
            with db.transaction() as s:
                maps.update(s, maps.ROADS, code, body, actor="bench")
        finally:
            db.remove()


def moved_people(move: dict) -> int:
    """People of one diff entry who go to another shelter or lose their place."""
    return sum(max(0, n - move["after"].get(s, 0)) for s, n in move["before"].items())


def closures(scale: Scale, levels: dict[str, str], body: dict, count: int) -> dict:
    """`count` closures in a row, each of the current plan's busiest open road, each followed by
    a re-plan with trigger "road"; the roads are opened again afterwards (untimed)."""
    from dispatch.evacuation import rules

    walls, done = [], []
    current = body
    try:
        for i in range(count):
            code, people = busiest_open_road(current)
            component_of, closed_in = road_components(scale, current, code)
            set_road(scale, code, False)
            done.append(code)
            wall, new = plan(scale, levels, trigger="road", ref=code)
            moves = rules.diff(current, new)
            reasons: dict[str, int] = {}
            for move in moves:
                for why in move["why"]:
                    reasons[why["why"]] = reasons.get(why["why"], 0) + 1
            rows = ({(a["village"], a["shelter"], a["people"]) for a in current["assignments"]}
                    ^ {(a["village"], a["shelter"], a["people"]) for a in new["assignments"]})
            # The lexicographic optimum splits by road component: in another component than the
            # closed road's, the set of optimal plans is the same, so a change there is only
            # another of equally good plans (no village's people needed to move).
            elsewhere = sum(1 for m in moves if component_of.get(m["village"]) != closed_in)
            result = {"road": code, "carried": people, "wall": wall, "villages": len(moves),
                      "elsewhere": elsewhere,
                      "moved": sum(moved_people(m) for m in moves), "rows": len(rows),
                      "reasons": reasons, "metrics": new["metrics"],
                      "objective": (current["objective_person_s"], new["objective_person_s"])}
            walls.append(wall)
            log(f"{scale.label} {scale.name}: closure {i + 1}/{count}: {code} (carried "
                f"{people:,} people) -> re-plan {wall:.0f} ms ({_parts(new)}); "
                f"diff: {len(moves)} villages ({result['moved']:,} people) move elsewhere "
                f"({elsewhere} of them outside the closed road's road component), "
                f"why {reasons}; {len(rows)} assignment rows differ; placed "
                f"{current['metrics']['placed']:,} -> {new['metrics']['placed']:,}, objective "
                f"{current['objective_person_s']:,} -> {new['objective_person_s']:,}")
            if i == 0:
                first = result
            current = new
    finally:
        for code in done:
            set_road(scale, code, True)
    return {"walls": walls, "first": first, "count": count}


# --- per scale and backend ---------------------------------------------------------------------

def bench_env(data_dir: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESCUEHUB_")}
    env.update(RESCUEHUB_DATA_DIR=str(data_dir), RESCUEHUB_DATABASE_URL=url, RESCUEHUB_LANG="en",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return env


def run_scale(label: str, url: str, tmp: Path, args, name: str) -> list[Row]:
    """Every figure of one scale on one backend, on its own fresh data directory."""
    scale = Scale(label, name, bench_env(tmp / f"var-{label.lower()}-{name}", url))
    rows: list[Row] = []
    target = TARGETS_MS[name]
    with contextlib.ExitStack() as stack:
        load_demo(scale)
        open_app(scale, stack)
        levels = scenario(scale)
        cold, cold_body = plan(scale, levels)
        m = cold_body["metrics"]
        log(f"{label} {name}: cold plan (builds the road graph) {cold:.0f} ms "
            f"({_parts(cold_body)})")
        describe(scale, levels, cold_body)
        walls, bodies = timed_plans(scale, levels, args.runs)
        p50 = percentile(walls, 0.5)
        evacuate = sum(1 for lv in levels.values() if lv == "evacuate")
        rows += [
            Row(label, f"{name}: plan, cold (graph built)", f"{cold:.0f} ms", "", verdict(None),
                f"route {m['route_ms']:.0f} ms, compute {m['total_ms']:.0f} ms"),
            Row(label, f"{name}: plan end to end p50", f"{p50:.0f} ms", f"< {target:.0f} ms",
                verdict(p50 < target),
                f"max {max(walls):.0f} ms over {len(walls)}; {_breakdown(walls, bodies)}; "
                f"{evacuate} villages at evacuate, {len(levels) - evacuate} at prepare; "
                f"{bodies[-1]['metrics']['placed']:,} of {bodies[-1]['metrics']['to_move']:,} "
                f"placed"),
        ]
        check = lp_check(scale, levels, bodies[-1])
        exact = (f"{check['ratio']:.6f}" == "1.000000" and check["classes_equal"]
                 and not check["disagree"])
        rows += [
            Row(label, f"{name}: objective / LP optimum", f"{check['ratio']:.6f}", "1.000000",
                verdict(exact), f"plan {check['objective']:,}, LP {check['optimum']:,.3f} "
                f"person-s; class totals {'equal' if check['classes_equal'] else 'DIFFER'}; "
                f"plan arcs off the candidates {check['disagree']}"),
            Row(label, f"{name}: LP time (HiGHS, staged)", f"{check['lp_s']:.2f} s", "",
                verdict(None), f"{check['arcs']:,} candidate arcs, {check['columns']:,} "
                f"columns; the plan's solve p50 "
                f"{percentile([b['metrics']['solve_ms'] for b in bodies], 0.5):.0f} ms"),
        ]
        if name == "prefecture" and args.closures:
            got = closures(scale, levels, bodies[-1], args.closures)
            first, road_p50 = got["first"], percentile(got["walls"], 0.5)
            rows += [
                Row(label, f"{name}: re-plan after a road closure p50", f"{road_p50:.0f} ms",
                    f"< {TARGET_ROAD_MS:.0f} ms", verdict(road_p50 < TARGET_ROAD_MS),
                    f"{_ms(got['walls'])} over {got['count']} closures in a row"),
                Row(label, f"{name}: first closure's diff", f"{first['villages']} villages",
                    "", verdict(None),
                    f"{first['road']} carried {first['carried']:,} people; "
                    f"{first['moved']:,} people move elsewhere; {first['rows']} assignment rows "
                    f"differ; why {first['reasons']}; {first['elsewhere']} of the villages lie "
                    f"outside the closed road's road component (equally optimal alternatives)"),
            ]
        t_walls, t_bodies = timed_plans(scale, levels, TOGETHER_RUNS, mode="together")
        rows += together_rows(label, name, t_walls, t_bodies[-1], bodies[-1])
    return rows


def together_rows(label: str, name: str, walls: list[float], body: dict,
                  split: dict) -> list[Row]:
    gap = body["together_gap"]
    exact, got = gap["exact_objective_person_s"], body["objective_person_s"]
    placed, exact_placed = body["metrics"]["placed"], gap["exact_placed"]
    pct = (got - exact) / exact * 100 if exact else float("nan")
    same = "" if exact == split["objective_person_s"] else " (NOT the split plan's objective)"
    return [
        Row(label, f"{name}: together plan end to end p50", f"{percentile(walls, 0.5):.0f} ms",
            "", verdict(None), f"max {max(walls):.0f} ms over {len(walls)}; solves twice "
                               f"(together, then exact for the gap)"),
        Row(label, f"{name}: together gap to exact", f"{pct:+.2f} %", "", verdict(None),
            f"objective {got:,} vs {exact:,} person-s{same}; placed {placed:,} vs "
            f"{exact_placed:,} ({placed - exact_placed:+,})"),
    ]


def print_table(rows: list[Row], args, seconds: float) -> None:
    ingest.print_rows("evacuation.py", f"{args.runs} timed plans per scale, {TOGETHER_RUNS} "
                                       f"together, {args.closures} closures; {seconds:.0f} s",
                      rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed plans per scale (10)")
    parser.add_argument("--scale", choices=["township", "prefecture", "both"], default="both")
    parser.add_argument("--db", choices=["spatialite", "postgis", "both"], default="spatialite")
    parser.add_argument("--closures", type=int, default=5,
                        help="road closures in a row at prefecture scale (5; 0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 100 or not 0 <= args.closures <= 20:
        parser.error("--runs must be 1-100 and --closures 0-20")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ingest._interrupt)
    started = time.monotonic()
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="rescuehub-bench-evacuation-"))
    scales = ["township", "prefecture"] if args.scale == "both" else [args.scale]
    try:
        for name in scales:
            if args.db in ("spatialite", "both"):
                rows += run_scale("SpatiaLite", "", tmp, args, name)
            if args.db in ("postgis", "both"):
                rows += ingest.run_postgis(tmp, args, name, runner=run_scale)
    except BenchError as exc:
        log(f"stopped: {exc}")
        print_table(rows, args, time.monotonic() - started)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
