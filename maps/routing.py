"""Road routing for evacuation: shortest travel times to shelters over open roads (pure).

DESIGN §5 "Evacuation (contract)": travel time of a segment = length_m / (speed_kmh / 3.6) s,
one-way segments only from source to target, closed segments not used. The graph is built once
per road-network revision; a closure is a boolean mask, so node indexing never changes between
plans. Searches run in scipy's compiled Dijkstra, never in a Python loop over nodes.
Nothing here imports Flask or the database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.sparse import csr_array, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

_KMH = 3.6  # km/h per m/s


class RoadInputError(ValueError):
    """Road segments the planner cannot use; `problems` holds (code, why) for each bad one."""

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


def _frozen(array: np.ndarray) -> np.ndarray:
    # Graphs and reaches are shared between plans and threads: nobody may edit them in place.
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """Directed arcs of one road-network revision (built once; closures are masks).

    Arc k < len(codes) is segment k in its own direction (source → target); every two-way segment
    then adds its reverse arc, in segment order.
    """

    node_ids: np.ndarray      # sorted unique external node ids (int64); node index = position
    codes: tuple[str, ...]    # segment codes, in input order (segment index = position)
    arc_tail: np.ndarray      # int32 node index per directed arc
    arc_head: np.ndarray      # int32
    arc_segment: np.ndarray   # int32 segment index per arc (a two-way segment gives two arcs)
    arc_time_s: np.ndarray    # float64

    @property
    def n_nodes(self) -> int:
        """Number of road nodes."""
        return len(self.node_ids)

    @property
    def n_segments(self) -> int:
        """Number of road segments."""
        return len(self.codes)

    def node_index(self, ids) -> np.ndarray:
        """External node ids -> node indices (int64; -1 for an id not in the graph)."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError("node ids must be integers")
        ids = ids.astype(np.int64, copy=False)
        pos = np.searchsorted(self.node_ids, ids)
        clipped = np.minimum(pos, len(self.node_ids) - 1)
        return np.where(self.node_ids[clipped] == ids, pos, -1).astype(np.int64)


def _segment_problems(codes: list, length: np.ndarray, speed: np.ndarray, time_s: np.ndarray,
                      source: np.ndarray, target: np.ndarray) -> list[tuple[str, str]]:
    # Vectorised checks; Python only walks the bad segments, so a clean network costs no loop.
    with np.errstate(invalid="ignore"):
        bad_length = ~(np.isfinite(length) & (length > 0))
        bad_speed = ~(np.isfinite(speed) & (speed > 0))
        bad_time = ~bad_length & ~bad_speed & ~(np.isfinite(time_s) & (time_s > 0))
    loop = source == target
    counts = Counter(codes)
    no_code = np.fromiter((not (isinstance(c, str) and c) for c in codes), bool, len(codes))
    repeated = np.fromiter((counts[c] > 1 for c in codes), bool, len(codes))
    whys: dict[str, list[str]] = {}
    for i in np.flatnonzero(bad_length | bad_speed | bad_time | loop | no_code | repeated):
        name = f"#{i}" if no_code[i] else codes[i]
        reasons = whys.setdefault(name, [])
        if no_code[i]:
            reasons.append("the code is missing")
        elif repeated[i] and not reasons:
            reasons.append(f"the code is used by {counts[codes[i]]} segments")
        if bad_length[i]:
            reasons.append(f"length_m {length[i]:g} is not a positive finite number")
        if bad_speed[i]:
            reasons.append(f"speed_kmh {speed[i]:g} is not a positive finite number")
        if bad_time[i]:
            reasons.append("its travel time is not a positive finite number of seconds")
        if loop[i]:
            reasons.append(f"source equals target ({source[i]}): a loop")
    return [(name, "; ".join(reasons)) for name, reasons in whys.items()]


def _as_array(name: str, values, kinds: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in kinds):
        raise RoadInputError(f"{name} must be a one-dimensional array of "
                             + {"iu": "integer node ids", "iuf": "numbers", "b": "booleans"}[kinds])
    return array


def build_graph(codes, source, target, length_m, speed_kmh, oneway) -> RoadGraph:
    """Directed arcs with travel times from road segments; RoadInputError names every bad one."""
    codes = list(codes)
    source = _as_array("source", source, "iu").astype(np.int64, copy=False)
    target = _as_array("target", target, "iu").astype(np.int64, copy=False)
    length = _as_array("length_m", length_m, "iuf").astype(np.float64, copy=False)
    speed = _as_array("speed_kmh", speed_kmh, "iuf").astype(np.float64, copy=False)
    oneway = _as_array("oneway", oneway, "b").astype(bool, copy=False)
    sizes = {"codes": len(codes), "source": len(source), "target": len(target),
             "length_m": len(length), "speed_kmh": len(speed), "oneway": len(oneway)}
    if len(set(sizes.values())) != 1:
        raise RoadInputError("the segment arrays differ in length: "
                             + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if not codes:
        raise RoadInputError("there are no road segments")
    with np.errstate(all="ignore"):
        time_s = length / (speed / _KMH)
    problems = _segment_problems(codes, length, speed, time_s, source, target)
    if problems:
        raise RoadInputError(
            f"{len(problems)} bad road segment(s): "
            + ", ".join(f"{code} ({why})" for code, why in problems), tuple(problems))

    node_ids = np.unique(np.concatenate((source, target)))
    tail = np.searchsorted(node_ids, source).astype(np.int32)
    head = np.searchsorted(node_ids, target).astype(np.int32)
    two_way = np.flatnonzero(~oneway).astype(np.int32)
    segment = np.concatenate((np.arange(len(codes), dtype=np.int32), two_way))
    return RoadGraph(
        node_ids=_frozen(node_ids),
        codes=tuple(codes),
        arc_tail=_frozen(np.concatenate((tail, head[two_way]))),
        arc_head=_frozen(np.concatenate((head, tail[two_way]))),
        arc_segment=_frozen(segment),
        arc_time_s=_frozen(time_s[segment]),
    )


def _open_arcs(graph: RoadGraph, open_segments) -> np.ndarray:
    mask = np.asarray(open_segments)
    if mask.dtype != bool or mask.shape != (graph.n_segments,):
        raise ValueError(f"open_segments must be {graph.n_segments} booleans, one per segment "
                         f"(got dtype {mask.dtype}, shape {mask.shape})")
    return np.flatnonzero(mask[graph.arc_segment])


def _node_indices(graph: RoadGraph, nodes, name: str) -> np.ndarray:
    nodes = np.asarray(nodes)
    if nodes.ndim != 1 or (nodes.size and nodes.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a one-dimensional array of node indices")
    nodes = nodes.astype(np.int64, copy=False)
    bad = (nodes < 0) | (nodes >= graph.n_nodes)
    if bad.any():
        raise ValueError(f"{name} are not node indices (0..{graph.n_nodes - 1}): "
                         f"{nodes[bad][:20].tolist()}")
    return nodes


@dataclass(frozen=True, eq=False)
class Reach:
    """Shortest travel times from every node to each of the targets over open roads."""

    targets: np.ndarray       # node indices of the targets (e.g. shelters' nodes), as given
    time_s: np.ndarray        # float64 (len(targets), n_nodes); np.inf = not reachable within limit
    next_node: np.ndarray     # int32 (len(targets), n_nodes): next node toward the target, -1 none
    next_arc: np.ndarray      # int32 arc index used for that hop, -1 none
    limit_s: float = np.inf


def _fastest_arcs(graph: RoadGraph, arcs: np.ndarray) -> np.ndarray:
    # Sort by (head, tail, time, segment) and keep the first of each (head, tail) pair:
    # csr_matrix would sum parallel arcs, and the lowest segment index breaks a tie every run
    # the same way (no two arcs of one pair come from the same segment).
    order = np.lexsort((graph.arc_segment[arcs], graph.arc_time_s[arcs], graph.arc_tail[arcs],
                        graph.arc_head[arcs]))
    arcs = arcs[order]
    head, tail = graph.arc_head[arcs], graph.arc_tail[arcs]
    first = np.ones(len(arcs), dtype=bool)
    first[1:] = (head[1:] != head[:-1]) | (tail[1:] != tail[:-1])
    return arcs[first]


def _reverse_csr(graph: RoadGraph, arcs: np.ndarray) -> csr_matrix:
    # Row = head, column = tail: Dijkstra from a target on this graph walks the roads backwards,
    # so its distances are travel times *to* the target. `arcs` is sorted by (head, tail) with
    # no repeats, which is already the canonical CSR layout.
    n = graph.n_nodes
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(graph.arc_head[arcs], minlength=n), out=indptr[1:])
    return csr_matrix((graph.arc_time_s[arcs], graph.arc_tail[arcs].astype(np.int32), indptr),
                      shape=(n, n))


def _hop_arcs(graph: RoadGraph, arcs: np.ndarray, next_node: np.ndarray) -> np.ndarray:
    # The arc of each hop v -> next_node[v]: a forward CSR (row tail, column head) holding
    # arc + 1, sampled in compiled code. Each lookup stays inside node v's few neighbours, which
    # measured 5x faster than one searchsorted over all arc keys. One target row at a time
    # bounds the temporaries.
    n = graph.n_nodes
    tail, head = graph.arc_tail[arcs], graph.arc_head[arcs]
    order = np.lexsort((head, tail))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=n), out=indptr[1:])
    forward = csr_array((arcs[order].astype(np.int32) + 1, head[order], indptr), shape=(n, n))
    next_arc = np.full(next_node.shape, -1, dtype=np.int32)
    for row, hops in enumerate(next_node):
        nodes = np.flatnonzero(hops >= 0)
        if len(nodes):
            next_arc[row, nodes] = forward[nodes, hops[nodes]] - 1
    return next_arc


def reach_targets(graph: RoadGraph, open_segments, targets, limit_s: float = np.inf) -> Reach:
    """Shortest travel times (≤ limit_s) and next hops from every node to each target node."""
    if not limit_s >= 0:  # also refuses NaN
        raise ValueError(f"limit_s must be a non-negative number of seconds, got {limit_s!r}")
    targets = _node_indices(graph, targets, "targets")
    arcs = _fastest_arcs(graph, _open_arcs(graph, open_segments))
    # Each distinct target is searched once, in order of first appearance, so that without
    # duplicates scipy's rows are already the answer and nothing is copied.
    uniq, first, inverse = np.unique(targets, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    time_s, pred = dijkstra(_reverse_csr(graph, arcs), directed=True, indices=uniq[order],
                            return_predecessors=True, limit=float(limit_s))
    if len(uniq) != len(targets):
        time_s, pred = time_s[rank[inverse]], pred[rank[inverse]]
    np.maximum(pred, -1, out=pred)  # scipy marks "none" with -9999; no temporary mask
    next_node = pred.astype(np.int32, copy=False)
    next_arc = _hop_arcs(graph, arcs, next_node)
    return Reach(targets=_frozen(targets.copy()), time_s=_frozen(time_s),
                 next_node=_frozen(next_node), next_arc=_frozen(next_arc),
                 limit_s=float(limit_s))


def route(graph: RoadGraph, reach: Reach, target_row: int, from_node: int) -> list[int]:
    """Segment indices in travel order from from_node to reach.targets[target_row]."""
    if not 0 <= target_row < len(reach.targets):
        raise ValueError(f"target_row {target_row} is not a row of this reach")
    if not 0 <= from_node < graph.n_nodes:
        raise ValueError(f"from_node {from_node} is not a node index")
    if not np.isfinite(reach.time_s[target_row, from_node]):
        raise ValueError(f"node {graph.node_ids[from_node]} cannot reach node "
                         f"{graph.node_ids[reach.targets[target_row]]} within "
                         f"{reach.limit_s:g} s over open roads")
    hops, arcs = reach.next_node[target_row], reach.next_arc[target_row]
    segments: list[int] = []
    node = int(from_node)
    # A shortest path visits each node at most once; the bound only guards against a corrupt reach.
    for _ in range(graph.n_nodes):
        if node == reach.targets[target_row]:
            return segments
        segments.append(int(graph.arc_segment[arcs[node]]))
        node = int(hops[node])
    raise ValueError("the reach's next hops do not lead to the target")


def nearest_nodes(node_xy: np.ndarray, points_xy: np.ndarray,
                  usable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest (usable) node index and its distance in metres for each point; -1 and inf if none."""
    node_xy = np.asarray(node_xy, dtype=np.float64)
    points_xy = np.asarray(points_xy, dtype=np.float64)
    if points_xy.size == 0:
        points_xy = points_xy.reshape(0, 2)
    if node_xy.ndim != 2 or node_xy.shape[1] != 2:
        raise ValueError("node_xy must have shape (n_nodes, 2)")
    if points_xy.ndim != 2 or points_xy.shape[1] != 2:
        raise ValueError("points_xy must have shape (k, 2)")
    candidates = np.ones(len(node_xy), dtype=bool) if usable is None else np.asarray(usable)
    if candidates.dtype != bool or candidates.shape != (len(node_xy),):
        raise ValueError(f"usable must be {len(node_xy)} booleans, one per node")
    candidates = np.flatnonzero(candidates & np.isfinite(node_xy).all(axis=1))
    index = np.full(len(points_xy), -1, dtype=np.int64)
    dist = np.full(len(points_xy), np.inf)
    finite = np.isfinite(points_xy).all(axis=1)
    if len(candidates) and finite.any():
        found_dist, found = cKDTree(node_xy[candidates]).query(points_xy[finite], k=1)
        index[finite] = candidates[found]
        dist[finite] = found_dist
    return index, dist


def node_positions(graph: RoadGraph, first_xy: np.ndarray, last_xy: np.ndarray) -> np.ndarray:
    """Node coordinates (metric) from each segment's first and last vertex, averaged per node."""
    first_xy = np.asarray(first_xy, dtype=np.float64)
    last_xy = np.asarray(last_xy, dtype=np.float64)
    shape = (graph.n_segments, 2)
    if first_xy.shape != shape or last_xy.shape != shape:
        raise ValueError(f"first_xy and last_xy must have shape {shape}")
    # Arcs 0..n_segments-1 are the segments themselves: their tails are the sources.
    ends = np.concatenate((graph.arc_tail[:graph.n_segments], graph.arc_head[:graph.n_segments]))
    xy = np.concatenate((first_xy, last_xy))
    # Digitised ends of the segments meeting at a node may differ by centimetres: average them.
    count = np.bincount(ends, minlength=graph.n_nodes)
    return np.column_stack([np.bincount(ends, weights=xy[:, k], minlength=graph.n_nodes) / count
                            for k in (0, 1)])


def open_nodes(graph: RoadGraph, open_segments,
               direction: Literal["any", "out", "in", "both"] = "any") -> np.ndarray:
    """Per node: does it have an open arc (leaving: "out", arriving: "in", "both" or "any")?"""
    arcs = _open_arcs(graph, open_segments)
    leaves = np.bincount(graph.arc_tail[arcs], minlength=graph.n_nodes) > 0
    arrives = np.bincount(graph.arc_head[arcs], minlength=graph.n_nodes) > 0
    masks = {"any": leaves | arrives, "out": leaves, "in": arrives, "both": leaves & arrives}
    if direction not in masks:
        raise ValueError(f"direction must be one of {sorted(masks)}")
    return masks[direction]


def components(graph: RoadGraph, open_segments) -> np.ndarray:
    """Weakly connected component label (int32) per node over open roads; lone nodes: one each."""
    arcs = _open_arcs(graph, open_segments)
    n = graph.n_nodes
    adjacency = csr_matrix((np.ones(len(arcs)), (graph.arc_tail[arcs], graph.arc_head[arcs])),
                           shape=(n, n))
    _, labels = connected_components(adjacency, directed=True, connection="weak")
    return labels.astype(np.int32, copy=False)
