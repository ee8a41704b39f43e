"""Import a road network into PostGIS for pgRouting (`manage.py load_roads FILE.osm.pbf`).

The file is read by the same code and rules as the embedded graph (engine.roads.build_network,
engine.road_rules), so both routers see one network. Schema `roads`: `vertices` (id, OSM id,
geography point, `in_<profile>`: in that profile's largest strongly connected component, from
pgr_strongComponents: the only vertices points snap to) and `edges` (one per segment: source,
target, OSM way, length, the H3 cell traffic areas use, and per profile `cost_<p>` /
`reverse_cost_<p>` in seconds, -1 where the profile may not go; never -0) and `meta` (the
load's id, which keys the providers' caches, and the file). One transaction:
a bad file or a failure leaves the previous network in place.
"""

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import connection, transaction

from dispatch.engine.road_rules import PROFILES
from dispatch.engine.roads import build_network
from dispatch.travel import SCHEMA, edges_sql


@dataclass(frozen=True)
class LoadReport:
    vertices: int
    edges: int
    snap_vertices: dict[str, int]  # profile -> vertices of its largest strongly connected part


def load_roads(*, path: str | Path) -> LoadReport:
    """Replace the `roads` schema with the network of an .osm/.osm.pbf file (RoadDataError names
    a bad file; nothing is written then)."""
    if connection.vendor != "postgresql":
        raise ValueError(
            "load_roads needs PostgreSQL with PostGIS and pgRouting (DATABASE_URL=postgis://...)"
        )
    network = build_network(path)
    cells = network.segment_cells().tolist()
    costs = {}
    for i, profile in enumerate(PROFILES):
        fwd, bwd = network.speed_fwd[i], network.speed_bwd[i]
        costs[profile] = (
            np.where(fwd > 0, network.seg_m / np.where(fwd > 0, fwd, 1), -1.0),
            np.where(bwd > 0, network.seg_m / np.where(bwd > 0, bwd, 1), -1.0),
        )
    cost_columns = ", ".join(f"cost_{p} float8 NOT NULL, reverse_cost_{p} float8 NOT NULL" for p in PROFILES)
    flags = ", ".join(f"in_{p} boolean NOT NULL DEFAULT false" for p in PROFILES)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(
            f"CREATE TABLE {SCHEMA}.vertices (id bigint PRIMARY KEY, osm_id bigint NOT NULL, "
            f"geom geography(Point, 4326) NOT NULL, {flags})"
        )
        cur.execute(
            f"CREATE TABLE {SCHEMA}.edges (id bigint PRIMARY KEY, source bigint NOT NULL, target bigint NOT NULL, "
            f"osm_way_id bigint NOT NULL, length_m float8 NOT NULL, h3_cell text NOT NULL, {cost_columns})"
        )
        raw = cur.cursor  # psycopg's own cursor, for COPY
        with raw.copy(f"COPY {SCHEMA}.vertices (id, osm_id, geom) FROM STDIN") as copy:
            for k, (osm_id, lat, lon) in enumerate(
                zip(network.osm_ids.tolist(), network.lat.tolist(), network.lon.tolist(), strict=True)
            ):
                copy.write_row((k + 1, osm_id, f"SRID=4326;POINT({lon!r} {lat!r})"))
        names = ", ".join(f"cost_{p}, reverse_cost_{p}" for p in PROFILES)
        columns = [costs[p][k].tolist() for p in PROFILES for k in (0, 1)]
        with raw.copy(
            f"COPY {SCHEMA}.edges (id, source, target, osm_way_id, length_m, h3_cell, {names}) FROM STDIN"
        ) as copy:
            base = zip(
                network.seg_a.tolist(),
                network.seg_b.tolist(),
                network.seg_way.tolist(),
                network.seg_m.tolist(),
                cells,
                strict=True,
            )
            for k, (a, b, way, metres, cell) in enumerate(base):
                copy.write_row((k + 1, a + 1, b + 1, way, metres, cell, *(c[k] for c in columns)))
        # Each load has its own id: cached matrices of an earlier network are never reused.
        cur.execute(f"CREATE TABLE {SCHEMA}.meta (load_id uuid NOT NULL, source text NOT NULL)")
        cur.execute(f"INSERT INTO {SCHEMA}.meta VALUES (%s, %s)", [str(uuid.uuid4()), str(path)])  # noqa: S608
        cur.execute(f"CREATE INDEX ON {SCHEMA}.edges (source)")
        cur.execute(f"CREATE INDEX ON {SCHEMA}.edges (target)")
        snap = {}
        for profile in PROFILES:
            cur.execute(
                f"""
                WITH c AS (SELECT component, node FROM pgr_strongComponents(%s)),
                biggest AS (SELECT component FROM c GROUP BY component ORDER BY count(*) DESC, component LIMIT 1)
                UPDATE {SCHEMA}.vertices v SET in_{profile} = true
                FROM c JOIN biggest USING (component) WHERE v.id = c.node
                """,  # noqa: S608
                [edges_sql(profile, traffic=False)],
            )
            snap[profile] = cur.rowcount
            # KNN on geography orders by metres (on SRID 4326 geometry it would order by degrees).
            cur.execute(f"CREATE INDEX ON {SCHEMA}.vertices USING gist (geom) WHERE in_{profile}")
        cur.execute(f"ANALYZE {SCHEMA}.vertices")
        cur.execute(f"ANALYZE {SCHEMA}.edges")
    return LoadReport(len(network), len(network.seg_a), snap)
