"""Great-circle distances in metres on the WGS84 mean sphere.

Good to a few metres over a city, which is all matching needs; road distance comes from
the street graph or the travel-time provider.
"""

import math

import numpy as np

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres between two lat/lon points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _haversine_m(phi_a, lmb_a, phi_b, lmb_b) -> np.ndarray:
    """The one formula for the arrays below (radians; shapes broadcast), so a pair's metres are
    the same whether it was asked alone or in a matrix."""
    a = np.sin((phi_b - phi_a) / 2) ** 2 + np.cos(phi_a) * np.cos(phi_b) * np.sin((lmb_b - lmb_a) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def haversine_matrix_m(lats_a, lons_a, lats_b, lons_b) -> np.ndarray:
    """All pairwise distances in metres: shape (len(a), len(b)), vectorised."""
    phi_a = np.radians(np.asarray(lats_a, dtype=float))[:, None]
    phi_b = np.radians(np.asarray(lats_b, dtype=float))[None, :]
    lmb_a = np.radians(np.asarray(lons_a, dtype=float))[:, None]
    lmb_b = np.radians(np.asarray(lons_b, dtype=float))[None, :]
    return _haversine_m(phi_a, lmb_a, phi_b, lmb_b)


def haversine_pairs_m(lats_a, lons_a, lats_b, lons_b) -> np.ndarray:
    """Element-wise great-circle metres between a[i] and b[i] (same shapes)."""
    return _haversine_m(
        np.radians(np.asarray(lats_a, dtype=float)),
        np.radians(np.asarray(lons_a, dtype=float)),
        np.radians(np.asarray(lats_b, dtype=float)),
        np.radians(np.asarray(lons_b, dtype=float)),
    )


def unit_sphere(lats, lons) -> np.ndarray:
    """Points as 3-D unit vectors: a KD-tree over them finds the nearest by great circle."""
    phi, lmb = np.radians(np.asarray(lats, dtype=float)), np.radians(np.asarray(lons, dtype=float))
    return np.column_stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])


def distinct_places(points) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (lat, lon) rows of `points` and, per point, the row of its place: a round
    names each place many times, and asks the costly things (snapping, H3 cells) once per place.
    Each (lat, lon) is viewed as one complex number: a 1-D unique, far quicker than unique(axis=0)."""
    pts = np.ascontiguousarray(np.asarray(points, dtype=float).reshape(-1, 2))
    uniq, inverse = np.unique(pts.view(np.complex128).reshape(-1), return_inverse=True)
    return np.column_stack([uniq.real, uniq.imag]), inverse.reshape(-1)
