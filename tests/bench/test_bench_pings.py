"""Benchmarks of pings and their geofences. `make bench` prints the figures; in the normal
suite (--benchmark-disable) each body runs once, as a smoke test, with no timing asserted."""

import itertools
import random
from datetime import UTC, datetime, timedelta

from core.actors import Actor
from dispatch.engine.geofence import Fence, Fix, Rule, State, step
from dispatch.services.offers import accept_offer
from dispatch.services.pings import receive_pings
from fleet.services import PingInput
from tests.api.conftest import offer_to
from tests.dispatch.test_offers import new_order, online_driver

counter = itertools.count()


def test_bench_geofence_step(benchmark):
    """10,000 pings through one stop's state machine (jittered around the door)."""
    rng = random.Random(3)
    fence, rule = Fence(lat=60.17, lon=24.94, radius_m=50), Rule()
    start = datetime(2026, 12, 2, 10, tzinfo=UTC)
    fixes = [
        Fix(60.17 + rng.gauss(0, 4e-4), 24.94 + rng.gauss(0, 8e-4), start + timedelta(seconds=i), 8.0)
        for i in range(10_000)
    ]

    def run():
        state = State()
        for fix in fixes:
            state = step(fence, state, fix, rule).state
        return state

    benchmark(run)


def test_bench_receive_100_pings_with_a_geofence(benchmark, org):
    """POST /pings' service: a batch of 100 pings stored, the driver's stop watched."""
    driver = online_driver(org, 1)
    order = new_order(org, "BENCH-PINGS")
    accept_offer(offer_id=offer_to(driver, order).id, driver=driver, actor=Actor.system("bench"))
    start = datetime.now(UTC) - timedelta(minutes=50)

    def batch():
        base = next(counter) * 100
        pings = [
            PingInput(
                lat=60.16 + i * 1e-5,
                lon=24.94,
                recorded_at=start + timedelta(milliseconds=base + i),
                accuracy_m=5,
            )
            for i in range(100)
        ]
        assert receive_pings(driver_id=driver.id, organisation=org, pings=pings).stored == 100

    benchmark(batch)
