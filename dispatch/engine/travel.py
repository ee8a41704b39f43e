"""Travel times between points, behind one small interface.

The engine asks a `TravelTimes` for a matrix of seconds; today that is great-circle metres times
a detour factor over a speed (`HaversineTravelTimes`), the routing issue plugs road times into
the same interface.
"""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from dispatch.engine.geo import EARTH_RADIUS_M, haversine_matrix_m

Point = tuple[float, float]  # (lat, lon) in degrees


@runtime_checkable
class TravelTimes(Protocol):
    def matrix_s(self, origins: Sequence[Point], destinations: Sequence[Point]) -> np.ndarray:
        """Seconds from every origin to every destination: shape (len(origins), len(destinations))."""
        ...


@runtime_checkable
class TravelDistances(Protocol):
    def matrix_m(self, origins: Sequence[Point], destinations: Sequence[Point]) -> np.ndarray:
        """Travelled metres from every origin to every destination (settlement pays on them)."""
        ...


def haversine_pairs_m(lats_a, lons_a, lats_b, lons_b) -> np.ndarray:
    """Element-wise great-circle metres between a[i] and b[i] (same shapes)."""
    phi_a, phi_b = np.radians(np.asarray(lats_a, dtype=float)), np.radians(np.asarray(lats_b, dtype=float))
    dlmb = np.radians(np.asarray(lons_b, dtype=float) - np.asarray(lons_a, dtype=float))
    a = np.sin((phi_b - phi_a) / 2) ** 2 + np.cos(phi_a) * np.cos(phi_b) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


class HaversineTravelTimes:
    """Great-circle metres x detour factor / speed. Also answers element-wise (`pairs_s`)."""

    def __init__(self, speed_mps: float, detour_factor: float = 1.0):
        if not speed_mps > 0:
            raise ValueError("speed_mps must be positive")
        if not detour_factor >= 1.0:
            raise ValueError("detour_factor must be at least 1")
        self.speed_mps = float(speed_mps)
        self.detour_factor = float(detour_factor)

    def matrix_s(self, origins: Sequence[Point], destinations: Sequence[Point]) -> np.ndarray:
        if len(origins) == 0 or len(destinations) == 0:
            return np.zeros((len(origins), len(destinations)))
        o = np.asarray(origins, dtype=float).reshape(-1, 2)
        d = np.asarray(destinations, dtype=float).reshape(-1, 2)
        metres = haversine_matrix_m(o[:, 0], o[:, 1], d[:, 0], d[:, 1])
        return metres * (self.detour_factor / self.speed_mps)

    def matrix_m(self, origins: Sequence[Point], destinations: Sequence[Point]) -> np.ndarray:
        """Great-circle metres x the detour factor: the street distance it stands for."""
        return self.matrix_s(origins, destinations) * self.speed_mps

    def pairs_s(self, lats_a, lons_a, lats_b, lons_b) -> np.ndarray:
        return haversine_pairs_m(lats_a, lons_a, lats_b, lons_b) * (self.detour_factor / self.speed_mps)
