"""The simulator on hand-sized days, where every minute can be checked by hand."""

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.engine.mdrplib import Parameters, read_parameters, to_latlon
from dispatch.engine.orders_csv import CourierRow, OrderRow
from dispatch.engine.simulation import SimConfig, simulate

DAY = datetime(2024, 5, 1, tzinfo=UTC)
ORIGIN = (41.88, -87.63)


def at(minutes):
    return DAY + timedelta(minutes=minutes)


def order(oid, placed, ready, pick_x, drop_x):
    return OrderRow(oid, at(placed), at(ready), *to_latlon(pick_x, 0, ORIGIN), *to_latlon(drop_x, 0, ORIGIN))


def courier(cid, start, end, x):
    return CourierRow(cid, at(start), at(end), *to_latlon(x, 0, ORIGIN))


CONFIG = {"speed_mps": 5.0, "pickup_service_s": 60, "dropoff_service_s": 60, "target_s": 1800, "round_s": 60}


@pytest.mark.parametrize("policy", ["greedy", "optimal"])
def test_one_courier_one_order_by_hand(policy):
    # Courier 600 m from the restaurant (2 min), food ready at minute 10, door 1,200 m on (4 min).
    result = simulate(
        [order("o", 0, 10, 600, 1800)], [courier("c", 0, 120, 0)], SimConfig(policy=policy, **CONFIG)
    )
    assert result["delivered"] == 1
    # Greedy only sends the courier once the food is ready; optimal sends them ahead to be there
    # when it is.
    leave = 2 if policy == "greedy" else 0
    assert result["mean_click_to_door_min"] == pytest.approx(10 + leave + 1 + 4, abs=0.05)
    assert result["mean_ready_to_pickup_min"] == pytest.approx(leave, abs=0.05)
    assert result["on_time_pct"] == 100
    # 2 hours, one order: the guarantee (15/h) beats 10 per order.
    assert result["earnings_per_courier_hour"]["mean"] == 1500
    assert result["orders_per_courier_hour"] == 0.5


def test_optimal_batches_two_orders_from_one_restaurant_for_a_lone_courier():
    orders = [order("a", 0, 10, 600, 1800), order("b", 0, 10, 600, 2400)]
    couriers = [courier("c", 0, 120, 0)]
    greedy = simulate(orders, couriers, SimConfig(policy="greedy", **CONFIG))
    optimal = simulate(orders, couriers, SimConfig(policy="optimal", **CONFIG))
    assert greedy["delivered"] == optimal["delivered"] == 2
    assert optimal["mean_click_to_door_min"] < greedy["mean_click_to_door_min"]


def test_an_order_placed_after_every_shift_is_not_delivered_and_counts_as_late():
    orders = [order("a", 0, 5, 100, 200), order("late", 200, 205, 100, 200)]
    result = simulate(orders, [courier("c", 0, 60, 0)], SimConfig(policy="optimal", **CONFIG))
    assert (result["orders"], result["delivered"], result["on_time_pct"]) == (2, 1, 50)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="policy"):
        SimConfig(policy="random")
    with pytest.raises(ValueError, match="speed_mps"):
        SimConfig(speed_mps=0)


def test_mdrplib_parameters(tmp_path):
    (tmp_path / "instance_parameters.txt").write_text(
        "meters_per_minute\tpickup service minutes\tdropoff service minutes\ttarget click-to-door\t"
        "maximum click-to-door\tpay per order\tguaranteed pay per hour\n320\t4\t4\t40\t90\t10\t15\n"
    )
    assert read_parameters(tmp_path) == Parameters(320, 4, 4, 40, 90, 10, 15)


# --- repositioning toward forecast demand ----------------------------------------------------


def busy_spot_day(*, late_at: int):
    """A restaurant 2.5 km east of an idle courier: an order every 20 minutes from 9:00 to 10:40,
    taken by a courier who works there until 11:00, then one more at `late_at`."""
    local = courier("local", 0, 11 * 60, 2500)
    early = [order(f"e{i}", 540 + 20 * i, 545 + 20 * i, 2500, 3000) for i in range(6)]
    late = order("late", late_at, late_at + 5, 2500, 3000)
    return [*early, late], [local, courier("idle", 0, 24 * 60, 0)]


def test_repositioning_moves_an_idle_courier_toward_the_orders_so_the_late_one_comes_sooner():
    orders, couriers = busy_spot_day(late_at=11 * 60 + 35)
    still = simulate(orders, couriers, SimConfig(policy="optimal", **CONFIG))
    moving = simulate(orders, couriers, SimConfig(policy="optimal", reposition=True, **CONFIG))
    assert still["repositioning_moves"] == 0 and moving["repositioning_moves"] >= 1
    assert moving["policy"] == "optimal+reposition"
    assert moving["delivered"] == still["delivered"] == 7
    # Without the move the idle courier rides 2.5 km (500 s) to the late order's restaurant.
    assert moving["mean_click_to_door_min"] < still["mean_click_to_door_min"]


def test_repositioning_never_moves_on_orders_not_yet_placed():
    # The only orders come at 14:00: before then the forecast has nothing, so nobody moves and
    # the day runs exactly as without repositioning.
    orders = [order(f"o{i}", 840 + i, 845 + i, 2500, 3000) for i in range(3)]
    couriers = [courier("idle", 0, 24 * 60, 0)]
    still = simulate(orders, couriers, SimConfig(policy="optimal", **CONFIG))
    moving = simulate(orders, couriers, SimConfig(policy="optimal", reposition=True, **CONFIG))
    assert moving["repositioning_moves"] == 0
    assert {k: v for k, v in moving.items() if k not in ("policy", "seconds")} == {
        k: v for k, v in still.items() if k not in ("policy", "seconds")
    }
