"""One-to-one assignment of open orders to idle drivers, minimising pickup distance.

The objective is lexicographic: first as many orders assigned as the constraints allow, then
the least total straight-line distance from each driver to their pickup. A pair is feasible
only if the order's weight fits the driver's capacity and the pickup is within a radius.
Solved exactly with the Hungarian method (scipy's linear_sum_assignment).
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatch.engine.geo import haversine_matrix_m


@dataclass(frozen=True)
class DriverSlot:
    """An idle driver: where they are and how much they can carry."""

    id: Hashable
    lat: float
    lon: float
    capacity_kg: float


@dataclass(frozen=True)
class OrderTask:
    """An open order: where it is picked up and what it weighs."""

    id: Hashable
    lat: float
    lon: float
    weight_kg: float


class Assignment(NamedTuple):
    order_id: Hashable
    driver_id: Hashable
    metres: float


def feasible_costs(
    drivers: Sequence[DriverSlot], orders: Sequence[OrderTask], *, max_radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """The driver x order distance matrix (metres) and the mask of feasible pairs."""
    metres = haversine_matrix_m(
        [d.lat for d in drivers], [d.lon for d in drivers], [o.lat for o in orders], [o.lon for o in orders]
    )
    capacity = np.array([d.capacity_kg for d in drivers], dtype=float)[:, None]
    weight = np.array([o.weight_kg for o in orders], dtype=float)[None, :]
    feasible = (weight <= capacity) & (metres <= max_radius_m)
    return metres, feasible


def assign(
    drivers: Sequence[DriverSlot], orders: Sequence[OrderTask], *, max_radius_m: float
) -> list[Assignment]:
    """The optimal assignment, in the order the orders were given. Infeasible pairs never appear."""
    if not drivers or not orders:
        return []
    metres, feasible = feasible_costs(drivers, orders, max_radius_m=max_radius_m)
    # Drop drivers and orders that have no feasible partner: smaller problem, same optimum.
    rows = np.flatnonzero(feasible.any(axis=1))
    cols = np.flatnonzero(feasible.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return []
    sub_metres = metres[np.ix_(rows, cols)]
    sub_feasible = feasible[np.ix_(rows, cols)]
    # An infeasible pair costs more than any whole set of feasible pairs, so the solver first
    # maximises the number of feasible pairs and then minimises their total distance.
    most_pairs = min(rows.size, cols.size)
    penalty = most_pairs * float(sub_metres[sub_feasible].max()) + 1.0
    cost = np.where(sub_feasible, sub_metres, penalty)
    row_pick, col_pick = linear_sum_assignment(cost)
    picked = [
        (int(cols[c]), int(rows[r])) for r, c in zip(row_pick, col_pick, strict=True) if sub_feasible[r, c]
    ]
    picked.sort()
    return [Assignment(orders[o].id, drivers[d].id, float(metres[d, o])) for o, d in picked]
