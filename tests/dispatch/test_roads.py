"""The directed road graph: OSM rules per vehicle, snapping, many-to-many seconds and metres,
fallbacks, traffic, and the engine asking per vehicle type. Pure: no database."""

from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from dispatch.engine.assignment import solve_round
from dispatch.engine.geo import haversine_m
from dispatch.engine.model import Driver, Order
from dispatch.engine.road_rules import parse_maxspeed_kmh, profile_for, way_access
from dispatch.engine.roads import (
    TRAFFIC_H3_RES,
    RoadDataError,
    RoadRouter,
    TrafficSnapshot,
    build_network,
    load_or_build,
)
from dispatch.engine.travel import VEHICLE_SPEED_MPS, HaversineTravelTimes, RoadTravelTimes, matrix_s

HELSINKI = Path(__file__).resolve().parent.parent / "fixtures" / "osm" / "helsinki-center.osm.pbf"
MONACO = Path(__file__).resolve().parent.parent / "fixtures" / "osm" / "monaco-latest-2019.osm.pbf"

# --- rules ----------------------------------------------------------------------------------------


def test_one_way_streets_roundabouts_and_reversed_ways():
    car = way_access({"highway": "residential", "oneway": "yes"})["car"]
    assert (car.forward, car.backward) == (True, False)
    back = way_access({"highway": "residential", "oneway": "-1"})["car"]
    assert (back.forward, back.backward) == (False, True)
    ring = way_access({"highway": "primary", "junction": "roundabout"})["car"]
    assert (ring.forward, ring.backward) == (True, False)
    both = way_access({"highway": "primary", "junction": "roundabout", "oneway": "no"})["car"]
    assert both.forward and both.backward


def test_bicycles_ride_against_one_way_streets_only_where_allowed():
    assert not way_access({"highway": "residential", "oneway": "yes"})["bicycle"].backward
    for extra in ({"oneway:bicycle": "no"}, {"cycleway": "opposite"}, {"cycleway:left": "opposite_lane"}):
        bike = way_access({"highway": "residential", "oneway": "yes", **extra})["bicycle"]
        assert bike.forward and bike.backward, extra
        assert not way_access({"highway": "residential", "oneway": "yes", **extra})["car"].backward


def test_who_may_use_which_way():
    assert set(way_access({"highway": "cycleway"})) == {"bicycle"}
    assert way_access({"highway": "footway"}) == {}
    assert set(way_access({"highway": "footway", "bicycle": "yes"})) == {"bicycle"}
    assert "bicycle" not in way_access({"highway": "primary", "bicycle": "use_sidepath"})
    assert "bicycle" not in way_access({"highway": "motorway"})
    assert "truck" not in way_access({"highway": "residential", "hgv": "no"})
    assert "car" in way_access({"highway": "residential", "hgv": "no"})
    assert way_access({"highway": "service", "access": "private"}) == {}
    assert "car" in way_access({"highway": "service", "access": "no", "motor_vehicle": "yes"})
    assert way_access({"highway": "steps"}) == {}


def test_speeds_follow_maxspeed_highway_class_and_vehicle():
    fast = way_access({"highway": "primary", "maxspeed": "60"})
    assert fast["car"].speed_mps == pytest.approx(60 * 0.8 / 3.6)
    assert fast["truck"].speed_mps < fast["van"].speed_mps < fast["car"].speed_mps
    assert way_access({"highway": "living_street"})["car"].speed_mps == pytest.approx(10 / 3.6)
    assert (
        way_access({"highway": "cycleway"})["bicycle"].speed_mps
        > way_access({"highway": "residential"})["bicycle"].speed_mps
    )
    assert parse_maxspeed_kmh("30 mph") == pytest.approx(48.28, abs=0.01)
    assert parse_maxspeed_kmh("50;30") == 30
    assert parse_maxspeed_kmh("FI:urban") is None
    with pytest.raises(ValueError, match="unknown vehicle type 'hovercraft'"):
        profile_for("hovercraft")


# --- a small town drawn by hand --------------------------------------------------------------------

LAT, LON = 60.17, 24.94
STEP = 0.001  # about 111 m north, 55 m east at this latitude


def node(i, lat, lon):
    return f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>'


def way(i, refs, **tags):
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    tag = "".join(f'<tag k="{k.replace("_", ":")}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{i}" version="1">{nds}{tag}</way>'


def write_osm(path: Path, nodes, ways) -> Path:
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">'
        + "".join(nodes)
        + "".join(ways)
        + "</osm>"
    )
    return path


@pytest.fixture
def town(tmp_path):
    """A square block: 1 -> 2 one way (east), 2 - 3 - 4 - 1 two-way round the block; bikes may
    ride 2 -> 1 against the one way; a cycleway 1 - 5 only bikes use."""
    nodes = [
        node(1, LAT, LON),
        node(2, LAT, LON + STEP),
        node(3, LAT + STEP, LON + STEP),
        node(4, LAT + STEP, LON),
        node(5, LAT - STEP, LON),
    ]
    ways = [
        way(10, [1, 2], highway="residential", oneway="yes", oneway_bicycle="no", maxspeed="30"),
        way(11, [2, 3, 4, 1], highway="residential", maxspeed="30"),
        way(12, [1, 5], highway="cycleway"),
    ]
    return write_osm(tmp_path / "town.osm", nodes, ways)


def pt(k):
    return {
        1: (LAT, LON),
        2: (LAT, LON + STEP),
        3: (LAT + STEP, LON + STEP),
        4: (LAT + STEP, LON),
        5: (LAT - STEP, LON),
    }[k]


def test_a_car_goes_round_the_block_against_a_one_way_street_and_a_bike_does_not(town):
    router = RoadRouter(build_network(town))
    car = router.matrix([pt(1), pt(2)], [pt(1), pt(2)], "car")
    side = haversine_m(*pt(1), *pt(2))
    up = haversine_m(*pt(2), *pt(3))
    assert car.metres[0, 1] == pytest.approx(side, rel=1e-6)  # with the one way
    top = haversine_m(*pt(3), *pt(4))
    assert car.metres[1, 0] == pytest.approx(up + top + up, rel=1e-6)  # round the block
    assert car.seconds[0, 1] == pytest.approx(side / (30 * 0.8 / 3.6), rel=1e-6)
    assert car.seconds[0, 0] == 0 and not car.fallback.any()
    bike = router.matrix([pt(2)], [pt(1)], "bicycle")
    assert bike.metres[0, 0] == pytest.approx(side, rel=1e-6)  # contraflow allowed
    assert bike.seconds[0, 0] == pytest.approx(side / (16 / 3.6), rel=1e-6)


def test_points_off_the_graph_are_flagged_and_get_the_fallback(town):
    router = RoadRouter(build_network(town), max_snap_m=100)
    far = (LAT + 0.05, LON)  # 5.5 km north
    result = router.matrix([pt(1), far], [pt(2)], "car")
    assert result.fallback.tolist() == [[False], [True]] and np.isinf(result.seconds[1, 0])
    # Only bikes reach node 5 (a cycleway): a car snaps it to the nearest car node instead.
    wide = RoadRouter(build_network(town))
    assert wide.snap([pt(5)], "car").nodes[0] == wide.snap([pt(1)], "car").nodes[0]
    assert wide.snap([pt(5)], "bicycle").nodes[0] != wide.snap([pt(1)], "bicycle").nodes[0]
    travel = RoadTravelTimes(router, fallback=HaversineTravelTimes(detour_factor=1.3))
    filled = travel.matrix([pt(1), far], [pt(2)], None, "car")
    assert filled.fallback[1, 0]
    assert filled.seconds[1, 0] == pytest.approx(
        haversine_m(*far, *pt(2)) * 1.3 / VEHICLE_SPEED_MPS["car"], rel=1e-6
    )


def test_snap_legs_are_added_at_walking_pace(town):
    router = RoadRouter(build_network(town))
    near_1 = (LAT - 0.0002, LON)  # 22 m south of node 1 (on the cycleway's side: bikes snap onto it)
    car = router.matrix([near_1], [pt(2)], "car")
    snap = haversine_m(*near_1, *pt(1))
    assert car.metres[0, 0] == pytest.approx(snap + haversine_m(*pt(1), *pt(2)), rel=1e-6)
    assert car.seconds[0, 0] == pytest.approx(snap / 2.0 + haversine_m(*pt(1), *pt(2)) / (24 / 3.6), rel=1e-6)


def test_a_closed_road_reroutes_and_a_slow_area_slows(town):
    router = RoadRouter(build_network(town))
    free = router.matrix([pt(1)], [pt(2)], "car")
    closed = router.matrix([pt(1)], [pt(2)], "car", TrafficSnapshot(key="closed", way_factors={10: 0.0}))
    assert closed.metres[0, 0] > free.metres[0, 0] * 2  # round the block the other way
    everywhere = dict.fromkeys(build_network(town).segment_cells().tolist(), 0.5)
    slow = router.matrix([pt(1)], [pt(2)], "car", TrafficSnapshot(key="slow", cell_factors=everywhere))
    assert slow.seconds[0, 0] == pytest.approx(2 * free.seconds[0, 0], rel=1e-6)
    assert slow.metres[0, 0] == pytest.approx(free.metres[0, 0])
    # The road's own factor wins over its area's.
    both = TrafficSnapshot(key="both", way_factors={10: 1.0}, cell_factors=everywhere)
    assert router.matrix([pt(1)], [pt(2)], "car", both).seconds[0, 0] == pytest.approx(free.seconds[0, 0])


def test_bad_and_empty_files_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(b"\x00\x01 not a pbf at all" * 10)
    with pytest.raises(RoadDataError, match=r"garbage\.osm\.pbf"):
        build_network(garbage)
    empty = write_osm(tmp_path / "empty.osm", [node(1, LAT, LON)], [])
    with pytest.raises(RoadDataError, match=r"empty\.osm: no routable ways"):
        build_network(empty)
    with pytest.raises(RoadDataError, match=r"missing\.osm\.pbf: no such file"):
        build_network(tmp_path / "missing.osm.pbf")


# --- real extracts ---------------------------------------------------------------------------------


def test_helsinki_metres_are_those_of_the_fastest_path():
    router = RoadRouter(build_network(HELSINKI))
    rng = np.random.default_rng(7)
    pts = np.column_stack([rng.uniform(60.165, 60.178, 30), rng.uniform(24.936, 24.952, 30)])
    graph = router.graph("car")
    o = router.snap(pts, "car")
    assert (o.nodes >= 0).sum() >= 25
    nodes = o.nodes[o.nodes >= 0]
    seconds, metres = router.node_matrix(nodes, nodes, "car")
    _, pred = dijkstra(graph.time, indices=nodes, return_predecessors=True)
    n = len(router.network)
    for i, source in enumerate(nodes[:5]):
        for j, target in enumerate(nodes):
            walked, at = 0.0, target
            while at != source:
                prev = pred[i, at]
                walked += graph.metres[np.searchsorted(graph.keys, prev * n + at)]
                at = prev
            assert metres[i, j] == pytest.approx(walked, rel=1e-9, abs=1e-6)
    assert np.isfinite(seconds).all()
    assert (seconds + seconds.T)[np.triu_indices(len(nodes), 1)].min() > 0


def test_vehicle_types_differ_and_one_way_matrices_are_not_symmetric():
    travel = RoadTravelTimes(RoadRouter(build_network(HELSINKI)))
    rng = np.random.default_rng(3)
    pts = [
        tuple(p) for p in np.column_stack([rng.uniform(60.166, 60.177, 40), rng.uniform(24.937, 24.951, 40)])
    ]
    car = travel.matrix(pts, pts, None, "car")
    truck = travel.matrix(pts, pts, None, "truck")
    bike = travel.matrix(pts, pts, None, "bicycle")
    ok = ~car.fallback & ~truck.fallback
    # Trucks are slower on the same streets (some streets differ: motorcar=no lets trucks through).
    assert np.median(truck.seconds[ok] / np.maximum(car.seconds[ok], 1e-9)) > 1.1
    assert not np.allclose(car.seconds[ok], car.seconds.T[ok])  # one-way streets
    assert not np.allclose(bike.seconds, car.seconds)
    seconds, metres = car  # unpacks as (seconds, metres)
    assert seconds.shape == metres.shape == (40, 40)


def test_roundabouts_in_monaco_are_one_way():
    network = build_network(MONACO)
    ring = way_access({"highway": "primary", "junction": "roundabout"})["car"]
    assert ring.forward and not ring.backward
    car = 2  # PROFILES.index("car")
    one_way = (network.speed_fwd[car] > 0) & (network.speed_bwd[car] == 0)
    assert one_way.sum() > 100


def test_the_graph_is_cached_as_a_file(tmp_path):
    first = load_or_build(HELSINKI, tmp_path)
    files = list(tmp_path.glob("roads-*.npz"))
    assert len(files) == 1
    again = load_or_build(HELSINKI, tmp_path)
    assert np.array_equal(first.seg_a, again.seg_a) and np.array_equal(first.speed_fwd, again.speed_fwd)


# --- the engine asks per vehicle --------------------------------------------------------------------


def test_haversine_speeds_per_vehicle_type():
    travel = HaversineTravelTimes(detour_factor=1.3)
    a, b = (60.17, 24.94), (60.18, 24.94)
    bike = matrix_s(travel, [a], [b], vehicle_type="bicycle")[0, 0]
    car = matrix_s(travel, [a], [b], vehicle_type="car")[0, 0]
    assert bike == pytest.approx(haversine_m(*a, *b) * 1.3 / VEHICLE_SPEED_MPS["bicycle"])
    assert bike > car
    seconds, metres = travel.matrix([a], [b], None, "van")
    assert metres[0, 0] == pytest.approx(haversine_m(*a, *b) * 1.3)
    assert seconds[0, 0] == pytest.approx(metres[0, 0] / VEHICLE_SPEED_MPS["van"])
    with pytest.raises(ValueError, match="unknown vehicle type"):
        travel.matrix([a], [b], None, "hovercraft")


def test_the_round_sees_each_drivers_own_vehicle():
    """Two drivers the same distance from the pickup: the car is offered the order, and the
    bicycle's travel to the pickup is longer by the speeds' ratio."""
    travel = HaversineTravelTimes(detour_factor=1.3)
    order = Order("o1", 60.170, 24.940, 60.180, 24.940)
    bike = Driver("bike", 60.165, 24.940, 10, vehicle_type="bicycle")
    car = Driver("car", 60.175, 24.940, 300, vehicle_type="car")
    result = solve_round([bike, car], [order], now_s=0.0, travel=travel)
    assert [a.driver_id for a in result.assignments] == ["car"]
    alone = solve_round([bike], [order], now_s=0.0, travel=travel).assignments[0]
    by_car = result.assignments[0]
    ratio = VEHICLE_SPEED_MPS["car"] / VEHICLE_SPEED_MPS["bicycle"]
    assert alone.terms.travel_to_pickup_s == pytest.approx(by_car.terms.travel_to_pickup_s * ratio, rel=1e-3)


def test_traffic_cells_use_the_traffic_resolution(town):
    cells = build_network(town).segment_cells()
    import h3

    assert {h3.get_resolution(c) for c in cells.tolist()} == {TRAFFIC_H3_RES}


def test_straight_lines_slow_with_their_ends_areas():
    a, b = (60.1700, 24.9400), (60.1800, 24.9400)
    import h3

    cell_a = h3.latlng_to_cell(*a, TRAFFIC_H3_RES)
    snapshots = {
        0.0: TrafficSnapshot(key="none"),
        1.0: TrafficSnapshot(key="half", cell_factors={cell_a: 0.5}),
        2.0: TrafficSnapshot(key="closed", cell_factors={cell_a: 0.0}, way_factors={1: 0.0}),
    }
    travel = HaversineTravelTimes(detour_factor=1.3, traffic=snapshots.get)
    free = travel.matrix([a], [b], 0.0, "car").seconds[0, 0]
    assert travel.matrix([a], [b], None, "car").seconds[0, 0] == free  # no departure: no traffic
    assert travel.matrix([a], [b], 1.0, "car").seconds[0, 0] == pytest.approx(
        free / 0.75
    )  # mean of 0.5 and 1
    assert travel.matrix([a], [b], 2.0, "car").seconds[0, 0] == pytest.approx(free / 0.55)  # closed: 0.1
    pairs = travel.pairs_s(np.array([a, b]), np.array([b, a]), depart_at=1.0, vehicle_type="car")
    assert pairs == pytest.approx([free / 0.75, free / 0.75])


@pytest.mark.parametrize("vehicle_type", ["car", "cargo_bike"])
def test_pairs_are_the_matrix_answers_for_those_pairs_only(vehicle_type):
    """A round asks for candidate pairs (pairs_s), not every driver x every pickup: each pair's
    seconds are exactly the matrix's, on the roads, off them (the fallback) and under traffic;
    and only the pairs asked are counted."""
    rng = np.random.default_rng(7)
    # Half on the extract, half off it (a wider square): both the roads and the fallback answer.
    a = np.column_stack([60.155 + rng.random(400) * 0.027, 24.90 + rng.random(400) * 0.054])
    b = np.column_stack([60.166 + rng.random(60) * 0.010, 24.937 + rng.random(60) * 0.015])
    i, j = rng.integers(0, len(a), 3000), rng.integers(0, len(b), 3000)
    network = load_or_build(HELSINKI, None)
    cells = network.segment_cells().tolist()
    traffic = TrafficSnapshot(key="mixed", cell_factors=dict.fromkeys(cells[::3], 0.5), way_factors={})
    for snapshot in (None, traffic):
        providers = [
            RoadTravelTimes(
                RoadRouter(network),
                fallback=HaversineTravelTimes(detour_factor=1.3, traffic=lambda _t, s=snapshot: s),
                traffic=lambda _t, s=snapshot: s,
            )
            for _ in range(2)
        ]
        matrix = providers[0].matrix([tuple(p) for p in a], [tuple(p) for p in b], 1.0, vehicle_type)
        pairs = providers[1].pairs_s(a[i], b[j], depart_at=1.0, vehicle_type=vehicle_type)
        assert np.array_equal(pairs, matrix.seconds[i, j])
        assert 0 < providers[1].estimated < len(i) and providers[1].routed + providers[1].estimated == len(i)
        assert providers[1].estimated == int(matrix.fallback[i, j].sum())
