"""A drivable street graph read from an OpenStreetMap PBF extract, with shortest paths.

Small and in-memory: enough for the simulator to move couriers along real streets and for
the live map to draw them without a tile server. Edges are undirected (couriers on bikes
and scooters use both directions; one-way rules belong to the real router) and weighted by
their length in metres. Only the largest connected part is kept, so every node reaches
every other.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import osmium
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from dispatch.engine.geo import haversine_m, haversine_matrix_m

DRIVABLE_HIGHWAYS = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
    }
)
NO_ACCESS = frozenset({"no", "private"})


@dataclass(frozen=True)
class StreetLine:
    """One OSM way, for drawing: its name, highway class and (lon, lat) points."""

    name: str
    highway: str
    coords: tuple[tuple[float, float], ...]


@dataclass(frozen=True, eq=False)
class StreetGraph:
    """Nodes (index -> OSM id, lat, lon, a street name) and a symmetric metres matrix."""

    osm_ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    names: tuple[str, ...]
    edges: csr_matrix
    lines: tuple[StreetLine, ...]

    def __len__(self) -> int:
        return len(self.osm_ids)

    def point(self, node: int) -> tuple[float, float]:
        """(lat, lon) of a node."""
        return float(self.lat[node]), float(self.lon[node])

    def nearest(self, lat: float, lon: float) -> int:
        return int(np.argmin(haversine_matrix_m([lat], [lon], self.lat, self.lon)[0]))

    def nodes_within(self, lat: float, lon: float, *, min_m: float, max_m: float) -> np.ndarray:
        """Indices of nodes whose straight-line distance from the point is in [min_m, max_m]."""
        metres = haversine_matrix_m([lat], [lon], self.lat, self.lon)[0]
        return np.flatnonzero((metres >= min_m) & (metres <= max_m))

    def nodes_in_bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Indices of nodes inside (min_lon, min_lat, max_lon, max_lat), edges included."""
        min_lon, min_lat, max_lon, max_lat = bbox
        inside = (self.lon >= min_lon) & (self.lon <= max_lon) & (self.lat >= min_lat) & (self.lat <= max_lat)
        return np.flatnonzero(inside)

    def street_name(self, node: int, *, within_m: float = 500.0) -> str:
        """The node's street name, or the nearest named node's within a radius ("" if none)."""
        if self.names[node]:
            return self.names[node]
        metres = haversine_matrix_m(self.lat[node : node + 1], self.lon[node : node + 1], self.lat, self.lon)[
            0
        ]
        named = np.array([bool(name) for name in self.names]) & (metres <= within_m)
        if not named.any():
            return ""
        return self.names[int(np.argmin(np.where(named, metres, np.inf)))]

    def shortest_path(self, source: int, target: int) -> list[int]:
        """Node indices from source to target, both included."""
        if source == target:
            return [source]
        _, predecessors = dijkstra(self.edges, directed=False, indices=source, return_predecessors=True)
        path = [target]
        while path[-1] != source:
            previous = int(predecessors[path[-1]])
            if previous < 0:
                raise ValueError(f"node {target} is not reachable from {source}")
            path.append(previous)
        return path[::-1]

    def path_metres(self, path: list[int]) -> float:
        return sum(float(self.edges[a, b]) for a, b in pairwise(path))

    def bbox(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) of the nodes."""
        return float(self.lon.min()), float(self.lat.min()), float(self.lon.max()), float(self.lat.max())

    def geojson(self, bbox: tuple[float, float, float, float] | None = None) -> dict:
        """The streets as a GeoJSON FeatureCollection, only lines that touch bbox if given."""
        features = []
        for line in self.lines:
            if bbox is not None and not _touches(line.coords, bbox):
                continue
            features.append(
                {
                    "type": "Feature",
                    "properties": {"name": line.name, "highway": line.highway},
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[round(x, 6), round(y, 6)] for x, y in line.coords],
                    },
                }
            )
        return {"type": "FeatureCollection", "features": features}


def _touches(coords: Iterable[tuple[float, float]], bbox: tuple[float, float, float, float]) -> bool:
    min_lon, min_lat, max_lon, max_lat = bbox
    return any(min_lon <= x <= max_lon and min_lat <= y <= max_lat for x, y in coords)


def _is_drivable(tags) -> bool:
    return (
        tags.get("highway") in DRIVABLE_HIGHWAYS
        and tags.get("area") != "yes"
        and tags.get("access") not in NO_ACCESS
        and tags.get("motor_vehicle") not in NO_ACCESS
    )


def load_street_graph(path: str | Path) -> StreetGraph:
    """Read the drivable ways of a PBF file into a StreetGraph."""
    index: dict[int, int] = {}
    osm_ids: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    names: list[str] = []
    edge_a: list[int] = []
    edge_b: list[int] = []
    edge_m: list[float] = []
    lines: list[StreetLine] = []

    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        if not _is_drivable(way.tags):
            continue
        name = way.tags.get("name", "")
        # Ways cut by the extract's edge have nodes without a location: keep the known runs.
        points = [(n.ref, n.location.lat, n.location.lon) for n in way.nodes if n.location.valid()]
        if len(points) < 2:
            continue
        lines.append(StreetLine(name, way.tags["highway"], tuple((lon, lat) for _, lat, lon in points)))
        previous = None
        for ref, lat, lon in points:
            node = index.get(ref)
            if node is None:
                node = index[ref] = len(osm_ids)
                osm_ids.append(ref)
                lats.append(lat)
                lons.append(lon)
                names.append(name)
            elif not names[node] and name:
                names[node] = name
            if previous is not None and previous != node:
                edge_a.append(previous)
                edge_b.append(node)
                edge_m.append(max(haversine_m(lats[previous], lons[previous], lat, lon), 0.01))
            previous = node
    if not osm_ids:
        raise ValueError(f"{path} has no drivable streets")

    size = len(osm_ids)
    # Duplicate edges (two ways sharing a segment) would be summed by the sparse constructor:
    # keep the shortest of each pair instead.
    best: dict[tuple[int, int], float] = {}
    for a, b, m in zip(edge_a, edge_b, edge_m, strict=True):
        key = (a, b) if a < b else (b, a)
        best[key] = min(m, best.get(key, m))
    a_idx = np.array([k[0] for k in best], dtype=np.int64)
    b_idx = np.array([k[1] for k in best], dtype=np.int64)
    metres = np.array(list(best.values()), dtype=float)
    edges = coo_matrix(
        (np.concatenate([metres, metres]), (np.concatenate([a_idx, b_idx]), np.concatenate([b_idx, a_idx]))),
        shape=(size, size),
    ).tocsr()

    _, labels = connected_components(edges, directed=False)
    keep = np.flatnonzero(labels == np.bincount(labels).argmax())
    return StreetGraph(
        osm_ids=np.array(osm_ids, dtype=np.int64)[keep],
        lat=np.array(lats)[keep],
        lon=np.array(lons)[keep],
        names=tuple(names[i] for i in keep),
        edges=edges[keep][:, keep].tocsr(),
        lines=tuple(lines),
    )
