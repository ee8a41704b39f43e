#!/usr/bin/env bash
# Make sure PostgreSQL (with PostGIS) and Redis answer on 127.0.0.1; start them if they are
# down. A service that cannot start fails the run loudly: tests are never skipped for it.
set -euo pipefail

fail() { echo "CI SERVICE ERROR: $*" >&2; exit 1; }

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_ready; then
  echo "PostgreSQL is down; starting it"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || fail "no PostgreSQL cluster configured under /etc/postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || fail "pg_ctlcluster could not start PostgreSQL $version"
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  pg_ready || fail "PostgreSQL did not answer on 127.0.0.1:5432 within 30 s"
fi
# The tests connect as postgres:postgres over TCP. Debian's default pg_hba asks for a
# password there (this kind of machine trusts 127.0.0.1): give postgres one if we can.
export PGPASSWORD=postgres
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1" >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null \
    || fail "could not set a password for the postgres role through the local socket"
fi
psql -h 127.0.0.1 -U postgres -tAc "select 1" >/dev/null || fail "cannot connect to PostgreSQL as postgres on 127.0.0.1"
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_available_extensions where name='postgis'" | grep -q 1 \
  || fail "the postgis extension is not available (install postgresql-15-postgis-3)"
# The pgRouting tests (tests/dispatch/test_pgrouting.py) create the extension in the test database.
psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_available_extensions where name='pgrouting'" | grep -q 1 \
  || fail "the pgrouting extension is not available (install postgresql-15-pgrouting)"

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
if ! redis_ready; then
  echo "Redis is down; starting it"
  command -v redis-server >/dev/null || fail "redis-server is not installed"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || fail "redis-server did not start"
  for _ in $(seq 1 20); do redis_ready && break; sleep 0.5; done
  redis_ready || fail "Redis did not answer on 127.0.0.1:6379"
fi
echo "PostgreSQL and Redis are up"
