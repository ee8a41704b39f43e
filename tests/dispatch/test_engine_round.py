"""The round engine: hard constraints never broken, soft terms steer, every assignment explained,
exact on the candidate graph (sparse == dense), and better than greedy where greedy goes wrong."""

import random

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from dispatch.engine.assignment import _pair, _Unit, eligible_pairs, solve_round
from dispatch.engine.geo import haversine_m
from dispatch.engine.model import Driver, Order
from dispatch.engine.rules import parse_rules
from dispatch.engine.travel import HaversineTravelTimes, TravelTimes

TRAVEL = HaversineTravelTimes(speed_mps=5.0)
LAT, LON = 60.17, 24.94
DLON = 1 / (111_195 * np.cos(np.radians(LAT)))  # degrees of longitude per metre here


def east(metres):
    return LON + metres * DLON


def order(oid, at_m=0.0, to_m=500.0, **kw):
    return Order(oid, LAT, east(at_m), LAT, east(to_m), **kw)


def driver(did, at_m=0.0, **kw):
    kw.setdefault("capacity_kg", 20)
    return Driver(did, LAT, east(at_m), **kw)


def solve(drivers, orders, rules=None, **kw):
    return solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=parse_rules(rules or {}), **kw)


def pairs(result):
    return {(a.order_ids, a.driver_id) for a in result.assignments}


def test_haversine_travel_times_is_a_travel_times():
    assert isinstance(TRAVEL, TravelTimes)
    m = HaversineTravelTimes(speed_mps=5.0, detour_factor=1.3).matrix_s([(LAT, LON)], [(LAT, east(1000))])
    assert m.shape == (1, 1)
    assert m[0, 0] == pytest.approx(1000 * 1.3 / 5.0, rel=1e-3)


def test_capacity_kg_and_litres_are_hard():
    orders = [order("heavy", weight_kg=50), order("bulky", volume_l=200, at_m=10)]
    drivers = [
        driver("bike", capacity_kg=15, capacity_l=40),
        driver("van", at_m=3000, capacity_kg=500, capacity_l=100),
    ]
    result = solve(drivers, orders)
    assert pairs(result) == {(("heavy",), "van")}
    assert "bulky" in result.unassigned


def test_vehicle_requirements_are_hard():
    orders = [order("fridge", requirements=frozenset({"cold_chain"}))]
    assert solve([driver("plain")], orders).assignments == []
    result = solve(
        [driver("plain"), driver("cold", at_m=4000, features=frozenset({"cold_chain", "bulky"}))], orders
    )
    assert pairs(result) == {(("fridge",), "cold")}
    assert "vehicle lacks cold_chain" in solve([driver("plain")], orders).unassigned["fridge"]


def test_time_windows_wait_for_pickup_and_forbid_late_when_asked():
    # The pickup opens in 10 minutes: the driver arrives early and waits, never starts before.
    result = solve([driver("d", at_m=100)], [order("o", pickup_open_s=600, dropoff_close_s=2000)])
    (a,) = result.assignments
    assert a.pickup_at_s == pytest.approx(600)
    assert a.terms.wait_at_pickup_s == pytest.approx(600 - 20, abs=1)
    # Drop-off window not open yet: the drop-off waits for it.
    (b,) = solve([driver("d")], [order("o", dropoff_open_s=5000)]).assignments
    assert b.dropoff_at_s["o"] == pytest.approx(5000)
    # A promise that cannot be kept: penalised by default, forbidden by rule.
    late = order("late", dropoff_close_s=50)
    (c,) = solve([driver("d", at_m=2000)], [late]).assignments
    assert c.terms.late_s > 0
    assert solve([driver("d", at_m=2000)], [late], {"lateness": {"mode": "forbid"}}).assignments == []
    # A pickup window that closes before anyone can get there is never served.
    assert solve([driver("d", at_m=5000)], [order("gone", pickup_close_s=60)]).assignments == []


def test_shift_end_is_hard():
    assert solve([driver("d", at_m=3000, shift_end_s=60)], [order("o")]).assignments == []


def test_max_pickup_distance_is_hard():
    rules = {"max_pickup_distance_m": 1000}
    result = solve([driver("far", at_m=1500)], [order("o")], rules)
    assert result.assignments == []
    assert result.unassigned["o"] == "pickup too far"
    assert pairs(solve([driver("near", at_m=900)], [order("o")], rules)) == {(("o",), "near")}


def test_driver_excluded_for_a_client():
    rules = {"excluded_drivers": [{"client": "acme", "driver": "near"}]}
    drivers = [driver("near"), driver("far", at_m=2000)]
    assert pairs(solve(drivers, [order("o", client_id="acme")], rules)) == {(("o",), "far")}
    assert pairs(solve(drivers, [order("o", client_id="other")], rules)) == {(("o",), "near")}


def test_zones_bonus_and_hard_limit():
    drivers = [
        driver("near", zones=frozenset({"south"})),
        driver("zoned", at_m=300, zones=frozenset({"north"})),
    ]
    o = order("o", zone="north")
    # Bonus: a big enough bonus moves the order to the driver who prefers its zone.
    assert pairs(solve(drivers, [o], {"zones": {"mode": "off"}})) == {(("o",), "near")}
    result = solve(drivers, [o], {"zones": {"mode": "bonus", "bonus_s": 600}})
    assert pairs(result) == {(("o",), "zoned")}
    assert result.assignments[0].terms.zone_s == -600
    # Hard: a driver with zones never gets an order outside them.
    assert solve(drivers[:1], [o], {"zones": {"mode": "hard"}}).assignments == []


def test_score_weighted_for_high_value_orders_and_minimum_score():
    drivers = [driver("weak", score=0.2), driver("strong", at_m=300, score=0.95)]
    cheap, dear = order("cheap", value_minor=1000), order("dear", value_minor=50_000)
    rules = {"high_value": {"threshold_minor": 20_000, "score_weight_s": 900}}
    assert pairs(solve(drivers, [cheap], rules)) == {(("cheap",), "weak")}
    result = solve(drivers, [dear], rules)
    assert pairs(result) == {(("dear",), "strong")}
    assert result.assignments[0].terms.score_s == pytest.approx(900 * 0.05)
    hard = {"high_value": {"threshold_minor": 20_000, "min_score": 0.5, "score_weight_s": 0}}
    assert solve(drivers[:1], [dear], hard).assignments == []


def test_priority_gets_the_only_driver():
    drivers = [driver("d")]
    orders = [order("normal", at_m=0), order("urgent", at_m=200, priority=2)]
    assert pairs(solve(drivers, orders)) == {(("urgent",), "d")}
    assert pairs(solve(drivers, orders, {"priority_bonus_s": 0})) == {(("normal",), "d")}


def test_owned_fleet_first():
    drivers = [driver("gig"), driver("own", at_m=400, owned=True)]
    assert pairs(solve(drivers, [order("o")])) == {(("o",), "gig")}
    result = solve(drivers, [order("o")], {"owned_fleet_first": {"enabled": True, "bonus_s": 600}})
    assert pairs(result) == {(("o",), "own")}
    assert result.assignments[0].terms.owned_fleet_s == -600


def test_every_assignment_is_explained():
    (a,) = solve([driver("d", at_m=600)], [order("o")]).assignments
    t = a.terms
    assert t.travel_to_pickup_s == pytest.approx(600 / 5.0, rel=1e-3)
    assert t.total == pytest.approx(t.delivery_delay_s + 0.1 * t.added_route_s)
    lines = t.lines()
    assert lines[0] == "2.0 min to the pickup"
    assert any("later than the fastest" in line for line in lines)
    assert [s.kind for s in a.route] == ["pickup", "dropoff"]


def test_unassigned_when_waiting_is_cheaper():
    result = solve([driver("d", at_m=9000)], [order("o")], {"unassigned_penalty_s": 600})
    assert result.assignments == []
    assert result.unassigned["o"] == "every option costs more than leaving it open"


def greedy(drivers, orders):
    """Each order in turn takes the nearest driver still free."""
    free, out = list(drivers), {}
    for o in orders:
        best = min(free, key=lambda d: haversine_m(d.lat, d.lon, o.pickup_lat, o.pickup_lon))
        free.remove(best)
        out[o.id] = best.id
    return out


def test_optimal_beats_greedy_on_a_crafted_case():
    drivers = [driver("d1", at_m=0), driver("d2", at_m=1500)]
    orders = [order("o1", at_m=500, to_m=600), order("o2", at_m=-1000, to_m=-1100)]
    by_greedy = greedy(drivers, orders)
    assert by_greedy == {"o1": "d1", "o2": "d2"}
    result = solve(drivers, orders)
    assert pairs(result) == {(("o1",), "d2"), (("o2",), "d1")}
    greedy_total = sum(
        solve([d for d in drivers if d.id == by_greedy[o.id]], [o]).assignments[0].cost for o in orders
    )
    assert sum(a.cost for a in result.assignments) < greedy_total - 60


def random_round(rng, n_d, n_o):
    def spot():
        return LAT + rng.uniform(-0.01, 0.01), LON + rng.uniform(-0.02, 0.02)

    drivers = []
    for i in range(n_d):
        route = ()
        if rng.random() < 0.3:
            o = Order(f"old{i}", *spot(), *spot(), dropoff_close_s=rng.uniform(600, 3000), weight_kg=2)
            route = o.stops()
        drivers.append(
            Driver(
                f"d{i}",
                *spot(),
                capacity_kg=rng.choice([5, 20, 100]),
                route=route,
                load_kg=0,
                score=rng.random(),
            )
        )
    orders = [
        Order(
            f"o{j}",
            *spot(),
            *spot(),
            pickup_open_s=rng.choice([0, 300, 900]),
            dropoff_close_s=rng.uniform(900, 3600),
            weight_kg=rng.choice([1, 10, 50]),
            priority=rng.choice([0, 0, 1]),
            value_minor=rng.choice([500, 50_000]),
        )
        for j in range(n_o)
    ]
    return drivers, orders


def dense_optimum(drivers, orders, rules):
    """Every pair costed, dummies added, solved by the dense Hungarian method."""
    n_o, n_d = len(orders), len(drivers)
    big = 1e12
    cost = np.full((n_o, n_d + n_o), big)
    for j, o in enumerate(orders):
        cost[j, n_d + j] = rules.unassigned_penalty_s
        for i, d in enumerate(drivers):
            metres = haversine_m(d.lat, d.lon, o.pickup_lat, o.pickup_lon)
            fastest = (
                max(max(0, o.pickup_open_s) + o.pickup_service_s, 0)
                + TRAVEL.matrix_s([(o.pickup_lat, o.pickup_lon)], [(o.dropoff_lat, o.dropoff_lon)])[0, 0]
            )
            a, _ = _pair(d, _Unit((o,)), rules, TRAVEL, 0, fastest, metres)
            if a is not None:
                cost[j, i] = min(a.cost, rules.unassigned_penalty_s)
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].sum())


def total(result, rules):
    return sum(
        min(a.cost, rules.unassigned_penalty_s) for a in result.assignments
    ) + rules.unassigned_penalty_s * len(result.unassigned)


@pytest.mark.parametrize("case", range(25))
def test_sparse_equals_dense_on_random_small_rounds(case):
    rng = random.Random(case)
    drivers, orders = random_round(rng, rng.randint(1, 7), rng.randint(1, 6))
    rules = parse_rules(
        {
            "batching": {"bundle_same_pickup": False},
            "high_value": {"threshold_minor": 10_000},
            "unassigned_penalty_s": 3600,
        }
    )
    result = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=rules, k_nearest=0)
    assert total(result, rules) == pytest.approx(dense_optimum(drivers, orders, rules), abs=1e-6)
    # One-to-one, all orders accounted for.
    assert len({a.driver_id for a in result.assignments}) == len(result.assignments)
    assert {o for a in result.assignments for o in a.order_ids} | set(result.unassigned) == {
        o.id for o in orders
    }
    # k-nearest sparsification never does better than the exact optimum.
    sparse = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=rules, k_nearest=2)
    assert total(sparse, rules) >= total(result, rules) - 1e-6


def test_bulk_costing_agrees_with_the_per_pair_path():
    rng = random.Random(3)
    drivers, orders = random_round(rng, 40, 30)
    drivers = [Driver(d.id, d.lat, d.lon, d.capacity_kg, score=d.score) for d in drivers]  # all idle
    plain = parse_rules({"batching": {"bundle_same_pickup": False}})
    forced = parse_rules(
        {"batching": {"bundle_same_pickup": False}, "excluded_drivers": [{"client": "x", "driver": "y"}]}
    )
    a = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=plain)
    b = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=forced)
    assert len(a.assignments) == len(b.assignments) >= len(orders) - 2
    assert sum(x.cost for x in a.assignments) == pytest.approx(sum(x.cost for x in b.assignments))
    for x in a.assignments:  # each bulk-costed assignment costs what the per-pair path says
        d = next(d for d in drivers if d.id == x.driver_id)
        (y,) = solve_round(
            [d], [o for o in orders if o.id == x.order_ids[0]], now_s=0, travel=TRAVEL, rules=forced
        ).assignments
        assert y.cost == pytest.approx(x.cost)


@pytest.mark.parametrize("seed", [5, 6])
def test_broadcast_in_bulk_offers_what_the_per_pair_path_offers(seed):
    """Send-to-all costs idle drivers' pairs in bulk: the same pairs, costs and reasons as pair
    by pair (a rule bulk costing cannot apply forces that path), with busy drivers mixed in."""
    drivers, orders = random_round(random.Random(seed), 60, 40)
    orders += [
        Order("far", LAT + 0.05, LON, LAT, LON),  # 5.5 km: every driver is too far
        Order("heavy", LAT, LON, LAT, east(300), weight_kg=500),  # nobody can carry it
        Order("late", LAT, LON, LAT + 0.05, LON, dropoff_close_s=60),  # far too late for anyone
    ]
    base = {
        "mode": "broadcast",
        "broadcast": {"max_drivers_per_order": 4},
        "batching": {"max_batch_size": 2},
        "max_pickup_distance_m": 1500,
        "unassigned_penalty_s": 2400,
    }
    plain = parse_rules(base)
    forced = parse_rules({**base, "excluded_drivers": [{"client": "x", "driver": "y"}]})
    a = eligible_pairs(drivers, orders, now_s=0, travel=TRAVEL, rules=plain)
    b = eligible_pairs(drivers, orders, now_s=0, travel=TRAVEL, rules=forced)
    assert [(x.order_ids, x.driver_id) for x in a.assignments] == [
        (x.order_ids, x.driver_id) for x in b.assignments
    ]
    assert [x.cost for x in a.assignments] == pytest.approx([x.cost for x in b.assignments])
    assert [x.route for x in a.assignments] == [x.route for x in b.assignments]
    assert a.unassigned == b.unassigned and len(a.unassigned) < len(orders)
    assert a.unassigned["far"] == "pickup too far" and a.unassigned["heavy"].startswith("no feasible place")
    assert a.unassigned["late"] == "every option costs more than leaving it open"
    assert len({x.driver_id for x in a.assignments}) > 10


def test_drivers_offline_or_on_break_get_nothing():
    drivers = [driver("off", status="offline"), driver("pause", status="break")]
    assert solve(drivers, [order("o")]).unassigned == {"o": "no driver available"}


def test_large_rounds_are_tiled_and_stay_one_to_one(monkeypatch):
    import dispatch.engine.assignment as engine

    rng = random.Random(11)
    drivers, orders = random_round(rng, 120, 100)
    rules = parse_rules({"batching": {"bundle_same_pickup": False}})
    whole = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=rules, k_nearest=6)
    monkeypatch.setattr(engine, "TILE_ORDERS", 30)
    assert len(engine._tiles(orders, drivers)) == 4
    tiled = solve_round(drivers, orders, now_s=0, travel=TRAVEL, rules=rules, k_nearest=6)
    assert len({a.driver_id for a in tiled.assignments}) == len(tiled.assignments)
    assert {o for a in tiled.assignments for o in a.order_ids} | set(tiled.unassigned) == {
        o.id for o in orders
    }
    # Borders cost a little, not much.
    assert total(tiled, rules) <= total(whole, rules) * 1.25 + 1
