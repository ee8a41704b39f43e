"""The demo's couriers earn as they deliver: the simulator's proofs of delivery post earnings
through the same services (seeded tariffs), and the ledger balances."""

from demo.seed import DEMO_EARNING_RULE, DEMO_PRICE
from dispatch.models import Order, OrderStatus
from payouts.audit import audit
from payouts.models import Earning
from tests.demo.test_simulator import graph, http, make_simulator, run_ticks, small_city  # noqa: F401 (fixtures)


def test_demo_deliveries_post_earnings_and_charges(small_city, graph, http):  # noqa: F811
    simulator = make_simulator(small_city, graph, http)
    delivered = run_ticks(simulator, until=lambda totals: totals.get("delivered", 0) >= 2)["delivered"]
    orders = Order.objects.filter(organisation=small_city.organisation, status=OrderStatus.DELIVERED)
    assert orders.count() == delivered >= 2
    for order in orders:
        earning = Earning.objects.get(order=order, reversed_at__isnull=True)
        lines = {line["code"]: line["amount_minor"] for line in earning.breakdown["lines"]}
        assert lines["base"] == DEMO_EARNING_RULE["base_minor"]
        assert lines["distance"] == (DEMO_EARNING_RULE["per_km_minor"] * earning.distance_m + 500) // 1000
        assert earning.charge_breakdown["lines"][0]["amount_minor"] == DEMO_PRICE["base_minor"]
    report = audit(organisation_id=small_city.organisation.id)
    assert report["unbalanced"] == [] and report["payable_total"] == sum(
        Earning.objects.filter(order__in=orders).values_list("total_minor", flat=True)
    )
