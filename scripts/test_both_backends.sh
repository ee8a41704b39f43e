#!/usr/bin/env bash
# CI: run the suite on PostGIS + Redis and on SpatiaLite at the same time (two processes on two
# cores: about the time of the longer run instead of the sum), then print both outputs in turn.
# Each run has its own database, Redis db (PostGIS only), media and private roots
# (config/settings_test.py), so they share nothing they write. Fails if either run fails.
set -uo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

DATABASE_URL=postgis://postgres:postgres@127.0.0.1:5432/fleetroot REDIS_URL=redis://127.0.0.1:6379/0 \
  $py -m pytest -q -p no:cacheprovider --durations=5 "$@" >"$logs/postgis.log" 2>&1 &
postgis=$!
env -u DATABASE_URL -u REDIS_URL \
  $py -m pytest -q -p no:cacheprovider --durations=5 "$@" >"$logs/spatialite.log" 2>&1 &
spatialite=$!

wait "$postgis"; postgis_rc=$?
wait "$spatialite"; spatialite_rc=$?

echo "== tests on PostGIS + Redis (exit $postgis_rc) =="
cat "$logs/postgis.log"
echo "== tests on SpatiaLite, embedded (exit $spatialite_rc) =="
cat "$logs/spatialite.log"
[ "$postgis_rc" -eq 0 ] && [ "$spatialite_rc" -eq 0 ]
