"""Benchmarks of discipline. `make bench` prints the figures; in the normal suite
(--benchmark-disable) each body runs once, as a smoke test, with no timing asserted."""

from datetime import UTC, datetime, timedelta

from django.db import transaction

from discipline import engine, services
from scorecards.models import DeliveryOutcome
from tests.conftest import make_active_driver
from tests.discipline.factories import set_rules, to_dropoff

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_bench_engine_weighs_10000_outcomes(benchmark):
    """The pure engine: 10,000 streak and window evaluations over a driver's newest 53 outcomes."""
    rules = engine.parse_rules(
        {
            "streak": {"metric": "consecutive_late", "threshold": 3, "action": "SUSPEND"},
            "on_time": {"metric": "on_time_rate", "threshold": 50, "over_last": 20, "action": "WARN"},
        }
    )
    kinds = ["ON_TIME", "LATE", "LATE", "ON_TIME"]
    items = [
        engine.Outcome(
            id=str(n),
            label=f"ORD-{n}",
            outcome=kinds[n % 4],
            at=START - timedelta(minutes=n),
            late_seconds=60 if kinds[n % 4] == "LATE" else 0,
            excused_cause="TRAFFIC_INCIDENT" if n % 7 == 0 and kinds[n % 4] == "LATE" else "",
        )
        for n in range(53)
    ]

    def run():
        for _ in range(5_000):
            for rule in rules.values():
                engine.evaluate(rule, items)

    benchmark(run)


def test_bench_evaluate_driver_after_a_delivery(benchmark, org):
    """What a delivery adds to its transaction: the driver's rules weighed (driver locked, rules
    read, the newest outcomes and what earlier decisions counted read), nothing decided."""
    driver = make_active_driver(org)
    set_rules(
        org,
        streak={"metric": "consecutive_late", "threshold": 3, "action": "SUSPEND"},
        on_time={"metric": "on_time_rate", "threshold": 50, "over_last": 20, "action": "WARN"},
    )
    orders = [to_dropoff(org, driver)[0] for _ in range(25)]
    DeliveryOutcome.objects.bulk_create(
        DeliveryOutcome(
            organisation=org,
            driver=driver,
            order=order,
            outcome="ON_TIME",
            finished_at=datetime.now(UTC) + timedelta(minutes=n),
            promised_by=order.dropoff_window_end,
        )
        for n, order in enumerate(orders)
    )

    def weigh():
        with transaction.atomic():
            assert services.evaluate_driver(driver_id=driver.id, metrics=engine.OUTCOME_METRICS) == []

    benchmark(weigh)
