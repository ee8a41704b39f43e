"""Benchmarks of the foundation's hot paths. `make bench` prints the figures; in the normal
suite (--benchmark-disable) each body runs once, as a smoke test, with no timing asserted."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from core.actors import Actor
from dispatch.live import live_snapshot
from dispatch.services.orders import create_order, transition_order
from fleet.services import PingInput, record_ping
from tests.conftest import make_active_driver, order_payload, post
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("bench")
counter = itertools.count()


@pytest.fixture
def drivers(org):
    return [
        make_active_driver(org, name=f"D{i}", phone=f"+35840200{i:04d}", plate=f"BEN-{i}") for i in range(50)
    ]


def test_bench_api_create_order(benchmark, api, org):
    """POST /api/v1/orders end to end: auth, throttle, idempotency, validation, insert, event."""

    def create():
        response = post(api, "/api/v1/orders", order_payload(ref=f"B-{next(counter)}"))
        assert response.status_code == 201

    benchmark(create)


def test_bench_api_list_orders(benchmark, api, org):
    for i in range(200):
        create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref=f"L-{i}")))

    def list_page():
        response = api.get("/api/v1/orders", {"page_size": 100})
        assert response.status_code == 200 and len(response.json()["results"]) == 100

    benchmark(list_page)


def test_bench_transition(benchmark, org, drivers):
    """One assign + release round trip: lock, state machine, history row, event."""
    order = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref="T-1")))

    def round_trip():
        transition_order(
            order_id=order.id, organisation=org, action="assign", actor=SYSTEM, driver=drivers[0]
        )
        transition_order(order_id=order.id, organisation=org, action="release", actor=SYSTEM, reason="bench")

    benchmark(round_trip)


def test_bench_record_ping(benchmark, org, drivers):
    start = datetime.now(UTC) - timedelta(minutes=30)  # pings over an hour old are refused

    def ping():
        n = next(counter)
        record_ping(
            driver=drivers[n % 50],
            ping=PingInput(
                lat=60.17, lon=24.94, recorded_at=start + timedelta(milliseconds=n), accuracy_m=5.0
            ),
        )

    benchmark(ping)


def test_bench_live_snapshot(benchmark, org, drivers):
    for i, driver in enumerate(drivers):
        record_ping(
            driver=driver, ping=PingInput(lat=60.165 + i * 1e-4, lon=24.94, recorded_at=datetime.now(UTC))
        )
    for i in range(200):
        create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(ref=f"S-{i}")))
    snapshot = benchmark(live_snapshot, org.id)
    assert len(snapshot["drivers"]) == 50 and len(snapshot["orders"]) == 200
