"""maps.routing: graph building and its checks, travel times to targets, routes, nearest nodes."""

import heapq
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps import routing
from maps.routing import RoadInputError

KMH = 36.0  # 10 m/s: a segment of L metres takes L/10 s exactly


def _graph(rows):
    """A graph from (code, source, target, length_m, oneway) rows at 36 km/h, or with a speed."""
    rows = [row if len(row) == 6 else (*row[:4], KMH, row[4]) for row in rows]
    codes, source, target, length, speed, oneway = zip(*rows, strict=True)
    return routing.build_graph(list(codes), np.array(source), np.array(target), np.array(length),
                               np.array(speed), np.array(oneway))


def _all_open(graph):
    return np.ones(graph.n_segments, dtype=bool)


def _open_except(graph, *codes):
    return np.array([code not in codes for code in graph.codes])


def _codes(graph, segments):
    return [graph.codes[i] for i in segments]


def _idx(graph, node_id):
    return int(graph.node_index([node_id])[0])


# ---------------------------------------------------------------- building the graph

def test_build_graph_indexes_nodes_and_lays_out_arcs():
    graph = _graph([("A", 700, -3, 100.0, True), ("B", -3, 10**15, 250.0, False)])
    assert graph.node_ids.tolist() == [-3, 700, 10**15]
    assert graph.codes == ("A", "B")
    # Arcs 0..n-1 are the segments source -> target; the two-way B then adds its reverse.
    assert graph.arc_tail.tolist() == [1, 0, 2]
    assert graph.arc_head.tolist() == [0, 2, 0]
    assert graph.arc_segment.tolist() == [0, 1, 1]
    assert graph.arc_time_s.tolist() == [10.0, 25.0, 25.0]
    assert graph.arc_tail.dtype == graph.arc_segment.dtype == np.int32
    assert graph.node_index([10**15, 700, 5, -3, -4]).tolist() == [2, 1, -1, 0, -1]
    assert graph.node_index([]).tolist() == []
    with pytest.raises(ValueError, match="integers"):
        graph.node_index([700.0])


def test_travel_time_is_length_over_speed():
    graph = _graph([("A", 1, 2, 1000.0, 60.0, True), ("B", 2, 3, 500.0, 4.0, True)])
    assert graph.arc_time_s.tolist() == pytest.approx([60.0, 450.0], rel=1e-12)


def test_graph_arrays_are_read_only():
    graph = _graph([("A", 1, 2, 100.0, False)])
    with pytest.raises(ValueError):
        graph.arc_time_s[0] = 1.0


@pytest.mark.parametrize(("length", "speed", "why"), [
    (math.nan, 30.0, "length_m nan"),
    (0.0, 30.0, "length_m 0"),
    (-5.0, 30.0, "length_m -5"),
    (math.inf, 30.0, "length_m inf"),
    (100.0, 0.0, "speed_kmh 0"),
    (100.0, -20.0, "speed_kmh -20"),
    (100.0, math.nan, "speed_kmh nan"),
    (100.0, math.inf, "speed_kmh inf"),
    (1e-320, 1e300, "travel time"),   # each positive, but the time underflows to 0 s
])
def test_build_graph_rejects_bad_length_or_speed(length, speed, why):
    with pytest.raises(RoadInputError) as caught:
        _graph([("OK", 1, 2, 100.0, 30.0, False), ("BAD-1", 2, 3, length, speed, False)])
    assert "BAD-1" in str(caught.value) and why in str(caught.value)
    assert "OK" not in str(caught.value)
    assert [code for code, _ in caught.value.problems] == ["BAD-1"]


def test_build_graph_rejects_a_loop_and_duplicate_codes():
    with pytest.raises(RoadInputError) as caught:
        _graph([("R1", 1, 2, 100.0, False), ("LOOP", 4, 4, 100.0, False),
                ("TWICE", 2, 3, 100.0, False), ("TWICE", 3, 5, 100.0, True)])
    message = str(caught.value)
    assert "LOOP (source equals target (4): a loop)" in message
    assert "TWICE (the code is used by 2 segments)" in message
    assert message.count("TWICE") == 1 and "R1" not in message


def test_build_graph_names_every_bad_segment_not_just_the_first():
    with pytest.raises(RoadInputError) as caught:
        _graph([("A", 1, 2, 0.0, False), ("B", 2, 3, 100.0, False), ("C", 3, 3, 100.0, False),
                ("D", 3, 4, 100.0, math.nan, True), ("", 4, 5, 100.0, False),
                ("E", 5, 6, -1.0, 0.0, False)])
    problems = dict(caught.value.problems)
    assert list(problems) == ["A", "C", "D", "#4", "E"]
    assert "length_m" in problems["E"] and "speed_kmh" in problems["E"]
    assert problems["#4"] == "the code is missing"
    assert str(caught.value).startswith("5 bad road segment(s): A (")


def test_build_graph_rejects_no_segments_and_ragged_arrays():
    with pytest.raises(RoadInputError, match="no road segments"):
        routing.build_graph([], [], [], [], [], [])
    with pytest.raises(RoadInputError, match="differ in length: codes 2, source 1"):
        routing.build_graph(["A", "B"], [1], [2, 3], [1.0, 1.0], [30.0, 30.0], [False, False])


@pytest.mark.parametrize(("name", "bad"), [
    ("source", np.array([1.5])), ("target", np.array(["2"])), ("oneway", np.array([1])),
    ("length_m", np.array(["100"])),
])
def test_build_graph_rejects_wrong_array_types(name, bad):
    arrays = {"codes": ["A"], "source": np.array([1]), "target": np.array([2]),
              "length_m": np.array([100.0]), "speed_kmh": np.array([30.0]),
              "oneway": np.array([False])}
    arrays[name] = bad
    with pytest.raises(RoadInputError, match=name):
        routing.build_graph(**arrays)


# ---------------------------------------------------------------- travel times and routes

def test_one_way_is_respected():
    # 1 -> 2 one-way (10 s), 2 - 3 two-way (20 s).
    graph = _graph([("A", 1, 2, 100.0, True), ("B", 2, 3, 200.0, False)])
    one, two, three = (_idx(graph, i) for i in (1, 2, 3))
    reach = routing.reach_targets(graph, _all_open(graph), [one, three])
    assert reach.time_s[0].tolist() == [0.0, math.inf, math.inf]   # nobody gets back to 1
    assert reach.time_s[1].tolist() == [30.0, 20.0, 0.0]
    assert _codes(graph, routing.route(graph, reach, 1, one)) == ["A", "B"]
    with pytest.raises(ValueError, match="cannot reach"):
        routing.route(graph, reach, 0, three)
    assert reach.next_node[0].tolist() == [-1, -1, -1]
    assert reach.next_arc[0].tolist() == [-1, -1, -1]


def test_a_closure_reroutes():
    # Direct 1-3 (50 s) or around by 2 (30 + 40 s).
    graph = _graph([("DIRECT", 1, 3, 500.0, False), ("UP", 1, 2, 300.0, False),
                    ("OVER", 2, 3, 400.0, False)])
    one, three = _idx(graph, 1), _idx(graph, 3)
    reach = routing.reach_targets(graph, _all_open(graph), [three])
    assert _codes(graph, routing.route(graph, reach, 0, one)) == ["DIRECT"]
    closed = routing.reach_targets(graph, _open_except(graph, "DIRECT"), [three])
    assert closed.time_s[0, one] == 70.0
    assert _codes(graph, routing.route(graph, closed, 0, one)) == ["UP", "OVER"]
    cut = routing.reach_targets(graph, _open_except(graph, "DIRECT", "OVER"), [three])
    assert cut.time_s[0, one] == math.inf


def test_parallel_segments_take_the_faster_and_name_it():
    # Three roads between 1 and 2, one of them drawn the other way round, plus a one-way
    # shortcut 2 -> 1 that only counts in its own direction.
    graph = _graph([("SLOW", 1, 2, 900.0, False), ("FAST", 2, 1, 300.0, False),
                    ("MID", 1, 2, 600.0, False), ("SHORTCUT", 2, 1, 100.0, True),
                    ("ON", 2, 3, 100.0, False)])
    one, two, three = (_idx(graph, i) for i in (1, 2, 3))
    reach = routing.reach_targets(graph, _all_open(graph), [three, one])
    assert reach.time_s[0, one] == 40.0
    assert _codes(graph, routing.route(graph, reach, 0, one)) == ["FAST", "ON"]
    assert reach.time_s[1, three] == 20.0
    assert _codes(graph, routing.route(graph, reach, 1, three)) == ["ON", "SHORTCUT"]
    without_fast = routing.reach_targets(graph, _open_except(graph, "FAST"), [three])
    assert _codes(graph, routing.route(graph, without_fast, 0, one)) == ["MID", "ON"]


def test_equal_parallel_segments_give_the_same_route_every_time():
    graph = _graph([("TWIN-B", 1, 2, 100.0, False), ("TWIN-A", 2, 1, 100.0, False)])
    one, two = _idx(graph, 1), _idx(graph, 2)
    for start, goal in ((one, two), (two, one)):   # both ways: the lowest segment index wins
        routes = {tuple(routing.route(graph, routing.reach_targets(graph, _all_open(graph),
                                                                   [goal]), 0, start))
                  for _ in range(5)}
        assert routes == {(0,)}


def test_limit_cuts_off_and_includes_its_boundary():
    graph = _graph([("A", 1, 2, 600.0, False), ("B", 2, 3, 600.0, False)])
    one, two, three = (_idx(graph, i) for i in (1, 2, 3))
    short = routing.reach_targets(graph, _all_open(graph), [three], limit_s=100.0)
    assert short.time_s[0].tolist() == [math.inf, 60.0, 0.0]
    assert short.next_node[0, one] == -1 and short.next_node[0, two] == three
    with pytest.raises(ValueError, match="within 100 s"):
        routing.route(graph, short, 0, one)
    exact = routing.reach_targets(graph, _all_open(graph), [three], limit_s=120.0)
    assert exact.time_s[0, one] == 120.0
    assert _codes(graph, routing.route(graph, exact, 0, one)) == ["A", "B"]
    zero = routing.reach_targets(graph, _all_open(graph), [three], limit_s=0.0)
    assert zero.time_s[0].tolist() == [math.inf, math.inf, 0.0]


def test_disconnected_parts_are_unreachable():
    graph = _graph([("W1", 1, 2, 100.0, False), ("E1", 10, 11, 100.0, False),
                    ("E2", 11, 12, 100.0, False)])
    reach = routing.reach_targets(graph, _all_open(graph), [_idx(graph, 12)])
    assert reach.time_s[0].tolist() == [math.inf, math.inf, 20.0, 10.0, 0.0]
    assert routing.components(graph, _all_open(graph)).tolist() == [0, 0, 1, 1, 1]


def test_a_one_way_trap_is_entered_but_never_left():
    # 1 - 2 - 3 two-way; 3 -> 4 one-way and nothing leaves 4.
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 100.0, False),
                    ("INTO", 3, 4, 100.0, True)])
    one, four = _idx(graph, 1), _idx(graph, 4)
    reach = routing.reach_targets(graph, _all_open(graph), [one, four])
    assert reach.time_s[0, four] == math.inf
    assert reach.time_s[1].tolist() == [30.0, 20.0, 10.0, 0.0]
    leaves = routing.open_nodes(graph, _all_open(graph), "out")
    assert leaves.tolist() == [True, True, True, False]
    assert routing.open_nodes(graph, _all_open(graph), "in").tolist() == [True, True, True, True]
    # A village next to the trap is attached to the nearest node it can leave from.
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]])
    index, dist = routing.nearest_nodes(xy, [[310.0, 0.0]], usable=leaves)
    assert index.tolist() == [2] and dist.tolist() == [110.0]


def test_an_isolated_target_reaches_only_itself():
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 100.0, False)])
    one, three = _idx(graph, 1), _idx(graph, 3)
    open_ = _open_except(graph, "B")
    reach = routing.reach_targets(graph, open_, [three, one])
    assert reach.time_s[0].tolist() == [math.inf, math.inf, 0.0]
    assert routing.route(graph, reach, 0, three) == []
    assert routing.route(graph, reach, 1, one) == []
    assert routing.open_nodes(graph, open_).tolist() == [True, True, False]
    assert routing.components(graph, open_).tolist() == [0, 0, 1]


def test_duplicate_targets_are_computed_once_and_kept_in_order():
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 200.0, True)])
    one, two, three = (_idx(graph, i) for i in (1, 2, 3))
    reach = routing.reach_targets(graph, _all_open(graph), [three, one, three, three])
    assert reach.targets.tolist() == [three, one, three, three]
    assert reach.time_s.shape == reach.next_node.shape == reach.next_arc.shape == (4, 3)
    for row in (0, 2, 3):
        assert reach.time_s[row].tolist() == [30.0, 20.0, 0.0]
        assert routing.route(graph, reach, row, one) == [0, 1]
    assert reach.time_s[1].tolist() == [0.0, 10.0, math.inf]


def test_no_targets_give_empty_rows():
    graph = _graph([("A", 1, 2, 100.0, False)])
    reach = routing.reach_targets(graph, _all_open(graph), np.array([], dtype=np.int64))
    assert reach.time_s.shape == (0, 2) and reach.next_arc.shape == (0, 2)
    compact = routing.reach_targets(graph, _all_open(graph), [], sources=[1, 0, 1])
    assert compact.time_s.shape == (0, 3) and len(compact.tree_node) == 0
    no_sources = routing.reach_targets(graph, _all_open(graph), [1], sources=[])
    assert no_sources.time_s.shape == (1, 0)
    assert routing.route(graph, no_sources, 0, 0) == [0]    # routes do not need sources


def test_reach_arrays_are_read_only():
    graph = _graph([("A", 1, 2, 100.0, False)])
    for reach in (routing.reach_targets(graph, _all_open(graph), [0]),
                  routing.reach_targets(graph, _all_open(graph), [0], sources=[1])):
        for name in ("targets", "time_s", "tree_of", "tree_start", "tree_node", "tree_next",
                     "hop_key", "hop_arc"):
            with pytest.raises(ValueError):
                getattr(reach, name)[0] = 5
    assert not reach.sources.flags.writeable


def test_sources_give_times_from_just_those_nodes():
    # Two parts: 1 - 2 - 3 (one-way 2 -> 3) and 10 - 11; a source may repeat or lie elsewhere.
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 200.0, True),
                    ("C", 10, 11, 500.0, False)])
    one, two, three, ten, eleven = (_idx(graph, i) for i in (1, 2, 3, 10, 11))
    sources = [three, one, eleven, one, two]
    reach = routing.reach_targets(graph, _all_open(graph), [three, one, ten, three], 100.0,
                                  sources=sources)
    inf = math.inf
    assert reach.time_s.tolist() == [[0.0, 30.0, inf, 30.0, 20.0],
                                     [inf, 0.0, inf, 0.0, 10.0],
                                     [inf, inf, 50.0, inf, inf],
                                     [0.0, 30.0, inf, 30.0, 20.0]]
    assert reach.sources.tolist() == sources and reach.targets.tolist() == [three, one, ten, three]
    assert reach.next_node is None and reach.next_arc is None
    assert reach.tree_of[0] == reach.tree_of[3] and len(reach.tree_start) == 4   # 3 trees
    # Routes work from any node of the target's tree, source or not.
    assert _codes(graph, routing.route(graph, reach, 3, one)) == ["A", "B"]
    assert _codes(graph, routing.route(graph, reach, 2, eleven)) == ["C"]
    assert routing.route(graph, reach, 1, one) == []
    for row, node in ((0, eleven), (2, one), (1, three)):
        with pytest.raises(ValueError, match="cannot reach"):
            routing.route(graph, reach, row, node)
    short = routing.reach_targets(graph, _all_open(graph), [eleven], 49.0, sources=[ten])
    assert short.time_s.tolist() == [[inf]]
    with pytest.raises(ValueError, match="within 49 s"):
        routing.route(graph, short, 0, ten)


def test_each_search_runs_on_its_targets_part_only(monkeypatch):
    # Three parts of 3, 2 and 4 nodes; targets in the first and last only.
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 100.0, False),
                    ("C", 10, 11, 100.0, False),
                    ("D", 20, 21, 100.0, False), ("E", 21, 22, 100.0, True),
                    ("F", 22, 23, 100.0, False)])
    searched = []

    def spy(csgraph, **kwargs):
        searched.append((csgraph.shape, len(kwargs["indices"])))
        return dijkstra(csgraph, **kwargs)

    dijkstra = routing.dijkstra
    monkeypatch.setattr(routing, "dijkstra", spy)
    targets = [_idx(graph, 23), _idx(graph, 2), _idx(graph, 20), _idx(graph, 2)]
    reach = routing.reach_targets(graph, _all_open(graph), targets, sources=[0, 3])
    assert sorted(searched) == [((3, 3), 1), ((4, 4), 2)]
    assert set(reach.tree_node.tolist()) == {0, 1, 2, 5, 6, 7, 8}   # nothing from part 10 - 11
    assert reach.time_s[:, 1].tolist() == [math.inf] * 4


def test_chunked_searches_give_the_same_reach(monkeypatch):
    # A 12 x 12 grid with 30 targets, searched whole and then a few targets at a time.
    ids = np.arange(144, dtype=np.int64).reshape(12, 12)
    source = np.concatenate((ids[:, :-1].ravel(), ids[:-1, :].ravel()))
    target = np.concatenate((ids[:, 1:].ravel(), ids[1:, :].ravel()))
    rng = np.random.default_rng(3)
    n = len(source)
    graph = routing.build_graph([f"G{i}" for i in range(n)], source, target,
                                rng.choice([100.0, 200.0, 300.0], n), np.full(n, KMH),
                                rng.random(n) < 0.2)
    targets = rng.choice(144, size=30)
    whole = routing.reach_targets(graph, _all_open(graph), targets, 150.0, sources=np.arange(144))
    monkeypatch.setattr(routing, "_CHUNK_ENTRIES", 144 * 4)    # 4 targets a search
    chunked = routing.reach_targets(graph, _all_open(graph), targets, 150.0,
                                    sources=np.arange(144))
    for name in ("time_s", "tree_of", "tree_start", "tree_node", "tree_next"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name
    assert np.isfinite(whole.time_s).any() and not np.isfinite(whole.time_s).all()


@pytest.mark.parametrize(("open_", "targets", "limit", "match"), [
    (np.array([1, 1]), [0], 10.0, "open_segments"),            # 0/1, not booleans
    (np.array([True]), [0], 10.0, "open_segments"),            # one per segment
    (np.array([True, True]), [3], 10.0, "targets"),
    (np.array([True, True]), [-1], 10.0, "targets"),
    (np.array([True, True]), [0.0], 10.0, "targets"),
    (np.array([True, True]), [0], -1.0, "limit_s"),
    (np.array([True, True]), [0], math.nan, "limit_s"),
])
def test_reach_targets_rejects_bad_arguments(open_, targets, limit, match):
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 100.0, False)])
    with pytest.raises(ValueError, match=match):
        routing.reach_targets(graph, open_, targets, limit)


@pytest.mark.parametrize("sources", [[3], [-1], [0.5], [[0, 1]], ["0"]])
def test_reach_targets_rejects_bad_sources(sources):
    graph = _graph([("A", 1, 2, 100.0, False), ("B", 2, 3, 100.0, False)])
    with pytest.raises(ValueError, match="sources"):
        routing.reach_targets(graph, _all_open(graph), [0], sources=sources)


def test_route_rejects_bad_rows_and_nodes():
    graph = _graph([("A", 1, 2, 100.0, False)])
    reach = routing.reach_targets(graph, _all_open(graph), [0])
    with pytest.raises(ValueError, match="target_row"):
        routing.route(graph, reach, 1, 0)
    with pytest.raises(ValueError, match="from_node"):
        routing.route(graph, reach, 0, 2)


# ---------------------------------------------------------------- positions and nearest nodes

def test_node_positions_average_the_segment_ends():
    graph = _graph([("A", 5, 7, 100.0, False), ("B", 7, 9, 100.0, True)])
    first = np.array([[0.0, 0.0], [100.0, 0.2]])
    last = np.array([[100.0, 0.0], [200.0, 50.0]])
    xy = routing.node_positions(graph, first, last)
    assert xy.tolist() == [[0.0, 0.0], [100.0, 0.1], [200.0, 50.0]]
    with pytest.raises(ValueError, match="shape"):
        routing.node_positions(graph, first[:1], last)


def test_nearest_nodes_with_and_without_a_mask():
    xy = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0]])
    points = np.array([[10.0, 0.0], [990.0, 30.0], [math.nan, 0.0]])
    index, dist = routing.nearest_nodes(xy, points)
    assert index.tolist() == [0, 1, -1]
    assert dist[:2] == pytest.approx([10.0, math.hypot(10.0, 30.0)]) and dist[2] == math.inf
    index, dist = routing.nearest_nodes(xy, points, usable=np.array([False, False, True]))
    assert index.tolist() == [2, 2, -1]
    assert dist[0] == pytest.approx(math.hypot(10.0, 1000.0))
    index, dist = routing.nearest_nodes(xy, points, usable=np.zeros(3, dtype=bool))
    assert index.tolist() == [-1, -1, -1] and np.isinf(dist).all()
    with pytest.raises(ValueError, match="usable"):
        routing.nearest_nodes(xy, points, usable=np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="points_xy"):
        routing.nearest_nodes(xy, [[1.0, 2.0, 3.0]])
    index, dist = routing.nearest_nodes(xy, [])
    assert index.shape == dist.shape == (0,)


# ---------------------------------------------------------------- against an independent search

def _reference_times(node_ids, segments, open_):
    """Plain forward Dijkstra from every node: {(from_id, to_id): seconds} over open segments."""
    out = {}
    for code_index, (s, t, length, speed, oneway) in enumerate(segments):
        if open_[code_index]:
            seconds = length / (speed / 3.6)
            out.setdefault(s, []).append((t, seconds))
            if not oneway:
                out.setdefault(t, []).append((s, seconds))
    times = {}
    for start in node_ids:
        best = {start: 0.0}
        heap = [(0.0, start)]
        while heap:
            d, node = heapq.heappop(heap)
            if d > best[node]:
                continue
            for nxt, seconds in out.get(node, []):
                if d + seconds < best.get(nxt, math.inf):
                    best[nxt] = d + seconds
                    heapq.heappush(heap, (d + seconds, nxt))
        times.update({(start, end): d for end, d in best.items()})
    return times


@st.composite
def _networks(draw):
    n = draw(st.integers(2, 8))
    ids = draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n, unique=True))
    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1])
    speeds = st.sampled_from([5.0, 20.0, 30.0, 47.5, 90.0])
    segment = st.tuples(pair, st.floats(1.0, 5000.0), speeds, st.booleans(), st.booleans())
    drawn = draw(st.lists(segment, min_size=1, max_size=16))
    segments = [(ids[a], ids[b], length, speed, oneway)
                for (a, b), length, speed, oneway, _ in drawn]
    open_ = np.array([is_open for *_, is_open in drawn])
    used = sorted({node for s, t, *_ in segments for node in (s, t)})
    targets = draw(st.lists(st.sampled_from(used), min_size=1, max_size=4))   # external ids
    limit = draw(st.one_of(st.just(math.inf), st.floats(0.0, 3000.0)))
    return segments, open_, targets, limit


def _build(segments):
    columns = (np.array(column) for column in zip(*segments, strict=True))
    return routing.build_graph([f"S{i}" for i in range(len(segments))], *columns)


def _walk(graph, segments, open_, start, route):
    """The node id reached by travelling `route` from node id `start`, checking each step."""
    node, total = start, 0.0
    for index in route:
        s, t, length, speed, oneway = segments[index]
        assert open_[index], f"route uses closed {graph.codes[index]}"
        if node == s:
            node = t
        else:
            assert node == t and not oneway, f"{graph.codes[index]} does not leave {node} here"
            node = s
        total += length / (speed / 3.6)
    return node, total


@settings(deadline=None, max_examples=150)
@given(_networks())
def test_agrees_with_an_independent_dijkstra(network):
    segments, open_, targets, limit = network
    graph = _build(segments)
    reach = routing.reach_targets(graph, open_, graph.node_index(targets), limit)
    expected = _reference_times(graph.node_ids.tolist(), segments, open_)
    for row, goal_id in enumerate(targets):
        goal = int(graph.node_index([goal_id])[0])
        for node, node_id in enumerate(graph.node_ids.tolist()):
            want = expected.get((node_id, goal_id), math.inf)
            got = reach.time_s[row, node]
            if math.isfinite(want) and math.isclose(want, limit, rel_tol=1e-9):
                assert got == pytest.approx(want, rel=1e-9) or got == math.inf
                continue  # summed in another order, a time at the limit may fall either side
            if want > limit:
                want = math.inf
            if want == math.inf:
                assert got == math.inf
                assert reach.next_node[row, node] == -1 and reach.next_arc[row, node] == -1
                with pytest.raises(ValueError):
                    routing.route(graph, reach, row, node)
                continue
            assert got == pytest.approx(want, rel=1e-9, abs=0.0)
            path = routing.route(graph, reach, row, node)
            end, total = _walk(graph, segments, open_, node_id, path)
            assert end == goal_id
            assert total == pytest.approx(got, rel=1e-9, abs=0.0)
            assert (reach.next_node[row, node] == -1) == (node == goal)


@st.composite
def _parted_networks(draw):
    """Like _networks, but with 1-4 parts that share no node, and sources (repeats allowed)."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    ids = draw(st.lists(st.integers(-2**62, 2**62), min_size=sum(sizes), max_size=sum(sizes),
                        unique=True))
    speeds = st.sampled_from([5.0, 20.0, 30.0, 47.5, 90.0])
    segments, open_, first = [], [], 0
    for size in sizes:
        part = ids[first:first + size]
        first += size
        if size == 1:
            continue   # a node of no segment is no node: the part only shifts the ids
        pair = st.tuples(st.sampled_from(part), st.sampled_from(part)).filter(
            lambda p: p[0] != p[1])
        segment = st.tuples(pair, st.floats(1.0, 5000.0), speeds, st.booleans(), st.booleans())
        for (a, b), length, speed, oneway, is_open in draw(st.lists(segment, min_size=1,
                                                                     max_size=8)):
            segments.append((a, b, length, speed, oneway))
            open_.append(is_open)
    if not segments:
        segments, open_ = [(ids[0], ids[0] + 1 if ids[0] + 1 not in ids else ids[0] - 1, 100.0,
                            30.0, False)], [True]
    used = sorted({node for s, t, *_ in segments for node in (s, t)})
    targets = draw(st.lists(st.sampled_from(used), min_size=0, max_size=5))
    sources = draw(st.lists(st.sampled_from(used), min_size=0, max_size=8))
    limit = draw(st.one_of(st.just(math.inf), st.floats(0.0, 3000.0)))
    return segments, np.array(open_), targets, sources, limit


@settings(deadline=None, max_examples=150)
@given(_parted_networks())
def test_compact_form_agrees_with_the_dense_form_and_an_independent_dijkstra(network):
    segments, open_, targets, sources, limit = network
    graph = _build(segments)
    rows, columns = graph.node_index(targets), graph.node_index(sources)
    dense = routing.reach_targets(graph, open_, rows, limit)
    compact = routing.reach_targets(graph, open_, rows, limit, sources=columns)
    assert compact.time_s.shape == (len(targets), len(sources))
    assert np.array_equal(compact.time_s, dense.time_s[:, columns])
    expected = _reference_times(graph.node_ids.tolist(), segments, open_)
    for row, goal_id in enumerate(targets):
        for col, start_id in enumerate(sources):
            want = expected.get((start_id, goal_id), math.inf)
            got = compact.time_s[row, col]
            if math.isfinite(want) and math.isclose(want, limit, rel_tol=1e-9):
                continue  # summed in another order, a time at the limit may fall either side
            assert got == (pytest.approx(want, rel=1e-9, abs=0.0) if want <= limit else math.inf)
        # Routes agree from every node, source or not, and walk to the goal in the stated time.
        for node, node_id in enumerate(graph.node_ids.tolist()):
            if not math.isfinite(dense.time_s[row, node]):
                with pytest.raises(ValueError, match="cannot reach"):
                    routing.route(graph, compact, row, node)
                continue
            path = routing.route(graph, compact, row, node)
            assert path == routing.route(graph, dense, row, node)
            end, total = _walk(graph, segments, open_, node_id, path)
            assert end == goal_id
            assert total == pytest.approx(dense.time_s[row, node], rel=1e-9, abs=0.0)


@settings(deadline=None, max_examples=60)
@given(_networks())
def test_components_match_an_undirected_flood_fill(network):
    segments, open_, _, _ = network
    graph = _build(segments)
    labels = routing.components(graph, open_)
    both_ways = [(s, t, 1.0, 3.6, False) for s, t, *_ in segments]
    linked = _reference_times(graph.node_ids.tolist(), both_ways, open_)
    for a, a_id in enumerate(graph.node_ids.tolist()):
        for b, b_id in enumerate(graph.node_ids.tolist()):
            assert (labels[a] == labels[b]) == ((a_id, b_id) in linked)


# ---------------------------------------------------------------- scale

def _grids(parts, rows, cols, length_m):
    """`parts` separate rows x cols grids, two-way, node index = (part, row, col) in that order."""
    ids = np.arange(parts * rows * cols, dtype=np.int64).reshape(parts, rows, cols) * 7 + 1000
    source = np.concatenate((ids[:, :, :-1].ravel(), ids[:, :-1, :].ravel()))
    target = np.concatenate((ids[:, :, 1:].ravel(), ids[:, 1:, :].ravel()))
    n = len(source)
    return routing.build_graph([f"G{i}" for i in range(n)], source, target,
                               np.full(n, length_m), np.full(n, KMH), np.zeros(n, dtype=bool))


def _check_grid_reach(graph, reach, rows, cols, hop_s, rng):
    """Times are Manhattan hops x hop_s within a part and the limit; trees hold just those nodes."""
    part_of, within_part = np.divmod(np.arange(graph.n_nodes), rows * cols)
    r, c = np.divmod(within_part, cols)
    t, s = reach.targets[:, None], reach.sources[None, :]
    hops = np.abs(r[t] - r[s]) + np.abs(c[t] - c[s])
    within = (part_of[t] == part_of[s]) & (hops * hop_s <= reach.limit_s)
    assert np.array_equal(reach.time_s, np.where(within, hops * hop_s, np.inf))
    local_r, local_c = np.divmod(np.arange(rows * cols), cols)
    for tree in range(len(reach.tree_start) - 1):   # a tree holds the nodes within the limit
        span = slice(reach.tree_start[tree], reach.tree_start[tree + 1])
        goal = reach.tree_node[span][reach.tree_next[span] == -1]
        hops_to = np.abs(local_r - r[goal]) + np.abs(local_c - c[goal])
        near = np.flatnonzero(hops_to * hop_s <= reach.limit_s) + part_of[goal] * rows * cols
        assert np.array_equal(reach.tree_node[span], near)
    ends = np.concatenate((graph.arc_tail[:graph.n_segments], graph.arc_head[:graph.n_segments]))
    for row, col in zip(*(rng.permutation(np.argwhere(within))[:20].T), strict=True):
        node = int(reach.sources[col])
        path = routing.route(graph, reach, int(row), node)
        assert len(path) == hops[row, col]
        for segment in path:   # every segment leaves the node reached so far (all two-way)
            tail, head = ends[segment], ends[segment + graph.n_segments]
            assert node in (tail, head)
            node = int(head if node == tail else tail)
        assert node == reach.targets[row]


def test_a_prefecture_of_103_townships_stays_small():
    # 103 parts of 18 x 30 nodes (55,620 in all), 2000 m a hop at 36 km/h: 200 s. 6 shelters a
    # township, 1,106 villages, a 7200 s limit (36 hops): the planner's case. Dense arrays would
    # take 618 x 55,620 x 16 bytes = 550 MB.
    graph = _grids(103, 18, 30, 2000.0)
    rng = np.random.default_rng(11)
    targets = (np.arange(103)[:, None] * 540 + np.array(
        [rng.choice(540, 6, replace=False) for _ in range(103)])).ravel()
    sources = rng.choice(graph.n_nodes, size=1106, replace=False)
    reach = routing.reach_targets(graph, _all_open(graph), targets, 7200.0, sources=sources)
    assert reach.time_s.shape == (618, 1106) and reach.next_node is None
    assert reach.nbytes < 50 * 2**20
    assert reach.nbytes == sum(getattr(reach, name).nbytes for name in (
        "targets", "sources", "time_s", "tree_of", "tree_start", "tree_node", "tree_next",
        "hop_key", "hop_arc"))
    _check_grid_reach(graph, reach, 18, 30, 200.0, rng)


def test_a_60000_node_grid_with_300_targets():
    # 240 x 250 nodes, 900 m between neighbours at 36 km/h: 90 s a hop, exactly. A node is within
    # the 3600 s limit of a target iff it is at most 40 hops away (Manhattan distance).
    graph = _grids(1, 240, 250, 900.0)
    assert graph.n_nodes == 60_000 and len(graph.arc_tail) == 2 * graph.n_segments
    rng = np.random.default_rng(7)
    targets = rng.choice(graph.n_nodes, size=300, replace=False)
    sources = rng.choice(graph.n_nodes, size=1106, replace=False)
    reach = routing.reach_targets(graph, _all_open(graph), targets, 3600.0, sources=sources)
    assert reach.nbytes < 50 * 2**20
    _check_grid_reach(graph, reach, 240, 250, 90.0, rng)
