"""Updating scorecards for 10,000 delivery events (on whatever database is configured).

Figures, not timed assertions: run with `-s` (`--benchmark-enable` as the other benches) to
see events per second and the total. Each event goes through the receiver the
`order.delivered` / `order.failed` events reach (scorecards.receivers), in its own
transaction as in production: the outcome row (a late one checked for its excuses at
straight-line travel times), the driver's daily bucket, the running 7/30-day sums (days that
left a window taken out as time moves on), the last N orders and the score on the driver.
50 drivers, 30 simulated days, 25 % late, 5 % failed. The sums are then checked against a
recomputation from the rows.
"""

import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from core.models import DomainEvent
from dispatch.models import Order
from scorecards.receivers import score_the_facts
from scorecards.selectors import WINDOWS, utc_day, window_start, window_sums_from_facts
from scorecards.services import refresh_scorecard
from tests.conftest import make_active_driver
from tests.scorecards.conftest import new_order

BENCH_EVENTS = int(os.environ.get("BENCH_SCORECARD_EVENTS", "10000"))
# The normal suite runs the body once on a small day's worth (untimed); --benchmark-enable runs
# the 10,000.
SUITE_EVENTS = 300
DRIVERS = 50
START = datetime(2030, 2, 1, 8, tzinfo=UTC)


@pytest.fixture(autouse=True)
def straight_line_travel(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"


def _orders(org, drivers, rng, events: int) -> list[tuple[Order, datetime, str]]:
    """`events` orders spread over 30 days, each with its driver, its delivery time and outcome."""
    template = new_order(org, ref="BENCH-TEMPLATE")
    rows, plan = [], []
    for n in range(events):
        finished = START + timedelta(seconds=n * 30 * 86400 / events)
        late = rng.random() < 0.25
        promised = finished + (timedelta(minutes=-rng.randint(1, 30)) if late else timedelta(minutes=10))
        order = Order(
            **{
                field.attname: getattr(template, field.attname)
                for field in Order._meta.concrete_fields
                if field.attname not in ("id", "external_ref", "driver_id", "status")
            },
            id=uuid.uuid4(),
            external_ref=f"BENCH-{n}",
            driver=drivers[n % DRIVERS],
            status="DELIVERED",
        )
        order.pickup_window_start = promised - timedelta(hours=2)
        order.pickup_window_end = promised - timedelta(hours=1)
        order.dropoff_window_start = promised - timedelta(hours=1)
        order.dropoff_window_end = promised
        rows.append(order)
        plan.append((order, finished, "order.failed" if rng.random() < 0.05 else "order.delivered"))
    Order.objects.bulk_create(rows, batch_size=500)
    return plan


def test_bench_scorecards_for_10000_delivery_events(org, request):
    events = BENCH_EVENTS if request.config.getoption("benchmark_enable") else SUITE_EVENTS
    rng = random.Random(19)
    drivers = [
        make_active_driver(org, name=f"Bench {n}", phone=f"+35840200{n:04d}", plate=f"BN-{n}")
        for n in range(DRIVERS)
    ]
    plan = _orders(org, drivers, rng, events)
    started = time.perf_counter()
    for order, finished, event_type in plan:
        event = DomainEvent(
            organisation_id=org.id,
            sequence=0,
            event_type=event_type,
            subject_type="order",
            subject_id=str(order.id),
            payload={"driver_id": str(order.driver_id)},
            occurred_at=finished,
            actor_type="system",
        )
        with time_machine.travel(finished, tick=False), transaction.atomic():
            score_the_facts(sender=DomainEvent, events=[event])
    total = time.perf_counter() - started
    print(f"\nscorecards: {events} delivery events in {total:.2f} s, {events / total:.0f} events/s")
    today = utc_day(plan[-1][1])
    for driver in drivers[:5]:
        card = refresh_scorecard(driver_id=driver.id, now=plan[-1][1])  # windows moved on to the last day
        for window in WINDOWS:
            assert card.sums[window] == window_sums_from_facts(driver, since=window_start(window, today))
