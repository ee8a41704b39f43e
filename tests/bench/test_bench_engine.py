"""The assignment engines on city-sized rounds (pure Python + scipy, no database).

Figures, not timed assertions: pytest-benchmark prints them when run with `--benchmark-enable`
(the suite runs each once with benchmarking disabled). `test_print_round_figures` prints the
median of a few runs of the round engine at 1,000 x 1,000 (target <= 50 ms on 2 cores) and
10,000 x 10,000 (target <= 1 s), with `-s`.
"""

import random
import statistics
import time

import pytest

from dispatch.engine.assignment import DriverSlot, OrderTask, assign, solve_round
from dispatch.engine.model import Driver, Order
from dispatch.engine.rules import Rules
from dispatch.engine.travel import HaversineTravelTimes

TRAVEL = HaversineTravelTimes(speed_mps=5.0, detour_factor=1.3)


def city_round(n_drivers: int, n_orders: int, seed: int = 7):
    rng = random.Random(seed)

    def spot():
        return 60.164 + rng.random() * 0.015, 24.935 + rng.random() * 0.018

    drivers = [DriverSlot(i, *spot(), capacity_kg=rng.choice([15, 40, 300])) for i in range(n_drivers)]
    orders = [OrderTask(i, *spot(), weight_kg=rng.choice([1, 5, 20, 100])) for i in range(n_orders)]
    return drivers, orders


def engine_round(n: int, seed: int = 7):
    """n idle drivers and n orders, at the density of a busy city centre (area grows with n)."""
    rng = random.Random(seed)
    side = 0.015 * (n / 1000) ** 0.5

    def spot():
        return 60.164 + rng.random() * side, 24.935 + rng.random() * side * 2

    drivers = [Driver(i, *spot(), capacity_kg=rng.choice([15, 40, 300])) for i in range(n)]
    orders = [Order(i, *spot(), *spot(), weight_kg=rng.choice([1, 5, 20, 100])) for i in range(n)]
    return drivers, orders


@pytest.mark.parametrize("size", [50, 200, 1000])
def test_bench_assignment_round(benchmark, size):
    drivers, orders = city_round(size, size)
    result = benchmark(assign, drivers, orders, max_radius_m=3000.0)
    assert len({a.driver_id for a in result}) == len(result) > 0


@pytest.mark.parametrize("size", [200, 1000])
def test_bench_solve_round(benchmark, size):
    drivers, orders = engine_round(size)
    result = benchmark(solve_round, drivers, orders, now_s=0.0, travel=TRAVEL, rules=Rules())
    assert len({a.driver_id for a in result.assignments}) == len(result.assignments) > 0.9 * size


def test_print_round_figures():
    for n, runs in ((1000, 7), (10_000, 3)):
        drivers, orders = engine_round(n)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = solve_round(drivers, orders, now_s=0.0, travel=TRAVEL, rules=Rules())
            times.append(time.perf_counter() - start)
        print(
            f"\nsolve_round {n} x {n}: median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f} ms), {len(result.assignments)} assigned, "
            f"{len(result.unassigned)} left open"
        )
        assert len(result.assignments) > 0.9 * n
