"""Send-to-all: under `mode: broadcast` a round offers each open order to every eligible driver
(the engine's hard rules still apply) and the first to accept gets it."""

import pytest

from dispatch.engine.rules import RulesError, parse_rules
from dispatch.models import Offer, OfferStatus, OrderStatus
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.offers import accept_offer
from dispatch.services.rounds import run_round
from tests.dispatch.test_rounds import LAT, SYSTEM, driver_at, new_order


def test_mode_is_optimal_by_default_and_checked():
    assert parse_rules({}).mode == "optimal"
    assert parse_rules({"mode": "broadcast"}).mode == "broadcast"
    with pytest.raises(RulesError) as bad:
        parse_rules({"mode": "everyone"})
    assert bad.value.path == "mode"


def test_broadcast_offers_each_order_to_every_eligible_driver_and_the_first_accept_wins(org):
    update_dispatch_settings(
        organisation=org, rules={"mode": "broadcast", "max_pickup_distance_m": 2000}, actor=SYSTEM
    )
    first, second = driver_at(org, 1), driver_at(org, 2, lat=LAT + 0.005)
    far = driver_at(org, 3, lat=LAT + 0.1)  # beyond the pickup limit: a hard rule
    a, b = new_order(org, "A"), new_order(org, "B", lat=LAT + 0.002)
    report = run_round(organisation=org)
    offered = sorted((made.orders[0], made.driver) for made in report.offers)
    assert offered == [("A", first.name), ("A", second.name), ("B", first.name), ("B", second.name)]
    assert not Offer.objects.filter(driver=far).exists()
    assert all(made.lines for made in report.offers)  # each with its reasons
    winner = Offer.objects.get(driver=second, orders=a)
    accept_offer(offer_id=winner.id, driver=second, actor=SYSTEM)
    a.refresh_from_db()
    assert (a.status, a.driver_id) == (OrderStatus.ASSIGNED, second.id)
    assert Offer.objects.get(driver=first, orders=a).status == OfferStatus.WITHDRAWN
    assert Offer.objects.filter(orders=b, status=OfferStatus.PENDING).count() == 2


def test_broadcast_says_why_an_order_stays_open(org):
    update_dispatch_settings(
        organisation=org, rules={"mode": "broadcast", "max_pickup_distance_m": 500}, actor=SYSTEM
    )
    driver_at(org, 1, lat=LAT + 0.1)
    new_order(org, "FAR")
    report = run_round(organisation=org)
    assert report.offers == [] and report.left_open == {"FAR": "pickup too far"}
