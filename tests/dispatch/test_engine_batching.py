"""Batching: insertion into a driver's plan only where it is feasible, cheaper when it is
on the way, and same-pickup bundles."""

import numpy as np
import pytest

from dispatch.engine.assignment import solve_round
from dispatch.engine.batching import best_insertion, bundle_same_pickup, schedule
from dispatch.engine.model import Driver, Order
from dispatch.engine.rules import parse_rules
from dispatch.engine.travel import HaversineTravelTimes

TRAVEL = HaversineTravelTimes(speed_mps=5.0)
LAT, LON = 60.17, 24.94
DLON = 1 / (111_195 * np.cos(np.radians(LAT)))


def at(metres):
    return LAT, LON + metres * DLON


def order(oid, pick_m, drop_m, **kw):
    return Order(oid, *at(pick_m), *at(drop_m), **kw)


def busy(route_orders, **kw):
    kw.setdefault("capacity_kg", 20)
    stops = tuple(s for o in route_orders for s in o.stops())
    return Driver("d", *at(0), route=stops, **kw)


def insert(driver, orders, **kw):
    kw.setdefault("forbid_late", True)
    kw.setdefault("max_batch_size", 3)
    return best_insertion(driver, orders, TRAVEL, **kw)


def test_an_order_on_the_way_is_inserted_with_little_delay():
    driver = busy([order("a", 0, 2000)])
    plan = insert(driver, [order("b", 500, 1500)])
    assert plan is not None
    assert [(s.order_id, s.kind) for s in plan.route] == [
        ("a", "pickup"),
        ("b", "pickup"),
        ("b", "dropoff"),
        ("a", "dropoff"),
    ]
    assert plan.delay_to_others_s == pytest.approx(0, abs=1e-3)
    assert plan.added_route_s == pytest.approx(0, abs=1e-3)


def test_capacity_makes_the_insertion_wait_until_after_a_drop_off():
    driver = busy([order("a", 0, 1000, weight_kg=15)])
    plan = insert(driver, [order("b", 200, 800, weight_kg=10)])
    kinds = [(s.order_id, s.kind) for s in plan.route]
    # 15 + 10 > 20 kg: b is picked up only after a is dropped off.
    assert kinds.index(("b", "pickup")) > kinds.index(("a", "dropoff"))
    assert insert(driver, [order("c", 0, 100, weight_kg=25)]) is None
    litres = busy([order("a", 0, 1000, volume_l=30)], capacity_l=40)
    plan = insert(litres, [order("b", 200, 800, volume_l=20)])
    kinds = [(s.order_id, s.kind) for s in plan.route]
    assert kinds.index(("b", "pickup")) > kinds.index(("a", "dropoff"))


def test_time_windows_block_an_insertion_that_would_break_a_promise():
    # a must be dropped off by t=500 s (2 km at 5 m/s is 400 s); a detour to b breaks it.
    driver = busy([order("a", 0, 2000, dropoff_close_s=500)])
    # b is promised by t=700 s: served first it makes a late, served after a it is late itself.
    far = order("b", -1000, -1500, dropoff_close_s=700)
    assert insert(driver, [far]) is None
    plan = insert(driver, [far], forbid_late=False)
    assert plan is not None and plan.late_added_s > 0
    # Without b's promise it fits after a, with nothing late.
    relaxed = insert(driver, [order("b", -1000, -1500)])
    assert relaxed is not None and relaxed.late_added_s == 0
    assert [s.order_id for s in relaxed.route][:2] == ["a", "a"]


def test_no_pickup_before_its_window_opens():
    driver = busy([])
    plan = insert(driver, [order("b", 100, 200, pickup_open_s=900)])
    assert plan.pickup_at_s == 900
    assert plan.wait_at_pickup_s == pytest.approx(880, abs=1)


def test_maximum_batch_size():
    driver = busy([order("a", 0, 500), order("b", 0, 600)])
    assert insert(driver, [order("c", 0, 700)], max_batch_size=2) is None
    assert insert(driver, [order("c", 0, 700)], max_batch_size=3) is not None


def test_schedule_reports_infeasible_capacity():
    driver = Driver("d", *at(0), capacity_kg=5)
    stops = order("a", 0, 100, weight_kg=6).stops()
    seconds = TRAVEL.matrix_s([at(0), at(0), at(100)], [at(0), at(0), at(100)])
    assert schedule(driver, stops, seconds, [1, 2], forbid_late=False) is None


def test_same_pickup_orders_are_bundled_up_to_the_batch_size():
    orders = [order(f"o{i}", 0, 300 * (i + 1), pickup_id="r1", pickup_open_s=60 * i) for i in range(4)]
    orders.append(order("late", 0, 100, pickup_id="r1", pickup_open_s=3000))
    orders.append(order("other", 50, 100, pickup_id="r2"))
    units = bundle_same_pickup(orders, max_batch_size=3, ready_window_s=300)
    assert [[o.id for o in u] for u in units] == [["o0", "o1", "o2"], ["o3"], ["late"], ["other"]]


def test_a_round_bundles_same_pickup_orders_when_drivers_are_scarce():
    orders = [order("o1", 0, 400, pickup_id="r"), order("o2", 0, 500, pickup_id="r")]
    drivers = [Driver("d", *at(100), capacity_kg=20)]
    result = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=parse_rules({}))
    assert [a.order_ids for a in result.assignments] == [("o1", "o2")]
    (a,) = result.assignments
    assert [s.kind for s in a.route] == ["pickup", "pickup", "dropoff", "dropoff"]
    # With enough drivers each order goes alone; with bundling off the second waits.
    two = [*drivers, Driver("e", *at(150), capacity_kg=20)]
    assert sorted(a.order_ids for a in solve_round(two, orders, now_s=0, travel=TRAVEL).assignments) == [
        ("o1",),
        ("o2",),
    ]
    off = parse_rules({"batching": {"bundle_same_pickup": False}})
    assert len(solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=off).assignments) == 1


def test_a_round_inserts_into_a_busy_drivers_route_when_cheaper():
    carrying = busy([order("a", 0, 2000)])
    idle_far = Driver("far", *at(-3000), capacity_kg=20)
    result = solve_round([carrying, idle_far], [order("b", 500, 1500)], now_s=0, travel=TRAVEL)
    (a,) = result.assignments
    assert a.driver_id == "d"
    assert a.terms.delay_to_others_s == pytest.approx(0, abs=1e-3)
    # Batching off: busy drivers take nothing new.
    off = parse_rules({"batching": {"enabled": False}})
    (b,) = solve_round(
        [carrying, idle_far], [order("b", 500, 1500)], now_s=0, travel=TRAVEL, rules=off
    ).assignments
    assert b.driver_id == "far"
