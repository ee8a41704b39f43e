"""The demand forecast (dispatch.engine.forecast): it predicts what a synthetic history implies,
smooths sparse cells from their neighbours, and never uses an order placed after `now`."""

from datetime import UTC, datetime

import h3
import pytest

from dispatch.engine.forecast import (
    ForecastConfig,
    PastOrder,
    forecast_slot,
    slot_start_at_or_after,
    smooth,
)

A = (60.1699, 24.9384)  # Helsinki centre
B = (60.2055, 24.6559)  # Espoo, far from A
RES = 8
CELL_A, CELL_B = h3.latlng_to_cell(*A, RES), h3.latlng_to_cell(*B, RES)


def ts(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds on day `day` of January 2030 (the 1st is a Tuesday), UTC."""
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC).timestamp()


def orders_at(point, times) -> list[PastOrder]:
    return [PastOrder(point[0], point[1], t) for t in times]


def lunch_history(days, per_day: int, point=A, hour=12) -> list[PastOrder]:
    """`per_day` orders at `point` in the 12:00-12:30 slot of each day."""
    return [o for d in days for o in orders_at(point, [ts(d, hour, 1 + i) for i in range(per_day)])]


def no_smoothing(**kw) -> ForecastConfig:
    return ForecastConfig(k_ring=0, **kw)


def test_seasonal_rate_is_the_mean_of_past_days_at_that_time():
    # Four days with 4 lunch orders at A, nothing elsewhere; forecast the fifth day's lunch.
    history = lunch_history(range(1, 5), 4)
    f = forecast_slot(history, now_s=ts(5, 11), config=no_smoothing(), slot_start_s=ts(5, 12))
    assert f.seasonal_days == 4
    assert f.expected[CELL_A] == pytest.approx((1 - 0.3) * 4 + 0.3 * 0)  # the last hours were quiet
    assert (f.slot_start_s, f.slot_end_s) == (ts(5, 12), ts(5, 12, 30))
    # At 15:00 nothing ever happened: nothing is expected.
    quiet = forecast_slot(history, now_s=ts(5, 11), config=no_smoothing(), slot_start_s=ts(5, 15))
    assert quiet.total() == pytest.approx(0)


def test_recent_days_weigh_more_than_old_ones():
    # Days 1-3 had 10 orders at lunch, days 4-6 had 2: the forecast leans toward the recent level.
    history = lunch_history(range(1, 4), 10) + lunch_history(range(4, 7), 2)
    config = no_smoothing(recent_weight=0.0, half_life_days=2.0)
    f = forecast_slot(history, now_s=ts(7, 11), config=config, slot_start_s=ts(7, 12))
    w = {d: 0.5 ** ((7 - d) / 2.0) for d in range(1, 7)}
    expected = sum(w[d] * (10 if d < 4 else 2) for d in w) / sum(w.values())
    assert f.expected[CELL_A] == pytest.approx(expected)
    assert 2 < f.expected[CELL_A] < 6  # below the plain mean of 6


def test_weekdays_are_told_apart_once_there_are_enough_of_them():
    # Three weeks: Saturdays (5, 12, 19 Jan 2030) busy at B, other days busy at A.
    history = []
    for day in range(1, 22):
        saturday = datetime(2030, 1, day).weekday() == 5
        history += lunch_history([day], 6, point=B if saturday else A)
    config = no_smoothing(recent_weight=0.0)
    saturday = forecast_slot(history, now_s=ts(26, 9), config=config, slot_start_s=ts(26, 12))
    assert saturday.seasonal_days == 3
    assert saturday.expected == pytest.approx({CELL_B: 6.0})
    monday = forecast_slot(history, now_s=ts(28, 9), config=config, slot_start_s=ts(28, 12))
    assert monday.expected == pytest.approx({CELL_A: 6.0})


def test_on_a_first_day_it_learns_from_the_earlier_slots_of_that_day():
    # No earlier day: the last slots of today set the level (the most recent weighing most).
    history = orders_at(A, [ts(1, 10, 5), ts(1, 10, 40), ts(1, 11, 10), ts(1, 11, 20), ts(1, 11, 25)])
    config = no_smoothing(recent_slots=4, recent_half_life_slots=1.0)
    f = forecast_slot(history, now_s=ts(1, 12), config=config)
    assert f.seasonal_days == 0 and f.recent_slots == 4
    # Slots back 1..4 (11:30, 11:00, 10:30, 10:00) held 0, 3, 1, 1 orders, weighted 1, 1/2, 1/4, 1/8.
    weights = [1, 0.5, 0.25, 0.125]
    assert f.expected[CELL_A] == pytest.approx((0 + 1.5 + 0.25 + 0.125) / sum(weights))
    assert "last 120 minutes" in f.basis()


def test_it_never_peeks_at_orders_placed_at_or_after_now():
    past = lunch_history(range(1, 5), 3)
    future = lunch_history([5], 50, point=B) + orders_at(A, [ts(5, 11, 59), ts(5, 12, 5)])
    now = ts(5, 11, 59)
    config = ForecastConfig()
    without = forecast_slot(past, now_s=now, config=config)
    with_future = forecast_slot(past + future, now_s=now, config=config)
    assert with_future.expected == without.expected
    assert with_future.orders_used == without.orders_used == len(past)
    # The slot now is in (11:30-12:00) has not ended: it is not a recent observation either.
    assert with_future.recent_slots == without.recent_slots
    late = forecast_slot(past + future, now_s=ts(5, 12, 0), config=config)
    assert late.orders_used == len(past) + 1  # only the 11:59 order joined


def test_the_target_slot_may_not_start_before_now():
    with pytest.raises(ValueError, match="peek"):
        forecast_slot([], now_s=ts(1, 12, 10), config=ForecastConfig(), slot_start_s=ts(1, 12))
    assert slot_start_at_or_after(ts(1, 12, 10), ForecastConfig()) == ts(1, 12, 30)
    assert slot_start_at_or_after(ts(1, 12, 0), ForecastConfig()) == ts(1, 12, 0)


def test_slots_follow_the_local_day():
    # 11:10 UTC is 13:10 in Helsinki (EET, UTC+2 in January): Helsinki's 13:00 slot.
    history = orders_at(A, [ts(d, 11, 10) for d in range(1, 5)])
    f = forecast_slot(
        history,
        now_s=ts(5, 8),
        config=no_smoothing(timezone="Europe/Helsinki", recent_weight=0.0),
        slot_start_s=ts(5, 11),
    )
    assert (f.slot_start_s, f.expected) == (ts(5, 11), pytest.approx({CELL_A: 1.0}))


def test_neighbour_smoothing_keeps_the_total_and_fills_sparse_cells():
    smoothed = smooth({CELL_A: 7.0}, k_ring=1, neighbour_weight=0.5)
    assert sum(smoothed.values()) == pytest.approx(7.0)
    ring = h3.grid_ring(CELL_A, 1)
    assert set(smoothed) == {CELL_A, *ring}
    assert all(smoothed[c] == pytest.approx(smoothed[CELL_A] / 2) for c in ring)
    assert smoothed[CELL_A] == pytest.approx(7.0 / (1 + 6 * 0.5))
    assert smooth({CELL_A: 2.0}, k_ring=0, neighbour_weight=0.5) == {CELL_A: 2.0}
    # A neighbour of a busy cell that saw no order of its own is forecast above zero.
    f = forecast_slot(
        lunch_history(range(1, 5), 4), now_s=ts(5, 11), config=ForecastConfig(), slot_start_s=ts(5, 12)
    )
    assert f.expected[ring[0]] > 0
    assert f.near(CELL_A) == pytest.approx(f.total())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"slot_s": 7 * 60},
        {"resolution": 16},
        {"recent_weight": 1.5},
        {"timezone": "Mars/Olympus"},
        {"k_ring": -1},
    ],
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises((ValueError, KeyError)):  # an unknown zone: ZoneInfoNotFoundError (a KeyError)
        ForecastConfig(**kwargs)
