"""Road routing for evacuation: shortest travel times to shelters over open roads (pure).

DESIGN §5 "Evacuation (contract)": travel time of a segment = length_m / (speed_kmh / 3.6) s,
one-way segments only from source to target, closed segments not used. The graph is built once
per road-network revision; a closure is a boolean mask, so node indexing never changes between
plans. Searches run in scipy's compiled Dijkstra, never in a Python loop over nodes, each on
the weakly connected part of the open network that holds its target: a prefecture's roads fall
apart into one part per township, and a search never touches (or allocates for) the others.
Given sources, a reach keeps only times from them, and per target the nodes that reach it
within the limit, each with its next hop as a position in that same list.
Nothing here imports Flask or the database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix
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
        if ids.size and ids.dtype.kind not in "iu":   # [] arrives as float64
            raise ValueError("node ids must be integers")
        ids = ids.astype(np.int64, copy=False)
        pos = np.searchsorted(self.node_ids, ids)
        clipped = np.minimum(pos, len(self.node_ids) - 1)
        return np.where(self.node_ids[clipped] == ids, pos, -1).astype(np.int64)

    @cached_property
    def _pair_orders(self) -> tuple[np.ndarray, np.ndarray]:
        # Every arc by (head, tail, time, segment) and by (tail, head, time, segment), sorted
        # once per graph: a closure only filters these orders, so no plan sorts the arcs again.
        by_head = np.lexsort((self.arc_segment, self.arc_time_s, self.arc_tail, self.arc_head))
        by_tail = np.lexsort((self.arc_segment, self.arc_time_s, self.arc_head, self.arc_tail))
        return _frozen(by_head.astype(np.int32)), _frozen(by_tail.astype(np.int32))


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


def _open_mask(graph: RoadGraph, open_segments) -> np.ndarray:
    mask = np.asarray(open_segments)
    if mask.dtype != bool or mask.shape != (graph.n_segments,):
        raise ValueError(f"open_segments must be {graph.n_segments} booleans, one per segment "
                         f"(got dtype {mask.dtype}, shape {mask.shape})")
    return mask[graph.arc_segment]


def _open_arcs(graph: RoadGraph, open_segments) -> np.ndarray:
    return np.flatnonzero(_open_mask(graph, open_segments))


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
    """Shortest travel times to each target over open roads, and the trees that give the routes.

    Each distinct target has one shortest-path tree holding only the nodes that reach it within
    the limit: tree t is tree_node[tree_start[t]:tree_start[t + 1]] (and the same of tree_next).
    """

    targets: np.ndarray       # node indices of the targets (e.g. shelters' nodes), as given
    sources: np.ndarray | None  # node indices of time_s's columns, as given; None: every node
    time_s: np.ndarray        # float64 (len(targets), len(sources) or n_nodes); inf: not in limit
    tree_of: np.ndarray       # int32 tree of each target row (repeated targets share one)
    tree_start: np.ndarray    # int64 (n_trees + 1): where each tree begins in tree_node
    tree_node: np.ndarray     # int32 node index, ascending within a tree
    tree_next: np.ndarray     # int32 position in the same tree of the next node; -1 at the target
    hop_key: np.ndarray       # int64 tail * n_nodes + head of each open arc routes use, ascending
    hop_arc: np.ndarray       # int32 arc index of each hop_key (the fastest of parallel arcs)
    limit_s: float
    next_node: np.ndarray | None = None  # dense form only: int32 (len(targets), n_nodes), -1 none
    next_arc: np.ndarray | None = None   # dense form only: int32 arc used for that hop, -1 none

    @property
    def nbytes(self) -> int:
        """Bytes held by the reach's arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self)
                   if isinstance(getattr(self, f.name), np.ndarray))


def _fastest_arcs(graph: RoadGraph, open_segments) -> tuple[np.ndarray, np.ndarray]:
    """The fastest open arc of each node pair, sorted by (head, tail) and by (tail, head)."""
    # In (head, tail, time, segment) order the first open arc of a pair is the one to keep:
    # csr_matrix would sum parallel arcs, and the lowest segment index breaks a tie every run
    # the same way (no two arcs of one pair come from the same segment).
    is_open = _open_mask(graph, open_segments)
    by_head, by_tail = graph._pair_orders
    arcs = by_head[is_open[by_head]]
    head, tail = graph.arc_head[arcs], graph.arc_tail[arcs]
    first = np.ones(len(arcs), dtype=bool)
    first[1:] = (head[1:] != head[:-1]) | (tail[1:] != tail[:-1])
    kept = np.zeros(len(is_open), dtype=bool)
    kept[arcs[first]] = True
    return arcs[first], by_tail[kept[by_tail]]


def _reverse_csr(graph: RoadGraph, arcs: np.ndarray) -> csr_matrix:
    # Row = head, column = tail: Dijkstra from a target on this graph walks the roads backwards,
    # so its distances are travel times *to* the target. `arcs` is sorted by (head, tail) with
    # no repeats, which is already the canonical CSR layout.
    n = graph.n_nodes
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(graph.arc_head[arcs], minlength=n), out=indptr[1:])
    return csr_matrix((graph.arc_time_s[arcs], graph.arc_tail[arcs].astype(np.int32), indptr),
                      shape=(n, n))


@dataclass(frozen=True, eq=False)
class _Blocks:
    """The reversed open graph renumbered so that each weakly connected component is one block."""

    reverse: csr_matrix       # block diagonal, in the new numbering
    labels: np.ndarray        # component of each node
    nodes: np.ndarray         # node index at each new position: grouped by component, ascending
    start: np.ndarray         # component c holds new positions start[c]..start[c + 1] - 1
    position: np.ndarray      # new position of each node index

    def block(self, c: int) -> csr_matrix:
        """Component c alone, its nodes numbered from 0 in node-index order."""
        lo, hi = int(self.start[c]), int(self.start[c + 1])
        indptr = self.reverse.indptr[lo:hi + 1]
        first, last = indptr[0], indptr[-1]
        return csr_matrix((self.reverse.data[first:last], self.reverse.indices[first:last] - lo,
                           indptr - first), shape=(hi - lo, hi - lo))


def _blocks(graph: RoadGraph, arcs: np.ndarray) -> _Blocks:
    n = graph.n_nodes
    count, labels = connected_components(_reverse_csr(graph, arcs), directed=True,
                                         connection="weak")
    nodes = np.argsort(labels, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[nodes] = np.arange(n)
    start = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(labels, minlength=count), out=start[1:])
    # Renumbering keeps node order inside a component, so arcs grouped stably by their head's
    # component stay sorted by (new head, new tail): canonical CSR again, with no sort.
    arcs = arcs[np.argsort(labels[graph.arc_head[arcs]], kind="stable")]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(position[graph.arc_head[arcs]], minlength=n), out=indptr[1:])
    reverse = csr_matrix((graph.arc_time_s[arcs], position[graph.arc_tail[arcs]].astype(np.int32),
                          indptr), shape=(n, n))
    return _Blocks(reverse, labels, nodes, start, position)


# Targets searched together in one component: bounds scipy's (targets × nodes) outputs and our
# temporaries (~17 bytes an entry in all) to ~35 MB on a large connected network.
_CHUNK_ENTRIES = 1 << 21


def _tree(dist: np.ndarray, pred: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, ...]:
    # Keep only reached nodes, row by row in node order (flat indices are row-major), turning each
    # predecessor into its position in the same row, so that a route walks by plain indexing.
    reached = np.isfinite(dist)
    rows, cols = np.divmod(np.flatnonzero(reached), dist.shape[1])   # 3x faster than nonzero
    rank = np.cumsum(reached, axis=1, dtype=np.int32) - 1   # position of a node in its row
    hop = pred[rows, cols]
    nxt = np.where(hop < 0, -1, rank[rows, np.maximum(hop, 0)]).astype(np.int32, copy=False)
    return rank[:, -1] + 1, nodes[cols].astype(np.int32), nxt


def _column_groups(labels: np.ndarray, columns: np.ndarray, wanted: np.ndarray) -> list:
    # The columns (indices into `columns`) whose node lies in each wanted component.
    col_labels = labels[columns]
    order = np.argsort(col_labels, kind="stable")
    ordered = col_labels[order]
    lo = np.searchsorted(ordered, wanted, side="left")
    hi = np.searchsorted(ordered, wanted, side="right")
    return [order[a:b] for a, b in zip(lo, hi, strict=True)]


def _dense_hops(graph: RoadGraph, reach: Reach) -> tuple[np.ndarray, np.ndarray]:
    # The historical (targets × nodes) next-hop arrays, expanded from the trees.
    starts = reach.tree_start
    entry_tree = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    last = reach.tree_next < 0
    to = np.where(last, -1, reach.tree_node[starts[entry_tree] + np.maximum(reach.tree_next, 0)])
    keys = reach.tree_node[~last].astype(np.int64) * graph.n_nodes + to[~last]
    arc = np.full(len(to), -1, dtype=np.int32)
    arc[~last] = reach.hop_arc[np.searchsorted(reach.hop_key, keys)]
    next_node = np.full((len(reach.targets), graph.n_nodes), -1, dtype=np.int32)
    next_arc = np.full((len(reach.targets), graph.n_nodes), -1, dtype=np.int32)
    for row, tree in enumerate(reach.tree_of):
        span = slice(starts[tree], starts[tree + 1])
        next_node[row, reach.tree_node[span]] = to[span]
        next_arc[row, reach.tree_node[span]] = arc[span]
    return next_node, next_arc


def reach_targets(graph: RoadGraph, open_segments, targets, limit_s: float = np.inf,
                  sources=None) -> Reach:
    """Shortest travel times (≤ limit_s) from each source (default every node) to each target.

    With sources, time_s is (targets × sources) and nothing else is dense; without, time_s is
    (targets × nodes) and the dense next_node/next_arc arrays are filled as well.
    """
    if not limit_s >= 0:  # also refuses NaN
        raise ValueError(f"limit_s must be a non-negative number of seconds, got {limit_s!r}")
    targets = _node_indices(graph, targets, "targets")
    dense = sources is None
    columns = np.arange(graph.n_nodes) if dense else _node_indices(graph, sources, "sources")
    arcs, hop_arcs = _fastest_arcs(graph, open_segments)
    blocks = _blocks(graph, arcs)
    # One tree per distinct target, numbered by (component, node) so that each component's
    # trees are consecutive and come out of its searches in order.
    uniq, inverse = np.unique(targets, return_inverse=True)
    order = np.argsort(blocks.labels[uniq], kind="stable")
    trees = uniq[order]
    rank = np.empty(len(trees), dtype=np.int32)
    rank[order] = np.arange(len(trees), dtype=np.int32)
    tree_of = rank[inverse.reshape(-1)]
    rows_of_tree = np.argsort(tree_of, kind="stable")
    row_start = np.concatenate(([0], np.cumsum(np.bincount(tree_of, minlength=len(trees)))))

    time_s = np.full((len(targets), len(columns)), np.inf)
    # A component with no target is never searched: it costs nothing.
    wanted, first_tree = np.unique(blocks.labels[trees], return_index=True)
    tree_ends = np.append(first_tree, len(trees))[1:]
    groups = _column_groups(blocks.labels, columns, wanted)
    sizes, tree_node, tree_next = [], [], []
    for c, begin, end, cols in zip(wanted, first_tree, tree_ends, groups, strict=True):
        graph_c = blocks.block(int(c))
        lo, hi = blocks.start[c], blocks.start[c + 1]
        local_cols = blocks.position[columns[cols]] - lo
        step = max(1, _CHUNK_ENTRIES // int(hi - lo))
        for t0 in range(begin, end, step):
            t1 = min(t0 + step, end)
            dist, pred = dijkstra(graph_c, directed=True, return_predecessors=True,
                                  indices=blocks.position[trees[t0:t1]] - lo, limit=float(limit_s))
            rows = rows_of_tree[row_start[t0]:row_start[t1]]
            time_s[np.ix_(rows, cols)] = dist[np.ix_(tree_of[rows] - t0, local_cols)]
            counts, nodes, nxt = _tree(dist, pred, blocks.nodes[lo:hi])
            sizes.append(counts)
            tree_node.append(nodes)
            tree_next.append(nxt)
    tree_start = np.zeros(len(trees) + 1, dtype=np.int64)
    if sizes:
        np.cumsum(np.concatenate(sizes), out=tree_start[1:])
    # Routes name the arc of each hop (tail -> head) by binary search over these keys.
    hop_key = graph.arc_tail[hop_arcs].astype(np.int64) * graph.n_nodes + graph.arc_head[hop_arcs]
    empty = np.zeros(0, dtype=np.int32)
    reach = Reach(
        targets=_frozen(targets.copy()), sources=None if dense else _frozen(columns.copy()),
        time_s=_frozen(time_s), tree_of=_frozen(tree_of), tree_start=_frozen(tree_start),
        tree_node=_frozen(np.concatenate(tree_node) if tree_node else empty),
        tree_next=_frozen(np.concatenate(tree_next) if tree_next else empty),
        hop_key=_frozen(hop_key), hop_arc=_frozen(hop_arcs.astype(np.int32)),
        limit_s=float(limit_s))
    if not dense:
        return reach
    next_node, next_arc = _dense_hops(graph, reach)
    return replace(reach, next_node=_frozen(next_node), next_arc=_frozen(next_arc))


def route(graph: RoadGraph, reach: Reach, target_row: int, from_node: int) -> list[int]:
    """Segment indices in travel order from from_node to reach.targets[target_row]."""
    if not 0 <= target_row < len(reach.targets):
        raise ValueError(f"target_row {target_row} is not a row of this reach")
    if not 0 <= from_node < graph.n_nodes:
        raise ValueError(f"from_node {from_node} is not a node index")
    tree = int(reach.tree_of[target_row])
    span = slice(reach.tree_start[tree], reach.tree_start[tree + 1])
    nodes, nexts = reach.tree_node[span], reach.tree_next[span]
    at = int(np.searchsorted(nodes, from_node))
    if at == len(nodes) or nodes[at] != from_node:
        raise ValueError(f"node {graph.node_ids[from_node]} cannot reach node "
                         f"{graph.node_ids[reach.targets[target_row]]} within "
                         f"{reach.limit_s:g} s over open roads")
    path = [at]
    # A shortest path visits each node at most once; the bound only guards against a corrupt reach.
    for _ in range(len(nodes)):
        at = int(nexts[at])
        if at < 0:
            break
        path.append(at)
    else:
        raise ValueError("the reach's trees do not lead to the target")
    hops = nodes[path].astype(np.int64)
    keys = hops[:-1] * graph.n_nodes + hops[1:]
    found = np.searchsorted(reach.hop_key, keys)
    if (found >= len(reach.hop_key)).any() or not np.array_equal(reach.hop_key[found], keys):
        raise ValueError("the reach's trees use a road this graph does not have open")
    return graph.arc_segment[reach.hop_arc[found]].tolist()


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
