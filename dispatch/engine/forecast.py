"""Demand forecast per H3 cell and time slot, learnt from past orders (pickup place, placed time).

A day is cut into slots of `slot_s` seconds in the organisation's local time. For a target slot
the forecast blends two rates of orders per cell and slot:

- **seasonal**: the same slot on earlier days (only the same weekday once `min_same_weekday`
  such days exist), each day weighted by 0.5 ** (age in days / `half_life_days`), so recent weeks
  count more; a past day with no order in a cell counts as a zero for it;
- **recent**: the slots just before the target (up to `recent_slots`), weighted by 0.5 ** (slots
  back / `recent_half_life_slots`): today's level, the only signal on a first day.

With both, `recent_weight` of the recent rate is blended in; with one, it alone is used. Each
cell's rate is then spread over its neighbours (`k_ring` rings, ring r weighted
`neighbour_weight` ** r, normalised so the city's total is kept), so a sparse cell next to busy
ones is not forecast at zero.

It never peeks: an order is used only if it was placed before `now_s`, and a (day, slot) counts
as observed only once it has ended by `now_s`; the target slot must start at or after `now_s`.
Pure: no Django; times are epoch seconds.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import h3

DAY_S = 86_400


@dataclass(frozen=True)
class PastOrder:
    lat: float
    lon: float
    placed_s: float  # epoch seconds


@dataclass(frozen=True)
class ForecastConfig:
    resolution: int = 8  # H3 resolution (8: cells of about 0.7 km²)
    slot_s: int = 1800
    timezone: str = "UTC"  # slots and weekdays are local
    history_days: int = 28  # seasonal: at most this many days back
    half_life_days: float = 7.0
    min_same_weekday: int = 2  # past same-weekday days needed before weekdays are told apart
    recent_slots: int = 8
    recent_half_life_slots: float = 2.0
    recent_weight: float = 0.3  # share of the recent rate when seasonal history exists
    k_ring: int = 1
    neighbour_weight: float = 0.5

    def __post_init__(self):
        if not 0 <= self.resolution <= 15:
            raise ValueError("resolution must be between 0 and 15")
        if self.slot_s <= 0 or DAY_S % self.slot_s:
            raise ValueError("slot_s must divide a day")
        if self.history_days < 0 or self.recent_slots < 0 or self.k_ring < 0 or self.min_same_weekday < 1:
            raise ValueError("history_days, recent_slots, k_ring must not be negative; min_same_weekday >= 1")
        if not (self.half_life_days > 0 and self.recent_half_life_slots > 0):
            raise ValueError("half-lives must be positive")
        if not (0 <= self.recent_weight <= 1 and 0 <= self.neighbour_weight <= 1):
            raise ValueError("recent_weight and neighbour_weight must be between 0 and 1")
        ZoneInfo(self.timezone)  # raises on an unknown zone


@dataclass(frozen=True)
class SlotForecast:
    """Expected orders per cell in [slot_start_s, slot_end_s), and what it was built from."""

    slot_start_s: float
    slot_end_s: float
    expected: dict[str, float]
    seasonal_days: int  # past days behind the seasonal rate
    recent_slots: int  # earlier slots behind the recent rate
    orders_used: int  # orders placed before now that fed it
    config: ForecastConfig = field(repr=False)

    def near(self, cell: str, k: int | None = None) -> float:
        """Expected orders within k rings of a cell (the config's k_ring by default)."""
        return sum(
            self.expected.get(c, 0.0) for c in h3.grid_disk(cell, self.config.k_ring if k is None else k)
        )

    def total(self) -> float:
        return sum(self.expected.values())

    def basis(self) -> str:
        """What the forecast learnt from, in words (for a driver or a dispatcher)."""
        parts = []
        if self.seasonal_days:
            parts.append(f"the same time of day on {self.seasonal_days} earlier day(s)")
        if self.recent_slots:
            minutes = self.recent_slots * self.config.slot_s // 60
            parts.append(f"orders placed in the last {minutes} minutes")
        return " and ".join(parts) if parts else "no order history"


class _Clock:
    """Local (day number, slot of day, weekday) of epoch seconds, and back."""

    def __init__(self, config: ForecastConfig):
        self.zone = ZoneInfo(config.timezone)
        self.slot_s = config.slot_s

    def local(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.zone)

    def day_slot(self, t: float) -> tuple[int, int]:
        local = self.local(t)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return local.toordinal(), seconds // self.slot_s

    def slot_bounds(self, day: int, slot: int) -> tuple[float, float]:
        midnight = datetime.fromordinal(day).replace(tzinfo=self.zone)
        start = midnight + timedelta(seconds=slot * self.slot_s)
        return start.timestamp(), (start + timedelta(seconds=self.slot_s)).timestamp()


def slot_start_at_or_after(t: float, config: ForecastConfig) -> float:
    """The start of the first slot that begins at or after t (local slot grid)."""
    clock = _Clock(config)
    day, slot = clock.day_slot(t)
    start, end = clock.slot_bounds(day, slot)
    return start if start >= t else end


def forecast_slot(
    orders: Iterable[PastOrder], *, now_s: float, config: ForecastConfig, slot_start_s: float | None = None
) -> SlotForecast:
    """Expected orders per cell in the slot starting at `slot_start_s` (default: the next slot to
    start at or after now), from orders placed before `now_s` only."""
    clock = _Clock(config)
    if slot_start_s is None:
        slot_start_s = slot_start_at_or_after(now_s, config)
    if slot_start_s < now_s:
        raise ValueError("the target slot must not start before now (that would peek at its orders)")
    target_day, target_slot = clock.day_slot(slot_start_s)
    _, slot_end_s = clock.slot_bounds(target_day, target_slot)
    weekday = datetime.fromordinal(target_day).weekday()

    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    used = 0
    first_day = None
    for order in orders:
        if not order.placed_s < now_s:
            continue  # not yet placed at `now`: never seen
        day, slot = clock.day_slot(order.placed_s)
        counts[(day, slot)][h3.latlng_to_cell(order.lat, order.lon, config.resolution)] += 1
        used += 1
        first_day = day if first_day is None else min(first_day, day)

    def ended(day: int, slot: int) -> bool:
        return clock.slot_bounds(day, slot)[1] <= now_s

    seasonal, season_days = _seasonal(counts, first_day, target_day, target_slot, weekday, ended, config)
    recent, recent_n = _recent(counts, target_day, target_slot, ended, config)
    if season_days and recent_n:
        w = config.recent_weight
        cells = set(seasonal) | set(recent)
        rates = {c: (1 - w) * seasonal.get(c, 0.0) + w * recent.get(c, 0.0) for c in cells}
    else:
        rates = seasonal if season_days else recent
    return SlotForecast(
        slot_start_s=slot_start_s,
        slot_end_s=slot_end_s,
        expected=smooth(rates, k_ring=config.k_ring, neighbour_weight=config.neighbour_weight),
        seasonal_days=season_days,
        recent_slots=recent_n,
        orders_used=used,
        config=config,
    )


def _weighted_mean(samples: list[tuple[float, dict[str, int]]]) -> dict[str, float]:
    total = sum(w for w, _ in samples)
    out: dict[str, float] = defaultdict(float)
    for w, by_cell in samples:
        for cell, n in by_cell.items():
            out[cell] += w * n / total
    return dict(out)


def _seasonal(counts, first_day, target_day, target_slot, weekday, ended, config):
    """The same slot on earlier observed days: (rate per cell, days used)."""
    if first_day is None or config.history_days == 0:
        return {}, 0
    days = [
        d
        for d in range(max(first_day, target_day - config.history_days), target_day)
        if ended(d, target_slot)
    ]
    same = [d for d in days if datetime.fromordinal(d).weekday() == weekday]
    if len(same) >= config.min_same_weekday:
        days = same
    if not days:
        return {}, 0
    samples = [
        (0.5 ** ((target_day - d) / config.half_life_days), counts.get((d, target_slot), {})) for d in days
    ]
    return _weighted_mean(samples), len(days)


def _recent(counts, target_day, target_slot, ended, config):
    """The slots just before the target, today's level: (rate per cell, slots used)."""
    per_day = DAY_S // config.slot_s
    target = target_day * per_day + target_slot
    samples = []
    for back in range(1, config.recent_slots + 1):
        day, slot = divmod(target - back, per_day)
        if ended(day, slot):
            samples.append((0.5 ** ((back - 1) / config.recent_half_life_slots), counts.get((day, slot), {})))
    if not samples:
        return {}, 0
    return _weighted_mean(samples), len(samples)


def smooth(rates: dict[str, float], *, k_ring: int, neighbour_weight: float) -> dict[str, float]:
    """Spread each cell's rate over its k rings (ring r weighted neighbour_weight ** r, the
    weights of one source summing to 1, so the total is kept)."""
    if k_ring == 0 or neighbour_weight == 0:
        return {c: r for c, r in rates.items() if r > 0}
    ring_weights = [neighbour_weight**r for r in range(k_ring + 1)]
    out: dict[str, float] = defaultdict(float)
    for cell, rate in rates.items():
        if rate <= 0:
            continue
        rings = [[cell]] + [h3.grid_ring(cell, r) for r in range(1, k_ring + 1)]
        norm = sum(w * len(ring) for w, ring in zip(ring_weights, rings, strict=True))
        for w, ring in zip(ring_weights, rings, strict=True):
            for c in ring:
                out[c] += rate * w / norm
    return dict(out)


def cell_centre(cell: str) -> tuple[float, float]:
    """(lat, lon) of a cell's centre."""
    return h3.cell_to_latlng(cell)


def cell_of(lat: float, lon: float, resolution: int) -> str:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
        raise ValueError(f"not a WGS84 point: {lat}, {lon}")
    return h3.latlng_to_cell(lat, lon, resolution)
