"""Reposition moves (dispatch.engine.reposition): idle drivers go where forecast demand exceeds
supply, by min-cost assignment, within the distance limit, only for a real gain, never leaving
a place short, each with a reason in words."""

import h3
import pytest

from dispatch.engine.forecast import ForecastConfig, SlotForecast, cell_centre
from dispatch.engine.geo import haversine_m
from dispatch.engine.reposition import IdleDriver, RepositionConfig, propose_moves, supply_by_cell

RES = 8
CONFIG = ForecastConfig(resolution=RES, k_ring=1)
HOT = h3.latlng_to_cell(60.1699, 24.9384, RES)  # Helsinki centre


def cell_at(cell: str, k: int) -> str:
    """A cell exactly k rings from `cell`."""
    return sorted(h3.grid_ring(cell, k))[0]


def driver_in(cell: str, name: str) -> IdleDriver:
    lat, lon = cell_centre(cell)
    return IdleDriver(name, lat, lon)


def forecast(expected: dict[str, float]) -> SlotForecast:
    return SlotForecast(0.0, 1800.0, expected, seasonal_days=0, recent_slots=4, orders_used=40, config=CONFIG)


def test_an_idle_driver_from_a_quiet_place_goes_where_orders_are_expected():
    far = cell_at(HOT, 3)  # ~1.2 km away, outside HOT's neighbourhood
    moves = propose_moves([driver_in(far, "d1")], forecast({HOT: 3.0}))
    assert len(moves) == 1
    move = moves[0]
    assert (move.driver_id, move.cell) == ("d1", HOT)
    assert (move.lat, move.lon) == pytest.approx(cell_centre(HOT))
    assert move.distance_m == pytest.approx(haversine_m(*cell_centre(far), *cell_centre(HOT)), rel=1e-6)
    assert move.expected_orders == pytest.approx(3.0) and move.drivers_near == 0 and move.gain == 1.0
    assert "About 3.0 orders are expected near this spot in the next 30 minutes" in move.reason
    assert "0 driver(s) are free near it" in move.reason
    assert f"{move.distance_m / 1000:.1f} km away" in move.reason
    assert "orders placed in the last 120 minutes" in move.reason


def test_as_many_drivers_move_as_are_lacking_nearest_first():
    drivers = [driver_in(cell_at(HOT, k), f"d{k}") for k in (3, 2, 3, 2)]
    drivers = [IdleDriver(f"{d.id}-{i}", d.lat, d.lon) for i, d in enumerate(drivers)]
    # 2.2 orders expected: two places of one order, then 0.2 (below the 0.5 minimum gain).
    moves = propose_moves(drivers, forecast({HOT: 2.2}))
    assert sorted(m.driver_id for m in moves) == ["d2-1", "d2-3"]  # the nearest two


def test_no_move_when_enough_drivers_are_near_already():
    near = driver_in(cell_at(HOT, 1), "near")
    far = driver_in(cell_at(HOT, 3), "far")
    assert propose_moves([near, far], forecast({HOT: 1.0})) == []
    # Another driver who will be free there counts as supply too.
    assert propose_moves([far], forecast({HOT: 1.0}), other_supply={HOT: 1}) == []
    # With 2 orders expected the one near covers one; the far one is sent for the other.
    assert [m.driver_id for m in propose_moves([near, far], forecast({HOT: 2.0}))] == ["far"]


def test_never_beyond_the_maximum_distance():
    far = driver_in(cell_at(HOT, 6), "far")
    metres = haversine_m(far.lat, far.lon, *cell_centre(HOT))
    assert (
        propose_moves([far], forecast({HOT: 3.0}), config=RepositionConfig(max_distance_m=metres - 1)) == []
    )
    assert (
        len(propose_moves([far], forecast({HOT: 3.0}), config=RepositionConfig(max_distance_m=metres + 1)))
        == 1
    )


def test_only_where_the_expected_gain_is_real():
    far = driver_in(cell_at(HOT, 3), "far")
    assert propose_moves([far], forecast({HOT: 0.4})) == []
    assert len(propose_moves([far], forecast({HOT: 0.4}), config=RepositionConfig(min_gain=0.3))) == 1


def test_a_driver_needed_where_they_are_stays():
    home = cell_at(HOT, 3)
    d = driver_in(home, "d")
    # One order is expected where the driver is: they are the only cover there.
    assert propose_moves([d], forecast({HOT: 3.0, home: 1.0})) == []
    # With a colleague beside them, one of the two may go.
    mate = driver_in(home, "mate")
    assert len(propose_moves([d, mate], forecast({HOT: 3.0, home: 1.0}))) == 1


def test_one_deficit_is_not_counted_twice_by_neighbouring_cells():
    # Orders spread over HOT and its ring: one target (HOT), not seven overlapping ones.
    spread = {HOT: 1.0, **dict.fromkeys(h3.grid_ring(HOT, 1), 0.25)}  # 2.5 orders in HOT's area
    drivers = [driver_in(cell_at(HOT, 3), f"d{i}") for i in range(6)]
    moves = propose_moves(drivers, forecast(spread))
    assert len(moves) == 3  # two whole drivers lacking, then half of one (the minimum gain)
    assert {m.cell for m in moves} == {HOT}


def test_the_assignment_minimises_total_distance():
    # Two targets, two drivers: each goes to the target nearest them, not both to the biggest.
    other = cell_at(HOT, 8)
    a = driver_in(cell_at(HOT, 3), "near-hot")
    b = driver_in(cell_at(other, 3), "near-other")
    moves = {m.driver_id: m.cell for m in propose_moves([a, b], forecast({HOT: 1.5, other: 1.0}))}
    assert moves == {"near-hot": HOT, "near-other": other}


def test_nothing_to_do_without_drivers_or_demand():
    assert propose_moves([], forecast({HOT: 3.0})) == []
    assert propose_moves([driver_in(HOT, "d")], forecast({})) == []
    assert supply_by_cell([cell_centre(HOT), cell_centre(HOT)], RES) == {HOT: 2.0}
    with pytest.raises(ValueError):
        RepositionConfig(orders_per_driver=0)


def test_demand_shared_with_the_target_does_not_hold_a_driver_back():
    # Two rings out, the driver's own neighbourhood touches the target's: the orders expected
    # in the shared cells are still covered after the move, so the driver may go.
    home = cell_at(HOT, 2)
    spread = smooth_around(HOT, 2.2)
    assert any(c in spread for c in h3.grid_disk(home, 1))
    [move] = propose_moves([driver_in(home, "d")], forecast(spread))
    assert move.cell == HOT


def smooth_around(cell: str, total: float) -> dict[str, float]:
    from dispatch.engine.forecast import smooth

    return smooth({cell: total}, k_ring=1, neighbour_weight=0.5)
