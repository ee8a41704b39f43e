"""A full dispatch round on the database: 1,000 open orders x 1,000 online drivers (target
<= 500 ms on 2 cores, PostGIS), seeded once per module through the services.

With `--benchmark-enable` (`make bench`) the pool is 1,000 x 1,000 and `-s` prints the median
round and its phases (load: reading the pool; solve: the engine; write: the offers, their
history and events); in the normal suite it is a small pool, run once as a smoke test.
Each timed round is rolled back, so every run sees the same pool.
"""

import os
import random
import statistics
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from dispatch.models import Offer
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.orders import create_order
from dispatch.services.rounds import run_round
from fleet import services as fleet_services
from identity.models import Organisation
from tests.conftest import make_active_driver, order_payload
from tests.dispatch.factories import order_input

SYSTEM = Actor.system("bench-round")


def _spot(rng):
    """A point in a 3 x 3 km square of central Helsinki."""
    return 60.155 + rng.random() * 0.027, 24.90 + rng.random() * 0.054


def seed_city(n: int) -> Organisation:
    """An organisation with n online drivers (each with a vehicle and a ping) and n open
    orders, all made through the services."""
    rng = random.Random(11)
    org = Organisation.objects.create(slug="bench-city", name="Bench City", currency="EUR")
    started = time.perf_counter()
    for i in range(n):
        driver = make_active_driver(
            org,
            name=f"Courier {i}",
            phone=f"+35850{i:07d}",
            vehicle=rng.choice(["car", "van", "cargo_bike"]),
            plate=f"BR-{i}",
        )
        fleet_services.set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
        lat, lon = _spot(rng)
        fleet_services.record_ping(
            driver=driver, ping=fleet_services.PingInput(lat=lat, lon=lon, recorded_at=timezone.now())
        )
    start = timezone.now() + timedelta(minutes=5)
    for i in range(n):
        (plat, plon), (dlat, dlon) = _spot(rng), _spot(rng)
        window = {"start": start.isoformat(), "end": (start + timedelta(minutes=60)).isoformat()}
        drop = {"start": start.isoformat(), "end": (start + timedelta(minutes=120)).isoformat()}
        payload = order_payload(
            ref=f"BR-{i}",
            pickup={"address": "Pickup", "lat": plat, "lon": plon, "window": window},
            dropoff={"address": "Drop-off", "lat": dlat, "lon": dlon, "window": drop},
            weight_kg=rng.choice(["1", "2.5", "8"]),
        )
        create_order(organisation=org, actor=SYSTEM, data=order_input(payload))
    print(f"\nseeded {n} drivers and {n} orders in {time.perf_counter() - started:.1f} s")
    return org


@pytest.fixture(scope="module")
def city(request, django_db_setup, django_db_blocker):
    """The seeded organisation and its size, once per module; rolled back after it."""
    n = 1000 if request.config.getoption("benchmark_enable") else 30
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed_city(n), n
        transaction.set_rollback(True)


def timed_rounds(org, runs: int):
    """Run `runs` rounds, each rolled back; the totals, the phases and the last report."""
    totals, phases, report = [], [], None
    for _ in range(runs):
        with transaction.atomic():
            started = time.perf_counter()
            report = run_round(organisation=org)
            totals.append(time.perf_counter() - started)
            phases.append({**report.seconds, **{f"{k} cpu": v for k, v in report.cpu_seconds.items()}})
            transaction.set_rollback(True)
    return totals, phases, report


def counted_round(org) -> int:
    """The statements one round sends (rolled back): they should not grow with the pool."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        run_round(organisation=org)
        transaction.set_rollback(True)
    return len(queries.captured_queries)


def print_figures(label, n, totals, phases, report, queries):
    median = {phase: statistics.median(p[phase] for p in phases) * 1000 for phase in phases[0]}
    split = ", ".join(f"{phase} {ms:.0f} ms" for phase, ms in median.items())
    print(
        f"\nround {label} {n} x {n} on {connection.vendor}: median {statistics.median(totals) * 1000:.0f} ms "
        f"(min {min(totals) * 1000:.0f} ms; {split}), {len(report.offers)} offers, "
        f"{len(report.left_open)} left open, {queries} queries; travel times: {report.travel_note or 'all on the roads'}"
    )


@pytest.mark.django_db
def test_bench_round_optimal(city, django_db_blocker):
    org, n = city
    with django_db_blocker.unblock():
        totals, phases, report = timed_rounds(
            org, runs=int(os.environ.get("BENCH_ROUND_RUNS", 5 if n >= 1000 else 1))
        )
        print_figures("optimal", n, totals, phases, report, counted_round(org))
        assert len(report.offers) > 0.8 * n
        assert not Offer.objects.filter(organisation=org).exists()  # rolled back


@pytest.mark.django_db
def test_bench_round_broadcast(city, django_db_blocker):
    org, n = city
    with django_db_blocker.unblock(), transaction.atomic():
        update_dispatch_settings(organisation=org, rules={"mode": "broadcast"}, actor=SYSTEM)
        totals, phases, report = timed_rounds(
            org, runs=int(os.environ.get("BENCH_ROUND_RUNS", 3 if n >= 1000 else 1))
        )
        print_figures("broadcast", n, totals, phases, report, counted_round(org))
        assert len(report.offers) > n
        transaction.set_rollback(True)
