"""The sequencing engine (pure, no database): VROOM over the TravelTimes interface with
pickup-before-delivery pairs, windows, service times, capacities and the shift end; a late
route keeps every stop with closing windows first; a hub's multi-vehicle run."""

import math

import numpy as np
import pytest

from dispatch.engine.sequencing import Task, Vehicle, plan_runs, sequence_route


class LineTravel:
    """Points on a north-south line, one second per metre-ish: 0.001 deg of latitude = 100 s.
    Counts its calls, to show the engine asks the interface (not its own geometry)."""

    calls = 0

    def matrix_s(self, origins, destinations):
        LineTravel.calls += 1
        o = np.asarray(origins, dtype=float).reshape(-1, 2)
        d = np.asarray(destinations, dtype=float).reshape(-1, 2)
        return np.abs(o[:, None, 0] - d[None, :, 0]) * 100_000


TRAVEL = LineTravel()


def at(km: float) -> tuple[float, float]:
    """A point `km` north of the origin on the line (1 km = 1000 s of driving)."""
    return (km / 100, 0.0)


def pair(n, pickup_km, dropoff_km, *, close=math.inf, pickup_close=math.inf, kg=0.0, service=0.0):
    return [
        Task(f"p{n}", n, "pickup", *at(pickup_km), close_s=pickup_close, service_s=service, weight_kg=kg),
        Task(f"d{n}", n, "dropoff", *at(dropoff_km), close_s=close, service_s=service, weight_kg=kg),
    ]


def test_pickups_come_before_their_dropoffs_and_the_route_is_short():
    tasks = [*pair(1, 3, 1), *pair(2, 2, 4)]  # as given: p1 d1 p2 d2 drives back and forth
    plan = sequence_route(Vehicle("v", *at(0), start_s=0), tasks, TRAVEL)
    keys = plan.keys
    assert keys.index("p1") < keys.index("d1") and keys.index("p2") < keys.index("d2")
    assert sorted(keys) == sorted(t.key for t in tasks)
    # As given: 3 + 2 + 1 + 2 = 8 km; best: 0 -> 2 -> 3 -> 4 -> 1, 7 km.
    assert plan.late_s == 0 and plan.end_s == pytest.approx(7000)
    assert plan.keys == ["p2", "p1", "d2", "d1"]


def test_etas_follow_travel_waits_and_service():
    tasks = [
        Task("a", 1, "dropoff", *at(1), open_s=1500, service_s=60),
        Task("b", 2, "dropoff", *at(2), service_s=60),
    ]
    plan = sequence_route(Vehicle("v", *at(0), start_s=100), tasks, TRAVEL)
    timing = {s.key: s for s in plan.stops}
    if plan.keys == ["a", "b"]:
        assert timing["a"].arrival_s == pytest.approx(1100)
        assert timing["a"].begin_s == pytest.approx(1500)  # waits for the window
        assert timing["b"].arrival_s == pytest.approx(1500 + 60 + 1000)
    else:  # b first, then back to a
        assert timing["b"].arrival_s == pytest.approx(2100)
        assert timing["a"].arrival_s == pytest.approx(2100 + 60 + 1000)


def test_a_closing_window_is_served_first_even_if_the_drive_is_longer():
    # Far stop first would be shortest overall (0 -> 5 -> ... no): the near-but-behind stop
    # closes soon, so it goes first.
    tasks = [
        Task("far", 1, "dropoff", *at(5)),
        Task("behind", 2, "dropoff", *at(-1), close_s=1200),
    ]
    plan = sequence_route(Vehicle("v", *at(0), start_s=0), tasks, TRAVEL)
    assert plan.keys == ["behind", "far"] and plan.late_s == 0


def test_when_windows_cannot_all_be_kept_every_stop_stays_and_lateness_is_least():
    tasks = [
        Task("a", 1, "dropoff", *at(3), close_s=1000),  # 3000 s away: late whatever happens
        Task("b", 2, "dropoff", *at(-3), close_s=4000),
    ]
    plan = sequence_route(Vehicle("v", *at(0), start_s=0), tasks, TRAVEL)
    assert sorted(plan.keys) == ["a", "b"]
    # a first: a 2000 s late, b at 9000 (5000 late) = 7000; b first: b on time, a at 9000 (8000).
    assert plan.keys == ["a", "b"] and plan.late_s == pytest.approx(7000)
    assert plan.method in ("vroom-relaxed", "closing-first", "current")


def test_capacity_is_never_exceeded_when_a_plan_fits():
    # Two 6 kg parcels, an 8 kg vehicle: the second pickup only after the first drop-off.
    tasks = [*pair(1, 1, 2, kg=6), *pair(2, 1.5, 2.5, kg=6)]
    plan = sequence_route(Vehicle("v", *at(0), start_s=0, capacity_kg=8), tasks, TRAVEL)
    assert plan.overload == 0
    keys = plan.keys
    first_drop = min(keys.index("d1"), keys.index("d2"))
    assert sorted([keys.index("p1"), keys.index("p2")])[1] > first_drop


def test_a_dropoff_without_its_pickup_is_on_board_from_the_start():
    tasks = [Task("d1", 1, "dropoff", *at(2), weight_kg=6), *pair(2, 1, 3, kg=6)]
    plan = sequence_route(Vehicle("v", *at(0), start_s=0, capacity_kg=8), tasks, TRAVEL)
    assert plan.overload == 0 and plan.keys.index("d1") < plan.keys.index("p2")


def test_no_pickup_starts_after_the_shift_ends():
    tasks = [*pair(1, 5, 6), *pair(2, 1, 2)]
    plan = sequence_route(Vehicle("v", *at(0), start_s=0, shift_end_s=1500), tasks, TRAVEL)
    assert plan.keys[0] == "p2"  # the far pickup cannot be reached before the shift ends anyway
    assert plan.late_s > 0  # p1 starts after the shift's end: counted as late, still planned
    assert len(plan.keys) == 4


def test_it_asks_the_travel_times_interface():
    before = LineTravel.calls
    sequence_route(Vehicle("v", *at(0), start_s=0), pair(1, 1, 2), TRAVEL)
    assert LineTravel.calls == before + 1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        sequence_route(Vehicle("v", *at(0), start_s=0), [*pair(1, 1, 2), *pair(1, 1, 2)], TRAVEL)
    with pytest.raises(ValueError):
        sequence_route(Vehicle("v", *at(0), start_s=0, end=at(0)), pair(1, 1, 2), TRAVEL)
    assert sequence_route(Vehicle("v", *at(0), start_s=7), [], TRAVEL).end_s == 7


def test_a_hub_run_splits_stops_by_capacity_returns_to_the_depot_and_reports_what_fits_nowhere():
    depot = at(0)
    vans = [Vehicle(name, *depot, start_s=0, capacity_kg=10, end=depot) for name in ("north", "south")]
    north = [Task(f"n{k}", f"n{k}", "dropoff", *at(k), weight_kg=5, close_s=20_000) for k in (1, 2)]
    south = [Task(f"s{k}", f"s{k}", "dropoff", *at(-k), weight_kg=5, close_s=20_000) for k in (1, 2)]
    too_far = Task("x", "x", "dropoff", *at(30), weight_kg=1, close_s=5_000)
    plans = plan_runs(vans, [*north, *south, too_far], TRAVEL)
    routes = {frozenset(p.keys) for p in plans}
    assert routes == {frozenset({"n1", "n2"}), frozenset({"s1", "s2"})}
    assert plans[0].unassigned == ("x",)
    for p in plans:
        assert p.end_s == pytest.approx(4000)  # 2 km out and back
        assert p.overload == 0 and p.late_s == 0
