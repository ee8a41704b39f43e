"""The assignment engine: optimal (against brute force), and never an infeasible pair."""

import itertools
import math
import random

import pytest

from dispatch.engine.assignment import Assignment, DriverSlot, OrderTask, assign
from dispatch.engine.geo import haversine_m, haversine_matrix_m

CENTRE = (60.1699, 24.9384)


def random_case(rng, n_drivers, n_orders, spread=0.02):
    drivers = [
        DriverSlot(
            id=f"d{i}",
            lat=CENTRE[0] + rng.uniform(-spread, spread),
            lon=CENTRE[1] + rng.uniform(-spread, spread),
            capacity_kg=rng.choice([15, 25, 100, 300]),
        )
        for i in range(n_drivers)
    ]
    orders = [
        OrderTask(
            id=f"o{j}",
            lat=CENTRE[0] + rng.uniform(-spread, spread),
            lon=CENTRE[1] + rng.uniform(-spread, spread),
            weight_kg=rng.choice([1, 5, 20, 50, 200]),
        )
        for j in range(n_orders)
    ]
    return drivers, orders


def brute_force(drivers, orders, max_radius_m):
    """Best (pairs, total metres) over every partial one-to-one matching of feasible pairs."""

    def feasible(d, o):
        return o.weight_kg <= d.capacity_kg and haversine_m(d.lat, d.lon, o.lat, o.lon) <= max_radius_m

    best = (0, 0.0)
    slots = [*drivers, *([None] * len(orders))]
    for choice in itertools.permutations(range(len(slots)), len(orders)):
        pairs, total, ok = 0, 0.0, True
        for o, s in zip(orders, choice, strict=True):
            d = slots[s]
            if d is None:
                continue
            if not feasible(d, o):
                ok = False
                break
            pairs += 1
            total += haversine_m(d.lat, d.lon, o.lat, o.lon)
        if ok and (pairs > best[0] or (pairs == best[0] and total < best[1])):
            best = (pairs, total)
    return best


@pytest.mark.parametrize("case", range(40))
def test_matches_brute_force_optimum(case):
    rng = random.Random(case)
    drivers, orders = random_case(rng, rng.randint(1, 5), rng.randint(1, 4))
    radius = rng.choice([800, 1500, 5000])
    result = assign(drivers, orders, max_radius_m=radius)
    best_pairs, best_total = brute_force(drivers, orders, radius)
    assert len(result) == best_pairs
    assert sum(a.metres for a in result) == pytest.approx(best_total, abs=1e-6)
    # One-to-one, and each reported distance is the real one.
    assert len({a.order_id for a in result}) == len({a.driver_id for a in result}) == len(result)
    by_id = {d.id: d for d in drivers} | {o.id: o for o in orders}
    for a in result:
        d, o = by_id[a.driver_id], by_id[a.order_id]
        assert a.metres == pytest.approx(haversine_m(d.lat, d.lon, o.lat, o.lon))


def test_prefers_more_assignments_over_shorter_total():
    # d1 is right at o1 but is also the only driver who can reach o2; the optimum sends d1 to
    # o2 and the farther d2 to o1, assigning both.
    drivers = [
        DriverSlot("d1", 60.1700, 24.9400, 100),
        DriverSlot("d2", 60.1700, 24.9560, 100),
    ]
    orders = [OrderTask("o1", 60.1700, 24.9400, 1), OrderTask("o2", 60.1700, 24.9300, 1)]
    result = assign(drivers, orders, max_radius_m=1000)
    assert {(a.order_id, a.driver_id) for a in result} == {("o1", "d2"), ("o2", "d1")}


def test_over_capacity_pairs_are_never_assigned():
    drivers = [DriverSlot("bike", 60.17, 24.94, 15), DriverSlot("van", 60.18, 24.96, 1000)]
    orders = [OrderTask("heavy", 60.17, 24.94, 80)]
    assert assign(drivers, orders, max_radius_m=5000) == [
        Assignment("heavy", "van", pytest.approx(haversine_m(60.18, 24.96, 60.17, 24.94)))
    ]
    assert assign(drivers[:1], orders, max_radius_m=5000) == []


def test_weight_equal_to_capacity_fits():
    result = assign([DriverSlot("d", 60.17, 24.94, 15)], [OrderTask("o", 60.17, 24.94, 15)], max_radius_m=10)
    assert [(a.order_id, a.driver_id) for a in result] == [("o", "d")]


def test_orders_beyond_the_radius_are_left_open():
    drivers = [DriverSlot("d", 60.1700, 24.9400, 100)]
    near = OrderTask("near", 60.1700, 24.9450, 1)  # ~277 m east
    far = OrderTask("far", 60.1900, 24.9400, 1)  # ~2.2 km north
    result = assign(drivers, [far, near], max_radius_m=1000)
    assert [(a.order_id, a.driver_id) for a in result] == [("near", "d")]
    assert assign(drivers, [far], max_radius_m=1000) == []


@pytest.mark.parametrize(
    ("drivers", "orders"), [([], []), ([DriverSlot("d", 60, 24, 1)], []), ([], [OrderTask("o", 60, 24, 1)])]
)
def test_empty_inputs_give_no_assignments(drivers, orders):
    assert assign(drivers, orders, max_radius_m=1000) == []


def test_result_follows_the_order_of_the_orders():
    rng = random.Random(7)
    drivers, orders = random_case(rng, 30, 20, spread=0.005)
    orders = [OrderTask(o.id, o.lat, o.lon, 1) for o in orders]
    result = assign(drivers, orders, max_radius_m=10_000)
    assert [a.order_id for a in result] == [o.id for o in orders]


def test_haversine_known_distance_and_matrix_agree():
    # Helsinki Central Station to Helsinki Cathedral: about 770 m.
    metres = haversine_m(60.1719, 24.9414, 60.1704, 24.9522)
    assert 600 < metres < 800
    assert haversine_m(60.0, 24.0, 61.0, 24.0) == pytest.approx(111_195, rel=1e-3)
    matrix = haversine_matrix_m([60.1719, 60.0], [24.9414, 24.0], [60.1704, 61.0], [24.9522, 24.0])
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == pytest.approx(metres)
    assert matrix[1, 1] == pytest.approx(111_195, rel=1e-3)
    assert not math.isnan(haversine_m(60.0, 24.0, 60.0, 24.0))
