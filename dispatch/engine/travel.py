"""Travel times between points, behind one small interface.

A provider answers `matrix(origins, destinations, depart_at, vehicle_type)` with a `Matrix`
(seconds and metres, numpy arrays of shape (len(origins), len(destinations)); it unpacks as
`seconds, metres`). `depart_at` is on the engine's clock (epoch seconds in the product; None:
no traffic); `vehicle_type` is a fleet vehicle type (`road_rules.VEHICLE_PROFILE`). The engine
asks through `matrix_s` / `pairs_s` below, so any object with `matrix` will do.

Providers: `HaversineTravelTimes` (great circle x detour over a per-vehicle speed),
`RoadTravelTimes` (the directed road graph of `roads.py`, with traffic); the product adds
pgRouting (`dispatch.travel`) and picks one by the TRAVEL_TIME_PROVIDER setting.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import h3
import numpy as np

from dispatch.engine.geo import distinct_places, haversine_matrix_m, haversine_pairs_m
from dispatch.engine.road_rules import VEHICLE_PROFILE, profile_for
from dispatch.engine.roads import TRAFFIC_H3_RES, Matrix, RoadRouter, TrafficSnapshot

Point = tuple[float, float]  # (lat, lon) in degrees
DEFAULT_VEHICLE = "car"
DETOUR_FACTOR = 1.3  # a typical street detour over the straight line

# Average door-to-door city speeds (m/s) over the straight line's detour, per vehicle type.
VEHICLE_SPEED_MPS = {
    "bicycle": 4.5,  # about 16 km/h
    "cargo_bike": 4.0,
    "scooter": 7.0,
    "motorcycle": 8.5,
    "car": 8.0,
    "van": 7.5,
    "truck": 6.5,
}
assert set(VEHICLE_SPEED_MPS) == set(VEHICLE_PROFILE)


@runtime_checkable
class TravelTimes(Protocol):
    def matrix(
        self,
        origins: Sequence[Point],
        destinations: Sequence[Point],
        depart_at: float | None = None,
        vehicle_type: str = DEFAULT_VEHICLE,
    ) -> Matrix:
        """Seconds and metres from every origin to every destination."""
        ...


def matrix_s(
    travel: TravelTimes,
    origins: Sequence[Point],
    destinations: Sequence[Point],
    *,
    depart_at: float | None = None,
    vehicle_type: str = DEFAULT_VEHICLE,
) -> np.ndarray:
    """The seconds of `travel.matrix`."""
    if len(origins) == 0 or len(destinations) == 0:
        return np.zeros((len(origins), len(destinations)))
    return travel.matrix(origins, destinations, depart_at, vehicle_type).seconds


def pairs_s(
    travel: TravelTimes,
    lats_a,
    lons_a,
    lats_b,
    lons_b,
    *,
    depart_at: float | None = None,
    vehicle_types: Sequence[str] | str = DEFAULT_VEHICLE,
) -> np.ndarray:
    """Element-wise seconds from a[i] to b[i], each pair with its own vehicle type (or one for all).
    A provider with its own `pairs_s` answers directly; otherwise one matrix per vehicle type over
    the distinct origins and destinations."""
    a = np.column_stack([np.asarray(lats_a, dtype=float), np.asarray(lons_a, dtype=float)]).reshape(-1, 2)
    b = np.column_stack([np.asarray(lats_b, dtype=float), np.asarray(lons_b, dtype=float)]).reshape(-1, 2)
    types = np.broadcast_to(np.asarray(vehicle_types, dtype=object), (len(a),))
    out = np.zeros(len(a))
    own = getattr(travel, "pairs_s", None)
    for vehicle_type in dict.fromkeys(types.tolist()):
        rows = np.flatnonzero(types == vehicle_type)
        if own is not None:
            out[rows] = own(a[rows], b[rows], depart_at=depart_at, vehicle_type=vehicle_type)
            continue
        ua, ia = np.unique(a[rows], axis=0, return_inverse=True)
        ub, ib = np.unique(b[rows], axis=0, return_inverse=True)
        seconds = travel.matrix(
            [tuple(p) for p in ua], [tuple(p) for p in ub], depart_at, vehicle_type
        ).seconds
        out[rows] = seconds[ia.reshape(-1), ib.reshape(-1)]
    return out


class Provider:
    """What the providers share: the traffic valid at a departure (`traffic(depart_at)`, a
    TrafficSnapshot or None) and `matrix_s` as a method, for callers that hold one."""

    traffic: Callable[[float], TrafficSnapshot | None] | None = None

    def snapshot(self, depart_at: float | None) -> TrafficSnapshot | None:
        return self.traffic(depart_at) if self.traffic is not None and depart_at is not None else None

    def matrix_s(self, origins, destinations, *, depart_at=None, vehicle_type=DEFAULT_VEHICLE) -> np.ndarray:
        return matrix_s(self, origins, destinations, depart_at=depart_at, vehicle_type=vehicle_type)


class HaversineTravelTimes(Provider):
    """Great-circle metres x detour factor over the vehicle type's speed (VEHICLE_SPEED_MPS, or one
    `speed_mps` for every vehicle). Metres are the detoured straight line. Under traffic a pair
    goes at the mean of its two ends' area factors (a straight line knows no roads: way records
    do not apply, and a closed area counts as MIN_AREA_FACTOR, not impassable)."""

    def __init__(
        self,
        speed_mps: float | None = None,
        detour_factor: float = 1.0,
        speeds_mps: Mapping[str, float] | None = None,
        traffic: Callable[[float], TrafficSnapshot | None] | None = None,
    ):
        if speed_mps is not None and not speed_mps > 0:
            raise ValueError("speed_mps must be positive")
        if not detour_factor >= 1.0:
            raise ValueError("detour_factor must be at least 1")
        table = dict(speeds_mps or VEHICLE_SPEED_MPS)
        if speed_mps is not None:
            table = dict.fromkeys(VEHICLE_PROFILE, float(speed_mps))
        if any(not table.get(v, 0) > 0 for v in VEHICLE_PROFILE):
            raise ValueError(f"speeds_mps needs a positive speed for each of {', '.join(VEHICLE_PROFILE)}")
        self.speeds_mps = table
        self.detour_factor = float(detour_factor)
        self.traffic = traffic

    def speed(self, vehicle_type: str) -> float:
        profile_for(vehicle_type)  # a clear error for an unknown type
        return self.speeds_mps[vehicle_type]

    def matrix(self, origins, destinations, depart_at=None, vehicle_type=DEFAULT_VEHICLE) -> Matrix:
        o = np.asarray(origins, dtype=float).reshape(-1, 2)
        d = np.asarray(destinations, dtype=float).reshape(-1, 2)
        metres = haversine_matrix_m(o[:, 0], o[:, 1], d[:, 0], d[:, 1]) * self.detour_factor
        seconds = metres / self.speed(vehicle_type)
        traffic = self.snapshot(depart_at)
        if traffic and traffic.cell_factors:
            seconds = seconds / (
                (_area_factors(o, traffic)[:, None] + _area_factors(d, traffic)[None, :]) / 2
            )
        return Matrix(seconds, metres)

    def pairs_s(self, a: np.ndarray, b: np.ndarray, *, depart_at=None, vehicle_type=DEFAULT_VEHICLE):
        """Seconds a[i] -> b[i]: the same arithmetic as `matrix`, pair by pair."""
        metres = haversine_pairs_m(a[:, 0], a[:, 1], b[:, 0], b[:, 1]) * self.detour_factor
        seconds = metres / self.speed(vehicle_type)
        traffic = self.snapshot(depart_at)
        if traffic and traffic.cell_factors:
            seconds = seconds / ((_area_factors(a, traffic) + _area_factors(b, traffic)) / 2)
        return seconds


MIN_AREA_FACTOR = 0.1


def _area_factors(points: np.ndarray, traffic: TrafficSnapshot) -> np.ndarray:
    """Each point's area speed factor (its H3 cell's; 1 without one), at least MIN_AREA_FACTOR;
    each distinct place's cell found once."""
    places, inverse = distinct_places(points)
    factors = np.array(
        [
            max(MIN_AREA_FACTOR, traffic.cell_factors.get(h3.latlng_to_cell(lat, lon, TRAFFIC_H3_RES), 1.0))
            for lat, lon in places.tolist()
        ]
    )
    return factors[inverse]


class RoadProvider(Provider):
    """What the road providers share: the traffic valid at depart_at (`traffic(depart_at)`, a
    TrafficSnapshot or None), `fallback`'s answer for the pairs they cannot route (off the graph,
    no path; flagged in `Matrix.fallback`), and counts of routed and estimated pairs."""

    def __init__(
        self,
        *,
        fallback: TravelTimes | None = None,
        traffic: Callable[[float], TrafficSnapshot | None] | None = None,
    ):
        self.fallback = fallback or HaversineTravelTimes(detour_factor=DETOUR_FACTOR, traffic=traffic)
        self.traffic = traffic
        self.routed = 0
        self.estimated = 0

    def route(self, origins, destinations, profile: str, traffic: TrafficSnapshot | None) -> Matrix:
        """Road answers; pairs it cannot route are flagged (subclasses)."""
        raise NotImplementedError

    def route_pairs(self, a: np.ndarray, b: np.ndarray, profile: str, traffic: TrafficSnapshot | None):
        """Road seconds a[i] -> b[i], inf where the roads cannot say: by default `route` between
        the distinct places, read pair by pair (a router with its own pairwise answer overrides it)."""
        ua, ia = distinct_places(a)
        ub, ib = distinct_places(b)
        return self.route(ua, ub, profile, traffic).seconds[ia, ib]

    def pairs_s(self, a: np.ndarray, b: np.ndarray, *, depart_at=None, vehicle_type=DEFAULT_VEHICLE):
        """Seconds a[i] -> b[i] (arrays of (lat, lon)): what `matrix` answers for those pairs, without
        costing every origin against every destination; the fallback answers only the pairs the
        roads cannot (and only those count as estimates)."""
        a = np.asarray(a, dtype=float).reshape(-1, 2)
        b = np.asarray(b, dtype=float).reshape(-1, 2)
        if len(a) == 0:
            return np.zeros(0)
        seconds = np.array(
            self.route_pairs(a, b, profile_for(vehicle_type), self.snapshot(depart_at)), dtype=float
        )
        fallback = ~np.isfinite(seconds)
        estimated = int(fallback.sum())
        self.estimated += estimated
        self.routed += len(seconds) - estimated
        if estimated:
            seconds[fallback] = pairs_s(
                self.fallback,
                a[fallback, 0],
                a[fallback, 1],
                b[fallback, 0],
                b[fallback, 1],
                depart_at=depart_at,
                vehicle_types=vehicle_type,
            )
        return seconds

    def matrix(self, origins, destinations, depart_at=None, vehicle_type=DEFAULT_VEHICLE) -> Matrix:
        if len(origins) == 0 or len(destinations) == 0:
            empty = np.zeros((len(origins), len(destinations)))
            return Matrix(empty, empty.copy())
        result = self.route(origins, destinations, profile_for(vehicle_type), self.snapshot(depart_at))
        estimated = int(result.fallback.sum())
        self.estimated += estimated
        self.routed += result.fallback.size - estimated
        if estimated:
            rows = np.flatnonzero(result.fallback.any(axis=1))
            cols = np.flatnonzero(result.fallback.any(axis=0))
            sub = self.fallback.matrix(
                [origins[i] for i in rows], [destinations[j] for j in cols], depart_at, vehicle_type
            )
            block = np.ix_(rows, cols)
            mask = result.fallback[block]
            result.seconds[block] = np.where(mask, sub.seconds, result.seconds[block])
            result.metres[block] = np.where(mask, sub.metres, result.metres[block])
        return result


class RoadTravelTimes(RoadProvider):
    """The embedded road graph (RoadRouter)."""

    def __init__(self, router: RoadRouter, **kwargs):
        super().__init__(**kwargs)
        self.router = router

    def route(self, origins, destinations, profile, traffic) -> Matrix:
        return self.router.matrix(origins, destinations, profile, traffic)

    def route_pairs(self, a, b, profile, traffic):
        return self.router.pairs(a, b, profile, traffic)
