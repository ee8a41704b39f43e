"""Road travel times on the Helsinki extract: graph build time and a 200 x 200 matrix, embedded
(scipy Dijkstra) and pgRouting (PostgreSQL only; pgr_dijkstra many-to-many with path metres).

Figures, not timed assertions: `make bench` prints the pytest-benchmark table;
`test_print_road_figures` prints medians with `-s`.
"""

import statistics
import time

import numpy as np
import pytest
from django.conf import settings

from dispatch.engine.roads import RoadRouter, build_network
from dispatch.engine.travel import RoadTravelTimes
from tests.dispatch.test_roads import HELSINKI


def points(n=200, seed=1):
    rng = np.random.default_rng(seed)
    return [
        tuple(p) for p in np.column_stack([rng.uniform(60.164, 60.179, n), rng.uniform(24.935, 24.953, n)])
    ]


def test_bench_graph_build(benchmark):
    network = benchmark(build_network, HELSINKI)
    assert len(network.seg_a) > 2000


def fresh_embedded_matrix(pts):
    """A new router each time: snapping trees and the graph are built inside the timing."""
    return RoadTravelTimes(RoadRouter(build_network(HELSINKI))).matrix(pts, pts, None, "car")


def test_bench_embedded_matrix_200(benchmark):
    travel = RoadTravelTimes(RoadRouter(build_network(HELSINKI)))
    pts = points()
    travel.matrix(pts[:2], pts[:2], None, "car")  # graph and KD-tree built once per process
    result = benchmark(travel.matrix, pts, pts, None, "car")
    assert result.seconds.shape == (200, 200)


@pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="pgRouting needs PostgreSQL")
def test_bench_pgrouting_matrix_200(benchmark, db):
    from dispatch.services.roads import load_roads
    from dispatch.travel import PgRoutingTravelTimes

    load_roads(path=HELSINKI)
    pts = points()

    def uncached():
        PgRoutingTravelTimes._cache.clear()
        return PgRoutingTravelTimes().matrix(pts, pts, None, "car")

    result = benchmark(uncached)
    assert result.seconds.shape == (200, 200)


def median_s(fn, runs=3):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_print_road_figures(db):
    pts = points()
    lines = [f"graph build (Helsinki extract): {median_s(lambda: build_network(HELSINKI)) * 1000:.0f} ms"]
    travel = RoadTravelTimes(RoadRouter(build_network(HELSINKI)))
    travel.matrix(pts[:2], pts[:2], None, "car")
    lines.append(
        f"embedded 200 x 200 (car): {median_s(lambda: travel.matrix(pts, pts, None, 'car')) * 1000:.0f} ms"
    )
    lines.append(
        f"embedded 200 x 200, cold router: {median_s(lambda: fresh_embedded_matrix(pts)) * 1000:.0f} ms"
    )
    if not settings.DATABASE_IS_SPATIALITE:
        from dispatch.services.roads import load_roads
        from dispatch.travel import PgRoutingTravelTimes

        lines.append(
            f"load_roads (Helsinki): {median_s(lambda: load_roads(path=HELSINKI), runs=1) * 1000:.0f} ms"
        )
        provider = PgRoutingTravelTimes()

        def uncached():
            PgRoutingTravelTimes._cache.clear()
            provider.matrix(pts, pts, None, "car")

        lines.append(f"pgRouting 200 x 200 (car, uncached): {median_s(uncached, runs=2) * 1000:.0f} ms")
        lines.append(
            f"pgRouting 200 x 200 (cached): {median_s(lambda: provider.matrix(pts, pts, None, 'car')) * 1000:.0f} ms"
        )
    print("\n" + "\n".join(lines))
