"""The assignment engine on city-sized rounds (pure Python + scipy, no database)."""

import random

import pytest

from dispatch.engine.assignment import DriverSlot, OrderTask, assign


def city_round(n_drivers: int, n_orders: int, seed: int = 7):
    rng = random.Random(seed)

    def spot():
        return 60.164 + rng.random() * 0.015, 24.935 + rng.random() * 0.018

    drivers = [DriverSlot(i, *spot(), capacity_kg=rng.choice([15, 40, 300])) for i in range(n_drivers)]
    orders = [OrderTask(i, *spot(), weight_kg=rng.choice([1, 5, 20, 100])) for i in range(n_orders)]
    return drivers, orders


@pytest.mark.parametrize("size", [50, 200, 1000])
def test_bench_assignment_round(benchmark, size):
    drivers, orders = city_round(size, size)
    result = benchmark(assign, drivers, orders, max_radius_m=3000.0)
    assert len({a.driver_id for a in result}) == len(result) > 0
