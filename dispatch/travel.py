"""The travel-time provider the product uses, chosen by TRAVEL_TIME_PROVIDER.

- `haversine`: straight line x 1.3 over the vehicle type's speed (engine.travel.VEHICLE_SPEED_MPS).
- `roads` (default): the directed road graph of ROADS_OSM_FILE (engine.roads), built once per
  process and cached as a file under ROADS_CACHE_DIR; traffic applied.
- `pgrouting`: the network `manage.py load_roads` imported into PostGIS (schema `roads`),
  matrices from pgRouting's shortest-path trees (pgr_drivingDistance, one per origin node),
  cached per (network load, traffic snapshot, node, node).

Both road providers snap with the same rule, read the same network rules (engine.road_rules) and
fall back to the haversine answer, flagged, for points off the network or pairs with no path.
SQL names built here are the fixed SCHEMA and PROFILES, never input (hence the S608 waivers).
"""

from collections import OrderedDict
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError, connection, transaction

from dispatch.engine.road_rules import PROFILES
from dispatch.engine.roads import (
    Matrix,
    RoadRouter,
    Snapped,
    TrafficSnapshot,
    combine,
    load_or_build,
    tree_sums,
)
from dispatch.engine.travel import DETOUR_FACTOR, HaversineTravelTimes, RoadProvider, RoadTravelTimes
from dispatch.services.traffic import traffic_snapshot

PROVIDERS = ("haversine", "roads", "pgrouting")
SCHEMA = "roads"


@lru_cache(maxsize=2)
def road_router(path: str | None = None) -> RoadRouter:
    """The embedded graph of `path` (default ROADS_OSM_FILE), once per process."""
    network = load_or_build(path or settings.ROADS_OSM_FILE, settings.ROADS_CACHE_DIR)
    return RoadRouter(network, max_snap_m=settings.ROADS_MAX_SNAP_M)


def travel_times(*, organisation_id=None, provider: str | None = None, fallback=None):
    """A TravelTimes for an organisation's rounds (its traffic applied), by the settings' provider.
    `fallback` answers what the roads cannot (default: straight line x 1.3 per vehicle type)."""
    name = provider or settings.TRAVEL_TIME_PROVIDER
    traffic = None
    if organisation_id is not None:
        per_bucket: dict[int, TrafficSnapshot] = {}  # a provider serves one round: ask once per bucket

        def traffic(depart_at: float) -> TrafficSnapshot:
            bucket = int(depart_at // settings.TRAFFIC_BUCKET_SECONDS)
            if bucket not in per_bucket:
                per_bucket[bucket] = traffic_snapshot(organisation_id, depart_at)
            return per_bucket[bucket]

    haversine = fallback or HaversineTravelTimes(detour_factor=DETOUR_FACTOR, traffic=traffic)
    if name == "haversine":
        return haversine
    if name == "roads":
        return RoadTravelTimes(road_router(), fallback=haversine, traffic=traffic)
    if name == "pgrouting":
        return PgRoutingTravelTimes(fallback=haversine, traffic=traffic)
    raise ImproperlyConfigured(f"TRAVEL_TIME_PROVIDER must be one of {', '.join(PROVIDERS)}, not {name!r}")


def edges_sql(profile: str, traffic: bool) -> str:
    """pgRouting's edges query for a profile; with traffic, the factors of the session's temporary
    tables (a way's factor wins over its cell's; 0 closes), as engine.roads.segment_factors."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    if not traffic:
        return (
            f"SELECT id, source, target, cost_{profile} AS cost, reverse_cost_{profile} AS reverse_cost "  # noqa: S608
            f"FROM {SCHEMA}.edges"
        )
    factor = "COALESCE(w.factor, c.factor, 1.0)"
    return (
        f"SELECT e.id, e.source, e.target, "  # noqa: S608
        f"CASE WHEN e.cost_{profile} > 0 AND {factor} > 0 THEN e.cost_{profile} / {factor} ELSE -1 END AS cost, "
        f"CASE WHEN e.reverse_cost_{profile} > 0 AND {factor} > 0 "
        f"THEN e.reverse_cost_{profile} / {factor} ELSE -1 END AS reverse_cost "
        f"FROM {SCHEMA}.edges e LEFT JOIN fr_way_factor w ON w.way = e.osm_way_id "
        f"LEFT JOIN fr_cell_factor c ON c.cell = e.h3_cell"
    )


class PgRoutingTravelTimes(RoadProvider):
    """Matrices from pgRouting: seconds and the metres of those fastest paths."""

    # (profile, (load id, traffic key), source, target) -> (seconds, metres); per process.
    _cache: OrderedDict = OrderedDict()
    _edge_arrays: dict = {}  # load id -> (source, target, length_m) by edge id; per process
    CACHE_SIZE = 200_000

    def __init__(self, *, fallback=None, traffic=None, max_snap_m: float | None = None):
        if connection.vendor != "postgresql":
            raise ImproperlyConfigured("The pgrouting travel-time provider needs PostgreSQL with pgRouting.")
        super().__init__(fallback=fallback, traffic=traffic)
        self.max_snap_m = settings.ROADS_MAX_SNAP_M if max_snap_m is None else max_snap_m
        self._load_id: str | None = None

    def load_id(self) -> str:
        """The loaded network's id (load_roads): part of every cache key."""
        if self._load_id is None:
            with connection.cursor() as cur:
                try:
                    with transaction.atomic():
                        cur.execute(f"SELECT load_id FROM {SCHEMA}.meta")  # noqa: S608
                        row = cur.fetchone()
                except ProgrammingError:
                    row = None
            if row is None:
                raise ImproperlyConfigured(
                    "No road network in PostGIS: run manage.py load_roads FILE.osm.pbf"
                )
            self._load_id = str(row[0])
        return self._load_id

    def snap(self, points, profile: str) -> Snapped:
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        with connection.cursor() as cur:
            cur.execute(
                f"""
                SELECT v.id, ST_Distance(v.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography, false)
                FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(lat, lon, i)
                CROSS JOIN LATERAL (
                    SELECT id, geom FROM {SCHEMA}.vertices WHERE in_{profile}
                    ORDER BY geom <-> ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography LIMIT 1
                ) v
                ORDER BY p.i
                """,  # noqa: S608
                [pts[:, 0].tolist(), pts[:, 1].tolist()],
            )
            rows = cur.fetchall()
        if len(rows) != len(pts):
            raise ImproperlyConfigured(
                "No road network for this profile: run manage.py load_roads FILE.osm.pbf"
            )
        nodes = np.array([r[0] for r in rows], dtype=np.int64)
        metres = np.array([r[1] for r in rows], dtype=float)
        return Snapped(np.where(metres <= self.max_snap_m, nodes, -1), metres)

    def node_matrix(self, sources, targets, profile: str, traffic: TrafficSnapshot | None):
        key = (self.load_id(), traffic.key if traffic else None)
        seconds = np.full((len(sources), len(targets)), np.inf)
        metres = np.full((len(sources), len(targets)), np.inf)
        missing_s, missing_t = set(), set()
        for i, s in enumerate(sources.tolist()):
            for j, t in enumerate(targets.tolist()):
                hit = self._cache.get((profile, key, s, t))
                if hit is None:
                    missing_s.add(s)
                    missing_t.add(t)
                else:
                    seconds[i, j], metres[i, j] = hit
        if missing_s:
            found = self._query(sorted(missing_s), sorted(missing_t), profile, traffic)
            for s in missing_s:
                for t in missing_t:
                    self._cache[(profile, key, s, t)] = (
                        (0.0, 0.0) if s == t else found.get((s, t), (np.inf, np.inf))
                    )
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
            for i, s in enumerate(sources.tolist()):
                for j, t in enumerate(targets.tolist()):
                    seconds[i, j], metres[i, j] = self._cache[(profile, key, s, t)]
        return seconds, metres

    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """source, target and length_m by edge id (index), once per loaded network."""
        key = self.load_id()
        if key not in self._edge_arrays:
            with connection.cursor() as cur:
                cur.execute(f"SELECT id, source, target, length_m FROM {SCHEMA}.edges")  # noqa: S608
                rows = np.array(cur.fetchall(), dtype=float).reshape(-1, 4)
            size = int(rows[:, 0].max()) + 1 if len(rows) else 1
            source, target, length = np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(size)
            ids = rows[:, 0].astype(np.int64)
            source[ids], target[ids], length[ids] = rows[:, 1], rows[:, 2], rows[:, 3]
            self._edge_arrays.clear()
            self._edge_arrays[key] = (source, target, length)
        return self._edge_arrays[key]

    def _query(self, sources, targets, profile, traffic) -> dict:
        """(source, target) -> (seconds, metres) of the fastest paths: pgr_drivingDistance gives
        each source's shortest-path tree (node, the edge into it, seconds); metres are summed up
        the tree (engine.roads.tree_sums), as the embedded router does."""
        source_of, target_of, length = self._edges()
        with connection.cursor() as cur:
            if traffic:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS fr_way_factor (way bigint PRIMARY KEY, factor float8);"
                    "CREATE TEMP TABLE IF NOT EXISTS fr_cell_factor (cell text PRIMARY KEY, factor float8);"
                    "TRUNCATE fr_way_factor, fr_cell_factor"
                )
                cur.execute(
                    "INSERT INTO fr_way_factor SELECT * FROM unnest(%s::bigint[], %s::float8[])",
                    [list(traffic.way_factors), list(traffic.way_factors.values())],
                )
                cur.execute(
                    "INSERT INTO fr_cell_factor SELECT * FROM unnest(%s::text[], %s::float8[])",
                    [list(traffic.cell_factors), list(traffic.cell_factors.values())],
                )
            cur.execute(
                "SELECT from_v, node, edge, agg_cost FROM pgr_drivingDistance(%s, %s::bigint[], 1e12::float8, true)",
                [edges_sql(profile, bool(traffic)), sources],
            )
            rows = np.array(cur.fetchall(), dtype=float).reshape(-1, 4)
        root_row = {s: r for r, s in enumerate(sources)}
        n = (
            len(source_of) + 1
            if len(rows) == 0
            else max(int(rows[:, 1].max()), max(sources), max(targets)) + 1
        )
        r = np.array([root_row[int(v)] for v in rows[:, 0]], dtype=np.int64)
        node, edge = rows[:, 1].astype(np.int64), rows[:, 2].astype(np.int64)
        seconds = np.full((len(sources), n), np.inf)
        pred = np.full((len(sources), n), -1, dtype=np.int64)
        step = np.zeros((len(sources), n))
        seconds[r, node] = rows[:, 3]
        tree = edge > 0
        pred[r[tree], node[tree]] = np.where(
            source_of[edge[tree]] == node[tree], target_of[edge[tree]], source_of[edge[tree]]
        )
        step[r[tree], node[tree]] = length[edge[tree]]
        metres = tree_sums(pred, step)
        return {
            (s, t): (float(seconds[i, t]), float(metres[i, t]))
            for i, s in enumerate(sources)
            for t in targets
            if np.isfinite(seconds[i, t])
        }

    def route(self, origins, destinations, profile, traffic) -> Matrix:
        self.load_id()  # a clear error when no network is loaded
        o, d = self.snap(origins, profile), self.snap(destinations, profile)
        return combine(o, d, lambda sources, targets: self.node_matrix(sources, targets, profile, traffic))
