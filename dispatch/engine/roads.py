"""A directed road graph from an OpenStreetMap extract, and many-to-many travel times on it.

`build_network(path)` reads the routable ways (pyosmium) through the rules of `road_rules` into
plain arrays: nodes, and segments between consecutive nodes of a way with, per profile, the speed
forward and backward (0: not allowed that way). `RoadRouter` answers matrices on it: points snap
to the nearest node (KD-tree on the unit sphere) of the profile's largest strongly connected
part, so a snapped point reaches every other; one Dijkstra per distinct origin
(scipy.sparse.csgraph, limited to `limit_s`), seconds and the metres of that fastest path.
A point farther than `max_snap_m` from the graph, or a pair with no path (a road closed by
traffic), gets the caller's fallback answer and is flagged in `Matrix.fallback`.

Traffic is a speed factor per segment (`segment_factors`): a way's own factor wins over its
area's (H3 cell at resolution TRAFFIC_H3_RES of the segment's midpoint); 0 closes the segment.
"""

import hashlib
import os
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h3
import numpy as np
import osmium
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from dispatch.engine.geo import distinct_places, haversine_pairs_m, unit_sphere
from dispatch.engine.road_rules import PROFILES, way_access

TRAFFIC_H3_RES = 9  # area traffic is kept per H3 cell of this resolution (edge about 170 m)
CACHE_FORMAT = 1  # bump when build_network's rules or arrays change: old cache files are ignored


class RoadDataError(ValueError):
    """The OSM file cannot be read or has no routable way; the message names the file."""


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Nodes and directed-per-profile segments. speed_fwd/speed_bwd: (len(PROFILES), segments)."""

    osm_ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_m: np.ndarray
    seg_way: np.ndarray
    speed_fwd: np.ndarray
    speed_bwd: np.ndarray

    def __len__(self) -> int:
        return len(self.osm_ids)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> "RoadNetwork":
        with np.load(path) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def segment_cells(self) -> np.ndarray:
        """The H3 cell (TRAFFIC_H3_RES) of each segment's midpoint, as strings."""
        lat = (self.lat[self.seg_a] + self.lat[self.seg_b]) / 2
        lon = (self.lon[self.seg_a] + self.lon[self.seg_b]) / 2
        return np.array(
            [h3.latlng_to_cell(y, x, TRAFFIC_H3_RES) for y, x in zip(lat.tolist(), lon.tolist(), strict=True)]
        )


def build_network(path: str | Path) -> RoadNetwork:
    """The routable ways of an .osm/.osm.pbf file as a RoadNetwork (RoadDataError if unreadable or empty)."""
    path = Path(path)
    if not path.is_file():
        raise RoadDataError(f"{path}: no such file")
    index: dict[int, int] = {}
    osm_ids: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    seg_a: list[int] = []
    seg_b: list[int] = []
    seg_way: list[int] = []
    fwd: list[list[float]] = []
    bwd: list[list[float]] = []
    try:
        processor = (
            osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for way in processor:
            access = way_access(way.tags)
            if not access:
                continue
            forward = [access[p].speed_mps if p in access and access[p].forward else 0.0 for p in PROFILES]
            backward = [access[p].speed_mps if p in access and access[p].backward else 0.0 for p in PROFILES]
            previous = None
            for ref in way.nodes:
                # Ways cut by the extract's edge have nodes without a location: a gap breaks the run.
                if not ref.location.valid():
                    previous = None
                    continue
                node = index.get(ref.ref)
                if node is None:
                    node = index[ref.ref] = len(osm_ids)
                    osm_ids.append(ref.ref)
                    lats.append(ref.location.lat)
                    lons.append(ref.location.lon)
                if previous is not None and previous != node:
                    seg_a.append(previous)
                    seg_b.append(node)
                    seg_way.append(way.id)
                    fwd.append(forward)
                    bwd.append(backward)
                previous = node
    except (RuntimeError, OSError) as exc:
        raise RoadDataError(f"{path}: not a readable OSM file ({exc})") from exc
    if not seg_a:
        raise RoadDataError(f"{path}: no routable ways")
    lat, lon = np.array(lats), np.array(lons)
    a, b = np.array(seg_a, dtype=np.int64), np.array(seg_b, dtype=np.int64)
    return RoadNetwork(
        osm_ids=np.array(osm_ids, dtype=np.int64),
        lat=lat,
        lon=lon,
        seg_a=a,
        seg_b=b,
        seg_m=np.maximum(haversine_pairs_m(lat[a], lon[a], lat[b], lon[b]), 0.01),
        seg_way=np.array(seg_way, dtype=np.int64),
        speed_fwd=np.array(fwd, dtype=float).T.copy(),
        speed_bwd=np.array(bwd, dtype=float).T.copy(),
    )


def load_or_build(path: str | Path, cache_dir: str | Path | None) -> RoadNetwork:
    """build_network, cached as an .npz in cache_dir keyed by the file's SHA-256 and CACHE_FORMAT."""
    path = Path(path)
    if cache_dir is None:
        return build_network(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        raise RoadDataError(f"{path}: {exc.strerror or exc}") from exc
    cached = Path(cache_dir) / f"roads-{digest}-v{CACHE_FORMAT}.npz"
    if cached.is_file():
        return RoadNetwork.load(cached)
    network = build_network(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Its own partial file per process: two processes building at once each rename a whole file.
    partial = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    network.save(partial)
    partial.replace(cached)
    return network


@dataclass(frozen=True)
class TrafficSnapshot:
    """Speed factors valid at one moment: per OSM way id and per H3 cell (TRAFFIC_H3_RES); 0 closes.
    `key` identifies the snapshot for caching (same key, same factors)."""

    key: Hashable
    way_factors: Mapping[int, float] = field(default_factory=dict)
    cell_factors: Mapping[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.way_factors or self.cell_factors)


def segment_factors(way_ids: np.ndarray, cells: np.ndarray, traffic: TrafficSnapshot) -> np.ndarray:
    """Each segment's speed factor: its way's, else its cell's, else 1."""
    out = np.ones(len(way_ids))
    if traffic.cell_factors:
        out = np.array([traffic.cell_factors.get(c, 1.0) for c in cells.tolist()], dtype=float)
    if traffic.way_factors:
        ways = way_ids.tolist()
        for i, way in enumerate(ways):
            factor = traffic.way_factors.get(way)
            if factor is not None:
                out[i] = factor
    return out


class Matrix:
    """A travel-time answer: seconds and metres (origins x destinations); `fallback` marks the pairs
    a provider could not route and estimated instead. Unpacks as (seconds, metres)."""

    __slots__ = ("fallback", "metres", "seconds")

    def __init__(self, seconds: np.ndarray, metres: np.ndarray, fallback: np.ndarray | None = None):
        self.seconds, self.metres = seconds, metres
        self.fallback = np.zeros(seconds.shape, dtype=bool) if fallback is None else fallback

    def __iter__(self):
        yield self.seconds
        yield self.metres


@dataclass(frozen=True, eq=False)
class _Graph:
    """One profile's directed graph under one set of traffic factors."""

    time: csr_matrix
    keys: np.ndarray  # sorted a * n + b of its edges
    metres: np.ndarray  # aligned with keys


@dataclass(frozen=True, eq=False)
class Snapped:
    nodes: np.ndarray  # node index per point (-1: off the graph)
    metres: np.ndarray  # straight line from the point to its node


class RoadRouter:
    """Matrices on a RoadNetwork, per profile, under optional traffic."""

    ROW_CACHE = 1024  # source trees kept

    def __init__(self, network: RoadNetwork, *, max_snap_m: float = 300.0, limit_s: float = 4 * 3600.0):
        self.network = network
        self.max_snap_m = max_snap_m
        self.limit_s = limit_s
        self._cells: np.ndarray | None = None
        self._graphs: OrderedDict = OrderedDict()
        self._trees: dict[str, tuple[cKDTree, np.ndarray]] = {}
        self._rows: OrderedDict = OrderedDict()  # (profile, traffic key, source) -> (seconds, metres)

    def graph(self, profile: str, traffic: TrafficSnapshot | None = None) -> _Graph:
        key = (profile, traffic.key if traffic else None)
        cached = self._graphs.get(key)
        if cached is not None:
            self._graphs.move_to_end(key)
            return cached
        net, p = self.network, PROFILES.index(profile)
        factors = np.ones(len(net.seg_a))
        if traffic:
            if self._cells is None:
                self._cells = net.segment_cells()
            factors = segment_factors(net.seg_way, self._cells, traffic)
        fwd, bwd = net.speed_fwd[p] * factors, net.speed_bwd[p] * factors
        a = np.concatenate([net.seg_a[fwd > 0], net.seg_b[bwd > 0]])
        b = np.concatenate([net.seg_b[fwd > 0], net.seg_a[bwd > 0]])
        m = np.concatenate([net.seg_m[fwd > 0], net.seg_m[bwd > 0]])
        t = np.concatenate([net.seg_m[fwd > 0] / fwd[fwd > 0], net.seg_m[bwd > 0] / bwd[bwd > 0]])
        n = len(net)
        keys = a * n + b
        # Two ways over the same pair of nodes: keep the faster (csr would add them up).
        order = np.lexsort((t, keys))
        keys, a, b, m, t = keys[order], a[order], b[order], m[order], t[order]
        first = np.concatenate([[True], keys[1:] != keys[:-1]])
        keys, a, b, m, t = keys[first], a[first], b[first], m[first], t[first]
        graph = _Graph(csr_matrix((t, (a, b)), shape=(n, n)), keys, m)
        self._graphs[key] = graph
        if len(self._graphs) > 8:
            self._graphs.popitem(last=False)
        return graph

    def _tree(self, profile: str) -> tuple[cKDTree, np.ndarray]:
        """KD-tree over the nodes of the profile's largest strongly connected part (no traffic)."""
        if profile not in self._trees:
            graph = self.graph(profile)
            _, labels = connected_components(graph.time, directed=True, connection="strong")
            nodes = np.flatnonzero(labels == np.bincount(labels).argmax())
            self._trees[profile] = (
                cKDTree(unit_sphere(self.network.lat[nodes], self.network.lon[nodes])),
                nodes,
            )
        return self._trees[profile]

    def snap(self, points: Sequence[tuple[float, float]], profile: str) -> Snapped:
        """The nearest routable node of each (lat, lon); -1 beyond max_snap_m."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        tree, nodes = self._tree(profile)
        _, idx = tree.query(unit_sphere(pts[:, 0], pts[:, 1]))
        found = nodes[idx]
        metres = haversine_pairs_m(pts[:, 0], pts[:, 1], self.network.lat[found], self.network.lon[found])
        return Snapped(np.where(metres <= self.max_snap_m, found, -1), metres)

    def node_matrix(
        self, sources: np.ndarray, targets: np.ndarray, profile: str, traffic: TrafficSnapshot | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seconds and metres of the fastest path between graph nodes (inf where none within limit_s).
        Each source's whole tree is kept (ROW_CACHE rows): a round asks from the same places often."""
        uniq, inverse = np.unique(sources, return_inverse=True)
        seconds = np.empty((len(uniq), len(targets)))
        metres_out = np.empty((len(uniq), len(targets)))
        for k, row in enumerate(self._source_rows(uniq, profile, traffic)):
            seconds[k], metres_out[k] = row[0][targets], row[1][targets]
        return seconds[inverse.reshape(-1)], metres_out[inverse.reshape(-1)]

    def node_pairs(
        self, sources: np.ndarray, targets: np.ndarray, profile: str, traffic: TrafficSnapshot | None = None
    ) -> np.ndarray:
        """Seconds of the fastest path sources[i] -> targets[i] (inf where none within limit_s):
        node_matrix's answers for those pairs only."""
        uniq, inverse = np.unique(sources, return_inverse=True)
        inverse = inverse.reshape(-1)
        by_source = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_source], np.arange(len(uniq) + 1))
        seconds = np.empty(len(sources))
        for k, row in enumerate(self._source_rows(uniq, profile, traffic)):
            at = by_source[bounds[k] : bounds[k + 1]]
            seconds[at] = row[0][targets[at]]
        return seconds

    def _source_rows(self, sources: np.ndarray, profile: str, traffic: TrafficSnapshot | None) -> list:
        """(seconds, metres) to every node from each of the distinct `sources`: one Dijkstra for
        those not in the cache, all at once."""
        graph = self.graph(profile, traffic)
        tkey = traffic.key if traffic else None
        missing = [int(s) for s in sources.tolist() if (profile, tkey, int(s)) not in self._rows]
        if missing:
            dist, pred = dijkstra(
                graph.time, directed=True, indices=missing, return_predecessors=True, limit=self.limit_s
            )
            metres = _tree_metres(pred, graph, len(self.network))
            for k, source in enumerate(missing):
                self._rows[(profile, tkey, source)] = (dist[k], metres[k])
        rows = []
        for source in sources.tolist():
            key = (profile, tkey, int(source))
            self._rows.move_to_end(key)
            rows.append(self._rows[key])
        while len(self._rows) > self.ROW_CACHE:
            self._rows.popitem(last=False)
        return rows

    def matrix(
        self,
        origins: Sequence[tuple[float, float]],
        destinations: Sequence[tuple[float, float]],
        profile: str,
        traffic: TrafficSnapshot | None = None,
    ) -> Matrix:
        """Seconds and metres point to point; pairs off the graph or without a path are inf and flagged."""
        o, d = self.snap(origins, profile), self.snap(destinations, profile)
        return combine(o, d, lambda sources, targets: self.node_matrix(sources, targets, profile, traffic))

    def pairs(self, origins: np.ndarray, destinations: np.ndarray, profile: str, traffic=None) -> np.ndarray:
        """Seconds origins[i] -> destinations[i] ((lat, lon) arrays), inf off the graph or without a
        path: `matrix`'s answer for those pairs, each distinct place snapped once."""
        o, d = self.snap_distinct(origins, profile), self.snap_distinct(destinations, profile)
        seconds = np.full(len(o.nodes), np.inf)
        on = (o.nodes >= 0) & (d.nodes >= 0)
        if on.any():
            seconds[on] = self.node_pairs(o.nodes[on], d.nodes[on], profile, traffic)
        seconds = seconds + o.metres / SNAP_MPS + d.metres / SNAP_MPS
        return np.where(np.isfinite(seconds), seconds, np.inf)

    def snap_distinct(self, points: np.ndarray, profile: str) -> Snapped:
        """`snap`, asking the tree once per distinct place (a round names each place many times)."""
        places, inverse = distinct_places(points)
        snapped = self.snap(places, profile)
        return Snapped(snapped.nodes[inverse], snapped.metres[inverse])


SNAP_MPS = 2.0  # the leg between a point and its snapped node: straight, walking pace


def combine(o: Snapped, d: Snapped, node_matrix) -> Matrix:
    """Point-to-point answers: `node_matrix(sources, targets)` (seconds, metres) between the snapped
    nodes of the points on the graph, plus the snap legs; pairs off the graph or without a path
    (inf) are inf and flagged as fallback."""
    seconds = np.full((len(o.nodes), len(d.nodes)), np.inf)
    metres = np.full((len(o.nodes), len(d.nodes)), np.inf)
    rows, cols = np.flatnonzero(o.nodes >= 0), np.flatnonzero(d.nodes >= 0)
    if rows.size and cols.size:
        block = np.ix_(rows, cols)
        seconds[block], metres[block] = node_matrix(o.nodes[rows], d.nodes[cols])
    seconds = seconds + (o.metres / SNAP_MPS)[:, None] + (d.metres / SNAP_MPS)[None, :]
    metres = metres + o.metres[:, None] + d.metres[None, :]
    fallback = ~np.isfinite(seconds)
    return Matrix(np.where(fallback, np.inf, seconds), np.where(fallback, np.inf, metres), fallback)


def _tree_metres(pred: np.ndarray, graph: _Graph, n: int) -> np.ndarray:
    """Metres from each search's root along its shortest-path tree (scipy's predecessors)."""
    cols = np.broadcast_to(np.arange(n), pred.shape)
    valid = pred >= 0
    pos = np.clip(np.searchsorted(graph.keys, np.where(valid, pred * n + cols, 0)), 0, len(graph.keys) - 1)
    return tree_sums(pred, np.where(valid, graph.metres[pos], 0.0))


def tree_sums(pred: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Sum of `step` from each node up to its tree's root, per row: pred[r, v] is v's parent in
    row r's tree (< 0 for a root or an unreached node), step[r, v] the edge's value into v.
    Pointer jumping, vectorised: log2(depth) passes over the arrays."""
    rows = np.arange(pred.shape[0])[:, None]
    cols = np.broadcast_to(np.arange(pred.shape[1]), pred.shape)
    step = np.where(pred >= 0, step, 0.0)
    anc = np.where(pred >= 0, pred, cols)
    while True:
        parent = anc[rows, anc]
        step = step + np.where(anc != cols, step[rows, anc], 0.0)
        if np.array_equal(parent, anc):
            return step
        anc = parent
