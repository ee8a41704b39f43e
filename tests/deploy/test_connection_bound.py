"""Under the ASGI server, 100 concurrent requests use at most the pool's connections
(PostgreSQL; under SpatiaLite there is no server to run out of connections)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from django.db import connection

from identity.services import create_api_key
from tests.deploy.server import production_env, running_server

POOL_SIZE = 4

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(settings.DATABASE_IS_SPATIALITE, reason="connection pooling is about PostgreSQL"),
]


SERVER_APP_NAME = "fleetroot-pool-test"


def server_connections() -> int:
    """The server's connections (libpq names them after PGAPPNAME), not this test's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [SERVER_APP_NAME])
        return cursor.fetchone()[0]


def test_a_hundred_concurrent_requests_stay_within_the_pool(org, tmp_path):
    db = settings.DATABASES["default"]
    url = f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    key = create_api_key(organisation=org, name="load")
    env = production_env(
        tmp_path,
        DATABASE_URL=url,
        DB_POOL_MAX_SIZE=str(POOL_SIZE),
        DB_POOL_MIN_SIZE="1",
        PGAPPNAME=SERVER_APP_NAME,
    )
    peak = 0
    done = threading.Event()

    def watch():
        nonlocal peak
        try:
            while not done.is_set():
                peak = max(peak, server_connections())
                time.sleep(0.02)
        finally:
            connection.close()

    with running_server(env) as base:
        watcher = threading.Thread(target=watch)
        watcher.start()

        def one(i: int) -> int:
            bogus = i % 2 == 0  # half with a key that does not exist: no login needed to load the DB
            token = "frk_000000000000_nope" if bogus else key.plaintext
            with httpx.Client(base_url=base, timeout=30) as client:
                if bogus:
                    return client.post(
                        "/api/v1/orders", json={}, headers={"Authorization": f"Bearer {token}"}
                    ).status_code
                return client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code

        with ThreadPoolExecutor(max_workers=100) as burst:
            statuses = list(burst.map(one, range(100)))
        done.set()
        watcher.join()
        after = server_connections()
    assert sorted(set(statuses)) == [200, 401], statuses
    print(f"\n100 concurrent requests: peak {peak} connections, {after} after (pool {POOL_SIZE})")
    assert peak <= POOL_SIZE
    assert after <= POOL_SIZE
