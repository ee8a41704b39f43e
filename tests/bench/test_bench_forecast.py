"""The demand forecast and reposition moves at a city's size (pure Python + h3 + scipy).

Figures, not timed assertions: run with `--benchmark-enable` for pytest-benchmark's table, or
`test_print_forecast_figures` with `-s` for medians: a forecast from 28 days of a city's
orders (2,000 a day, about 56,000 in all) and the moves for 300 idle drivers.
"""

import random
import statistics
import time

from dispatch.engine.forecast import ForecastConfig, PastOrder, forecast_slot
from dispatch.engine.reposition import IdleDriver, propose_moves

DAY_S = 86_400
NOW = 1_900_000_800.0  # epoch seconds: 2030-03-17 18:00 UTC, a slot boundary


def city_history(days: int, per_day: int, seed: int = 3) -> list[PastOrder]:
    """Orders around 40 restaurants in a 6 x 6 km city, busier at lunch and dinner."""
    rng = random.Random(seed)
    spots = [(60.15 + rng.random() * 0.054, 24.88 + rng.random() * 0.108) for _ in range(40)]
    out = []
    for day in range(days):
        for _ in range(per_day):
            lat, lon = rng.choice(spots)
            hour = rng.choice([11.5, 12, 12.5, 17.5, 18, 18.5, 19, rng.uniform(9, 22)])
            placed = NOW - (day + 1) * DAY_S + (hour - 17) * 3600 + rng.uniform(-900, 900)
            out.append(PastOrder(lat + rng.gauss(0, 0.001), lon + rng.gauss(0, 0.002), placed))
    return out


def idle_drivers(n: int, seed: int = 5) -> list[IdleDriver]:
    rng = random.Random(seed)
    return [IdleDriver(str(i), 60.15 + rng.random() * 0.054, 24.88 + rng.random() * 0.108) for i in range(n)]


def test_bench_forecast_28_days(benchmark):
    history = city_history(28, 2000)
    forecast = benchmark(forecast_slot, history, now_s=NOW, config=ForecastConfig())
    assert forecast.seasonal_days == 4 and forecast.total() > 0  # the same weekday of 4 weeks


def test_bench_reposition_moves(benchmark):
    forecast = forecast_slot(city_history(28, 2000), now_s=NOW, config=ForecastConfig())
    moves = benchmark(propose_moves, idle_drivers(300), forecast)
    assert len({m.driver_id for m in moves}) == len(moves)


def test_print_forecast_figures():
    history = city_history(28, 2000)
    drivers = idle_drivers(300)
    times_f, times_m = [], []
    for _ in range(3):
        started = time.perf_counter()
        forecast = forecast_slot(history, now_s=NOW, config=ForecastConfig())
        times_f.append(time.perf_counter() - started)
        started = time.perf_counter()
        moves = propose_moves(drivers, forecast)
        times_m.append(time.perf_counter() - started)
    print(
        f"\nforecast from {len(history)} orders: {statistics.median(times_f) * 1000:.0f} ms; "
        f"{len(forecast.expected)} cells, {forecast.total():.1f} orders expected; "
        f"moves for {len(drivers)} idle drivers: {statistics.median(times_m) * 1000:.0f} ms, {len(moves)} moves"
    )
