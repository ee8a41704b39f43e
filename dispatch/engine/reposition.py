"""Reposition suggestions: send idle drivers toward cells where forecast demand exceeds supply.

Given the forecast for the next slot (`forecast.SlotForecast`), the idle drivers' positions and
the other supply (drivers who will be free nearby within the slot), `propose_moves`:

1. scores each cell by its neighbourhood (the cell and `k_ring` rings): expected orders minus
   `orders_per_driver` x drivers there; the deficit cells, biggest first, each keep their
   neighbourhood to themselves (no two targets share a cell, so a shortage is counted once);
2. gives each deficit cell as many places as whole (or part) drivers it lacks, a place's gain
   being the orders it would cover (1, or the fraction left for the last one);
3. solves one min-cost assignment of idle drivers to places (scipy `linear_sum_assignment`),
   a move costing its distance minus its gain valued so that covered orders come first and
   distance breaks ties, with "stay" free;
4. keeps a move only when it is within `max_distance_m`, its gain is at least `min_gain`, the
   driver is not already in the target's neighbourhood, and the driver's own neighbourhood has
   a spare driver (surplus of at least one, not counting the cells it shares with the target's)
   after the moves before it.

Each move carries its reason in plain words. Pure: no Django.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import h3
import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatch.engine.forecast import SlotForecast, cell_centre, cell_of
from dispatch.engine.geo import haversine_matrix_m

STAY = 0.0
NEVER = 1e12


@dataclass(frozen=True)
class IdleDriver:
    id: str
    lat: float
    lon: float


@dataclass(frozen=True)
class RepositionConfig:
    max_distance_m: float = 3000.0
    min_gain: float = 0.5  # expected orders a move must cover
    orders_per_driver: float = 1.0  # orders one driver nearby covers in a slot

    def __post_init__(self):
        for name in ("max_distance_m", "min_gain", "orders_per_driver"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative")
        if self.orders_per_driver == 0:
            raise ValueError("orders_per_driver must be positive")


@dataclass(frozen=True)
class Move:
    driver_id: str
    cell: str
    lat: float  # the cell's centre
    lon: float
    distance_m: float
    expected_orders: float  # in the target's neighbourhood over the slot
    drivers_near: float  # supply there before this move
    gain: float  # orders this move is expected to cover
    reason: str


def supply_by_cell(points: Sequence[tuple[float, float]], resolution: int) -> dict[str, float]:
    """Drivers per cell from (lat, lon) positions."""
    out: dict[str, float] = defaultdict(float)
    for lat, lon in points:
        out[cell_of(lat, lon, resolution)] += 1
    return dict(out)


def propose_moves(
    idle: Sequence[IdleDriver],
    forecast: SlotForecast,
    *,
    other_supply: dict[str, float] | None = None,
    config: RepositionConfig | None = None,
) -> list[Move]:
    """Moves of idle drivers toward forecast demand (see the module's docstring)."""
    config = config or RepositionConfig()
    res, k = forecast.config.resolution, forecast.config.k_ring
    if not idle or not forecast.expected:
        return []
    home = [cell_of(d.lat, d.lon, res) for d in idle]
    supply: dict[str, float] = defaultdict(float, other_supply or {})
    for cell in home:
        supply[cell] += 1

    def near(values: dict[str, float], cell: str) -> float:
        return sum(values.get(c, 0.0) for c in h3.grid_disk(cell, k))

    def surplus(cell: str, target: str) -> float:
        """Drivers' cover near `cell` minus the orders expected there, leaving out the cells
        the target's neighbourhood shares with it (a driver moving there still covers those)."""
        left = set(h3.grid_disk(cell, k)) - target_disks[target]
        return config.orders_per_driver * near(supply, cell) - sum(
            forecast.expected.get(c, 0.0) for c in left
        )

    targets = _targets(forecast, supply, config, near)
    if not targets:
        return []
    places = [(cell, gain) for cell, lacking in targets for gain in _units(lacking)]
    centres = {cell: cell_centre(cell) for cell, _ in targets}
    metres = haversine_matrix_m(
        [d.lat for d in idle],
        [d.lon for d in idle],
        [centres[c][0] for c, _ in places],
        [centres[c][1] for c, _ in places],
    )
    gains = np.array([g for _, g in places])
    # Any allowed move's gain (>= min_gain) outweighs any allowed distance (<= max_distance_m).
    per_order = 2 * (config.max_distance_m + 1) / max(config.min_gain, 1e-3)
    cost = metres - per_order * gains[None, :]
    target_disks = {cell: set(h3.grid_disk(cell, k)) for cell, _ in targets}
    for i, cell in enumerate(home):
        for j, (target, _) in enumerate(places):
            if metres[i, j] > config.max_distance_m or cell in target_disks[target]:
                cost[i, j] = NEVER
    # One "stay" column per driver: not moving costs nothing.
    stay = np.full((len(idle), len(idle)), NEVER)
    np.fill_diagonal(stay, STAY)
    rows, cols = linear_sum_assignment(np.hstack([cost, stay]))
    chosen = sorted(
        ((cost[i, j], i, j) for i, j in zip(rows, cols, strict=True) if j < len(places) and cost[i, j] < 0),
        key=lambda item: item[0],
    )
    moves = []
    for _, i, j in chosen:
        target, gain = places[j]
        spare = surplus(home[i], target)
        if gain < config.min_gain or spare < config.orders_per_driver:
            continue  # too little to win, or the driver is needed where they are
        expected, drivers_near = forecast.near(target), near(supply, target)
        supply[home[i]] -= 1
        supply[target] += 1
        moves.append(
            Move(
                driver_id=idle[i].id,
                cell=target,
                lat=centres[target][0],
                lon=centres[target][1],
                distance_m=float(metres[i, j]),
                expected_orders=expected,
                drivers_near=drivers_near,
                gain=gain,
                reason=_reason(forecast, expected, drivers_near, float(metres[i, j]), spare),
            )
        )
    return moves


def _targets(forecast: SlotForecast, supply, config: RepositionConfig, near) -> list[tuple[str, float]]:
    """Deficit cells (cell, drivers lacking), biggest first, neighbourhoods not overlapping."""
    k = forecast.config.k_ring
    scored = []
    for cell in forecast.expected:
        lacking = (
            forecast.near(cell) - config.orders_per_driver * near(supply, cell)
        ) / config.orders_per_driver
        if lacking >= config.min_gain:
            scored.append((lacking, forecast.expected[cell], cell))
    scored.sort(key=lambda item: (-item[1], -item[0], item[2]))  # busiest centre first
    taken: set[str] = set()
    targets = []
    for lacking, _, cell in scored:
        disk = set(h3.grid_disk(cell, k))
        if disk & taken:
            continue
        taken |= disk
        targets.append((cell, lacking))
    return targets


def _units(lacking: float) -> list[float]:
    """The places a deficit offers: one per whole driver lacking, then the fraction left."""
    whole = int(lacking)
    rest = lacking - whole
    return [1.0] * whole + ([rest] if rest > 1e-9 else [])


def _reason(forecast: SlotForecast, expected: float, drivers: float, metres: float, spare_home: float) -> str:
    minutes = round((forecast.slot_end_s - forecast.slot_start_s) / 60)
    return (
        f"About {expected:.1f} orders are expected near this spot in the next {minutes} minutes "
        f"and {drivers:.0f} driver(s) are free near it; where you are, drivers outnumber the expected "
        f"orders by {max(spare_home, 0):.1f}. It is {metres / 1000:.1f} km away. "
        f"The forecast learnt from {forecast.basis()}."
    )
