"""A vehicle routing benchmark instance: one depot, customers with time windows, and (Li & Lim)
pickup-and-delivery pairs. Plain data: positions 0..n, position 0 the depot.

The two benchmark families measure an arc differently: Solomon (DIMACS/CVRPLIB convention)
truncates each Euclidean arc to one decimal; Li & Lim (SINTEF TOP) keeps it unrounded. Travel
time equals distance in both.
"""

import math
from dataclasses import dataclass
from typing import Literal

Family = Literal["solomon", "lilim"]


@dataclass(frozen=True)
class Instance:
    name: str
    family: Family
    ids: tuple[int, ...]  # node ids as in the file, by position
    x: tuple[float, ...]
    y: tuple[float, ...]
    demand: tuple[int, ...]  # Li & Lim: positive at a pickup, negative at its delivery
    ready: tuple[int, ...]
    due: tuple[int, ...]
    service: tuple[int, ...]
    capacity: int
    max_vehicles: int
    pairs: tuple[tuple[int, int], ...] = ()  # (pickup position, delivery position)

    @property
    def size(self) -> int:
        """Positions, the depot included."""
        return len(self.ids)

    def arc(self, i: int, j: int) -> float:
        """Length (= travel time) of the arc between positions i and j, by the family's convention."""
        dx, dy = self.x[i] - self.x[j], self.y[i] - self.y[j]
        if self.family == "lilim":
            return math.hypot(dx, dy)
        return arc_tenths(dx, dy) / 10

    def arc_tenths(self, i: int, j: int) -> int:
        """Solomon arc in whole tenths (exact, for integer sums)."""
        return arc_tenths(self.x[i] - self.x[j], self.y[i] - self.y[j])


def arc_tenths(dx: float, dy: float) -> int:
    """floor(10 * Euclidean length), exact for integer coordinates (isqrt), else to 1e-9."""
    if float(dx).is_integer() and float(dy).is_integer():
        return math.isqrt(100 * (int(dx) ** 2 + int(dy) ** 2))
    return math.floor(10 * math.hypot(dx, dy) + 1e-9)
