"""Benchmarks of settlement's hot paths: the pure earnings arithmetic, a ledger posting, and a
proof of delivery with its earning. `make bench` prints the figures; the normal suite runs
each body once (no timing asserted)."""

import itertools

from core.actors import Actor
from dispatch.services.orders import deliver_order
from payouts import pricing
from payouts.models import AccountKind, Earning, TransactionKind
from payouts.services.ledger import org_account, post_transaction
from tests.api.conftest import png_file
from tests.payouts.conftest import make_courier, order_at_the_door, shop, tariffs  # noqa: F401 (fixtures)

counter = itertools.count()

TARIFF = pricing.Tariff(
    base_minor=250,
    per_km_minor=60,
    waiting_per_minute_minor=20,
    surge=tuple(pricing.parse_surge([{"days": [4, 5], "start": "17:00", "end": "21:00", "percent": 20}])),
)


def test_bench_delivery_earning(benchmark):
    facts = pricing.DeliveryFacts(
        distance_m=4_321,
        distance_source="street",
        waiting_s=700,
        tip_minor=200,
        auction_minor=100,
        local_weekday=4,
        local_minute_of_day=1100,
    )
    breakdown = benchmark(pricing.delivery_earning, TARIFF, facts, currency="EUR")
    assert breakdown.total_minor > 0


def test_bench_ledger_posting(benchmark, org):
    platform = org_account(org.id, AccountKind.PLATFORM, "EUR")
    fees = org_account(org.id, AccountKind.FEES, "EUR")

    def post():
        post_transaction(
            organisation_id=org.id,
            kind=TransactionKind.ADJUSTMENT,
            key=f"b{next(counter)}",
            currency="EUR",
            description="bench",
            postings=[(platform, 100), (fees, -100)],
        )

    benchmark(post)


def test_bench_proof_of_delivery_with_earning(benchmark, org, tariffs):  # noqa: F811
    courier = make_courier(org, "bench", "+358401009999")
    orders = iter([order_at_the_door(org, courier, ref=f"BENCH-{i}") for i in range(30)])

    def deliver():
        order = next(orders)
        deliver_order(
            order_id=order.id,
            organisation=org,
            driver=courier.driver,
            actor=Actor.for_user(courier.user),
            location=order.dropoff_location,
            captured_at=order.created_at,
            photo=png_file(),
        )

    benchmark.pedantic(deliver, rounds=25, iterations=1)
    assert Earning.objects.filter(driver=courier.driver).count() >= 1
