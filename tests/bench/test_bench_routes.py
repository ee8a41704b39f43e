"""Re-sequencing one driver's route (target: <= 20 ms p95 for up to 12 stops).

Figures, not timed assertions: `test_print_resequencing_figures` prints p50/p95 with `-s`, for
the pure engine call (VROOM plus the candidates it is ranked against) and for the whole service
(read the route, sequence, persist the stops and ETAs, in one transaction, on the test
database). pytest-benchmark also times the engine call with `--benchmark-enable`.
"""

import random
import statistics
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.engine.sequencing import Task, Vehicle, sequence_route
from dispatch.travel import travel_times

TRAVEL = travel_times()


def city_route(n_orders: int, seed: int, *, picked_up: int = 0):
    """A driver in a city centre with n orders: the first `picked_up` on board (their drop-off
    only), the rest still to pick up; windows of 30-90 min, some already tight."""
    rng = random.Random(seed)

    def spot():
        return 60.160 + rng.random() * 0.03, 24.92 + rng.random() * 0.06

    tasks = []
    for n in range(n_orders):
        close = rng.uniform(900, 5400)
        if n >= picked_up:
            tasks.append(Task(f"p{n}", n, "pickup", *spot(), close_s=close, service_s=180, weight_kg=2))
        tasks.append(Task(f"d{n}", n, "dropoff", *spot(), close_s=close + 1800, service_s=120, weight_kg=2))
    return Vehicle("v", *spot(), start_s=0.0, capacity_kg=20), tasks


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.parametrize("stops", [6, 12])
def test_bench_sequence_route(benchmark, stops):
    vehicle, tasks = city_route(stops // 2, seed=stops)
    plan = benchmark(sequence_route, vehicle, tasks, TRAVEL)
    assert sorted(plan.keys) == sorted(t.key for t in tasks)


def test_print_resequencing_figures():
    times = []
    methods: dict[str, int] = {}
    for seed in range(200):
        vehicle, tasks = city_route(6, seed, picked_up=seed % 3)
        tasks = tasks[:12]
        start = time.perf_counter()
        plan = sequence_route(vehicle, tasks, TRAVEL)
        times.append(time.perf_counter() - start)
        methods[plan.method] = methods.get(plan.method, 0) + 1
        assert len(plan.stops) == len(tasks)
    print(
        f"\nsequence_route, up to 12 stops, {len(times)} routes: p50 {statistics.median(times) * 1000:.1f} ms, "
        f"p95 {percentile(times, 0.95) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms; won by {methods}"
    )


@pytest.mark.django_db
def test_print_service_resequencing_figures(org):
    from dispatch.services import routes
    from tests.dispatch.test_rounds import SYSTEM, driver_at, new_order
    from tests.dispatch.test_routes import assign

    rng = random.Random(3)
    driver = driver_at(org, 1)
    for n in range(6):
        order = new_order(
            org,
            f"B-{n}",
            lat=60.160 + rng.random() * 0.03,
            start=timezone.now() + timedelta(minutes=rng.uniform(0, 30)),
        )
        assign(org, order, driver)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        routes.resequence_route(driver_id=driver.id, actor=SYSTEM, reason="bench")
        times.append(time.perf_counter() - start)
    print(
        f"\nresequence_route (service, 12 stops, database included): p50 "
        f"{statistics.median(times) * 1000:.1f} ms, p95 {percentile(times, 0.95) * 1000:.1f} ms"
    )
