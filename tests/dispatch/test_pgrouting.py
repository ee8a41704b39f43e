"""pgRouting (PostgreSQL only): `load_roads` imports the extract in one transaction, and the
pgRouting provider gives the embedded graph's answers on the same extract.

Tolerance: every pair has the same fallback flag, and seconds and metres agree within 0.1 %
(both run Dijkstra on the same segments and costs; only equal-time ties or a snap tie between two
equidistant nodes could pick another path). Measured on this extract: they agree to 1e-6 s.
"""

from io import StringIO

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from dispatch.engine.roads import RoadRouter, TrafficSnapshot, build_network
from dispatch.engine.travel import RoadTravelTimes
from dispatch.services.roads import load_roads
from dispatch.travel import PgRoutingTravelTimes, travel_times
from tests.dispatch.test_roads import HELSINKI

pytestmark = pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="pgRouting needs PostgreSQL")

TOLERANCE = 1e-3  # relative


@pytest.fixture
def loaded(db):
    return load_roads(path=HELSINKI)


def points(n, seed):
    rng = np.random.default_rng(seed)
    return [
        tuple(p) for p in np.column_stack([rng.uniform(60.165, 60.178, n), rng.uniform(24.936, 24.952, n)])
    ]


def assert_same(a, b):
    assert np.array_equal(a.fallback, b.fallback)
    ok = ~a.fallback
    assert ok.sum() > 0.8 * ok.size
    np.testing.assert_allclose(b.seconds[ok], a.seconds[ok], rtol=TOLERANCE)
    np.testing.assert_allclose(b.metres[ok], a.metres[ok], rtol=TOLERANCE)


def test_the_import_matches_the_embedded_graph(loaded):
    network = build_network(HELSINKI)
    assert (loaded.vertices, loaded.edges) == (len(network), len(network.seg_a))
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM roads.edges WHERE reverse_cost_car = 0 OR cost_car = 0")
        assert cur.fetchone()[0] == 0  # no zero (or -0) costs: -1 marks a forbidden direction
    embedded = RoadRouter(network)
    for profile in ("car", "bicycle"):
        assert loaded.snap_vertices[profile] == embedded._tree(profile)[1].size


@pytest.mark.parametrize("vehicle_type", ["car", "bicycle", "truck"])
def test_pgrouting_and_the_embedded_graph_agree(loaded, vehicle_type):
    embedded = RoadTravelTimes(RoadRouter(build_network(HELSINKI)))
    pg = PgRoutingTravelTimes()
    pts = points(40, seed=11)
    far = [(60.30, 24.94)]  # 14 km north: off the extract
    a = embedded.matrix(pts + far, pts, None, vehicle_type)
    b = pg.matrix(pts + far, pts, None, vehicle_type)
    assert a.fallback[-1].all()
    assert_same(a, b)
    again = pg.matrix(pts[:5], pts[:5], None, vehicle_type)  # from the cache
    np.testing.assert_allclose(again.seconds, b.seconds[:5, :5])


def test_pgrouting_pairs_are_its_matrix_answers_for_those_pairs(loaded):
    """A round asks pgRouting for candidate pairs (pairs_s) too: the matrix's seconds, the
    fallback only for the pairs off the network."""
    pts = [*points(30, seed=3), (60.30, 24.94)]  # the last one is off the extract
    rng = np.random.default_rng(4)
    i, j = rng.integers(0, len(pts), 200), rng.integers(0, len(pts), 200)
    a, b = np.array(pts)[i], np.array(pts)[j]
    matrix = PgRoutingTravelTimes().matrix(pts, pts, None, "car")
    pg = PgRoutingTravelTimes()
    np.testing.assert_allclose(pg.pairs_s(a, b, vehicle_type="car"), matrix.seconds[i, j], rtol=1e-12)
    assert pg.estimated == int(matrix.fallback[i, j].sum()) > 0 and pg.routed + pg.estimated == 200


def test_traffic_applies_the_same_way_in_both(loaded):
    network = build_network(HELSINKI)
    cells = network.segment_cells()
    slow = dict.fromkeys(sorted(set(cells.tolist()))[::2], 0.5)
    closed_way = int(network.seg_way[len(network.seg_way) // 2])
    snapshot = TrafficSnapshot(key="test", way_factors={closed_way: 0.0}, cell_factors=slow)

    def traffic(_depart_at):
        return snapshot

    embedded = RoadTravelTimes(RoadRouter(network), traffic=traffic)
    pg = PgRoutingTravelTimes(traffic=traffic)
    pts = points(30, seed=5)
    with_traffic = embedded.matrix(pts, pts, 0.0, "car")
    assert_same(with_traffic, pg.matrix(pts, pts, 0.0, "car"))
    free = embedded.matrix(pts, pts, None, "car")
    ok = ~free.fallback & ~with_traffic.fallback
    assert (with_traffic.seconds[ok] >= free.seconds[ok] - 1e-6).all()
    assert (with_traffic.seconds[ok] > free.seconds[ok]).mean() > 0.5


def test_a_bad_or_empty_file_names_the_file_and_keeps_the_network(loaded, tmp_path):
    garbage = tmp_path / "broken.osm.pbf"
    garbage.write_bytes(b"\x00garbage" * 50)
    empty = tmp_path / "empty.osm"
    empty.write_text('<?xml version="1.0"?><osm version="0.6"></osm>')
    for bad in (garbage, empty):
        with pytest.raises(CommandError, match=bad.name.replace(".", r"\.")):
            call_command("load_roads", str(bad))
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM roads.vertices")
        assert cur.fetchone()[0] == loaded.vertices


def test_the_command_reports_and_the_setting_picks_pgrouting(db, settings):
    out = StringIO()
    call_command("load_roads", str(HELSINKI), stdout=out)
    assert "vertices" in out.getvalue() and "car:" in out.getvalue()
    settings.TRAVEL_TIME_PROVIDER = "pgrouting"
    assert isinstance(travel_times(), PgRoutingTravelTimes)


def test_no_network_loaded_is_a_clear_error(db):
    with connection.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS roads CASCADE")
    with pytest.raises(ImproperlyConfigured, match="load_roads"):
        PgRoutingTravelTimes().matrix([(60.17, 24.94)], [(60.171, 24.94)])


def test_a_round_runs_on_pgrouting(loaded, org, settings):
    """TRAVEL_TIME_PROVIDER=pgrouting: the dispatch round offers with pgRouting's times, the
    same minutes as on the embedded graph."""
    from dispatch.models import Offer
    from dispatch.services.rounds import run_round
    from tests.dispatch.test_rounds import LAT, LON, driver_at, new_order

    driver_at(org, 1, lat=LAT + 0.004, lon=LON + 0.003)
    new_order(org, "PG-1")
    settings.TRAVEL_TIME_PROVIDER = "pgrouting"
    run_round(organisation=org)
    offer = Offer.objects.get(organisation=org)
    line = next(x for x in offer.explanation if "to the pickup" in x)
    embedded = RoadTravelTimes(RoadRouter(build_network(HELSINKI)))
    seconds = embedded.matrix([(LAT + 0.004, LON + 0.003)], [(LAT, LON)], None, "car").seconds[0, 0]
    assert line.startswith(f"{seconds / 60:.1f} min")
