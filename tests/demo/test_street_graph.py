"""The street graph read from OSM: which ways count as streets, and shortest paths on them."""

import random
from itertools import pairwise

import osmium
import pytest

from demo.city import BBOX, CITY_PBF
from demo.streets import load_street_graph
from dispatch.engine.geo import haversine_m


@pytest.fixture(scope="module")
def helsinki():
    return load_street_graph(CITY_PBF)


def write_osm(path, nodes, ways):
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, (lat, lon) in nodes.items():
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), version=1))
        for way_id, (refs, tags) in ways.items():
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))


def test_only_drivable_connected_streets_become_the_graph(tmp_path):
    path = tmp_path / "tiny.osm"
    nodes = {
        1: (60.0000, 24.0000),
        2: (60.0000, 24.0010),
        3: (60.0010, 24.0010),
        4: (60.0010, 24.0000),
        5: (60.0020, 24.0000),
        6: (60.0050, 24.0050),
        7: (60.0051, 24.0050),
        8: (60.0030, 24.0000),
    }
    ways = {
        10: ([1, 2, 3], {"highway": "residential", "name": "Testikatu"}),
        11: ([3, 2], {"highway": "service"}),  # the same segment again: kept once, not doubled
        12: ([3, 4], {"highway": "footway"}),  # not drivable
        13: ([4, 5], {"highway": "service", "access": "private"}),  # not for couriers
        14: ([6, 7], {"highway": "residential", "name": "Erillinen"}),  # an island: dropped
        15: ([1, 8], {"highway": "pedestrian", "area": "yes"}),
    }
    write_osm(path, nodes, ways)
    graph = load_street_graph(path)
    assert sorted(graph.osm_ids.tolist()) == [1, 2, 3]
    a, c = (graph.osm_ids.tolist().index(i) for i in (1, 3))
    assert graph.shortest_path(a, c) == [a, graph.osm_ids.tolist().index(2), c]
    expected = haversine_m(*nodes[1], *nodes[2]) + haversine_m(*nodes[2], *nodes[3])
    assert graph.path_metres(graph.shortest_path(a, c)) == pytest.approx(expected)
    assert {line.highway for line in graph.lines} == {"residential", "service"}
    assert graph.street_name(c) == "Testikatu"


def test_a_file_without_streets_is_refused(tmp_path):
    path = tmp_path / "empty.osm"
    write_osm(path, {1: (60.0, 24.0), 2: (60.0, 24.001)}, {10: ([1, 2], {"highway": "footway"})})
    with pytest.raises(ValueError, match="no drivable streets"):
        load_street_graph(path)


def test_helsinki_graph_covers_the_extract(helsinki):
    assert 1500 < len(helsinki) < 3000
    min_lon, min_lat, max_lon, max_lat = helsinki.bbox()
    assert min_lon >= BBOX[0] - 0.002 and max_lon <= BBOX[2] + 0.002
    assert min_lat >= BBOX[1] - 0.002 and max_lat <= BBOX[3] + 0.002
    assert "Mannerheimintie" in helsinki.names
    assert "footway" not in {line.highway for line in helsinki.lines}


def test_shortest_paths_follow_edges_and_are_no_shorter_than_a_straight_line(helsinki):
    rng = random.Random(3)
    for _ in range(20):
        a, b = rng.randrange(len(helsinki)), rng.randrange(len(helsinki))
        path = helsinki.shortest_path(a, b)
        assert path[0] == a and path[-1] == b
        assert all(helsinki.edges[u, v] > 0 for u, v in pairwise(path))
        straight = haversine_m(*helsinki.point(a), *helsinki.point(b))
        assert helsinki.path_metres(path) >= straight - 1e-6
        # Every node reaches every other, and no path is absurdly long inside 2 km^2.
        assert helsinki.path_metres(path) < 4 * straight + 500


def test_nearest_and_nodes_within(helsinki):
    node = helsinki.nearest(60.1699, 24.9384)
    assert haversine_m(60.1699, 24.9384, *helsinki.point(node)) < 50
    ring = helsinki.nodes_within(60.1699, 24.9384, min_m=200, max_m=400)
    assert len(ring) > 0
    for i in ring:
        assert 200 <= haversine_m(60.1699, 24.9384, *helsinki.point(i)) <= 400


def test_geojson_lines_clip_to_a_bbox(helsinki):
    everything = helsinki.geojson()
    assert everything["type"] == "FeatureCollection"
    assert len(everything["features"]) == len(helsinki.lines)
    corner = (24.935, 60.164, 24.940, 60.167)
    clipped = helsinki.geojson(corner)
    assert 0 < len(clipped["features"]) < len(everything["features"])
    for feature in clipped["features"]:
        coords = feature["geometry"]["coordinates"]
        assert any(corner[0] <= x <= corner[2] and corner[1] <= y <= corner[3] for x, y in coords)
    assert helsinki.geojson((0.0, 0.0, 1.0, 1.0))["features"] == []


def test_nodes_in_bbox(helsinki):
    inside = helsinki.nodes_in_bbox(BBOX)
    assert 0 < len(inside) <= len(helsinki)
    for i in inside:
        lat, lon = helsinki.point(i)
        assert BBOX[0] <= lon <= BBOX[2] and BBOX[1] <= lat <= BBOX[3]
    assert len(helsinki.nodes_in_bbox((0.0, 0.0, 1.0, 1.0))) == 0
