"""Send-to-all: under `mode: broadcast` a round offers each open order to its nearest eligible
drivers (the engine's hard rules still apply; at most `broadcast.max_drivers_per_order`), each
driver no more than they could take, and the first to accept gets it; an acceptance re-checks
the driver's plan as it is by then."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.exceptions import InvalidTransition
from dispatch.engine.rules import RulesError, parse_rules
from dispatch.models import Offer, OfferStatus, Order, OrderStatus
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.offers import accept_offer, make_offer
from dispatch.services.orders import transition_order
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


# --- pruned: the nearest eligible drivers, and no more per driver than they could take -------


def test_an_order_goes_only_to_its_k_nearest_eligible_drivers(org):
    update_dispatch_settings(
        organisation=org,
        rules={"mode": "broadcast", "broadcast": {"max_drivers_per_order": 2}, "max_pickup_distance_m": 5000},
        actor=SYSTEM,
    )
    # The nearest cannot carry it (a bicycle, 15 kg): the next two eligible ones get it.
    bike = driver_at(org, 1, lat=LAT + 0.0005, vehicle="bicycle")
    near, middle, far = (driver_at(org, n, lat=LAT + 0.002 * n) for n in (2, 3, 4))
    new_order(org, "HEAVY", weight="40")
    report = run_round(organisation=org)
    assert sorted(made.driver for made in report.offers) == sorted([near.name, middle.name])
    assert not Offer.objects.filter(driver__in=[bike, far]).exists()


def test_the_default_is_twenty_drivers_per_order_and_the_limit_is_checked():
    assert parse_rules({}).broadcast.max_drivers_per_order == 20
    with pytest.raises(RulesError) as bad:
        parse_rules({"broadcast": {"max_drivers_per_order": 0}})
    assert bad.value.path == "broadcast.max_drivers_per_order"


def test_a_driver_is_offered_no_more_than_their_batch_places_and_vehicle_can_take(org):
    update_dispatch_settings(
        organisation=org, rules={"mode": "broadcast", "batching": {"max_batch_size": 2}}, actor=SYSTEM
    )
    car = driver_at(org, 1)
    for n in range(4):
        new_order(org, f"LIGHT-{n}", lat=LAT + 0.0005 * n)
    report = run_round(organisation=org)
    assert len(report.offers) == 2  # two batch places
    assert Offer.objects.filter(driver=car).count() == 2
    assert sorted(report.offers[i].orders[0] for i in range(2)) == ["LIGHT-0", "LIGHT-1"]  # the cheapest
    assert set(report.left_open) == {"LIGHT-2", "LIGHT-3"}
    assert "as much work as they can take" in report.left_open["LIGHT-2"]


def test_orders_take_turns_so_none_loses_every_driver_to_another(org):
    update_dispatch_settings(
        organisation=org, rules={"mode": "broadcast", "batching": {"max_batch_size": 1}}, actor=SYSTEM
    )
    near, farther = driver_at(org, 1), driver_at(org, 2, lat=LAT + 0.004)
    new_order(org, "FIRST")  # both drivers' cheapest; by the pool's order it chooses first
    new_order(org, "SECOND", lat=LAT - 0.001)  # the farther driver is nearer FIRST than this
    report = run_round(organisation=org)
    offered = sorted((made.orders[0], made.driver) for made in report.offers)
    assert offered == [("FIRST", near.name), ("SECOND", farther.name)]
    assert report.left_open == {}


def test_a_small_vehicle_is_offered_only_what_fits_in_it_at_once(org):
    update_dispatch_settings(organisation=org, rules={"mode": "broadcast"}, actor=SYSTEM)
    bike = driver_at(org, 1, vehicle="bicycle")  # 15 kg
    new_order(org, "TEN-A", weight="10")
    new_order(org, "TEN-B", weight="10", lat=LAT + 0.0005)
    run_round(organisation=org)
    assert Offer.objects.filter(driver=bike).count() == 1


# --- accepting re-checks the driver's plan ------------------------------------------------------


def offer_each(org, driver, orders):
    """One offer per order to the driver, as a broadcast round makes them."""
    return [
        make_offer(
            organisation=org,
            driver=driver,
            orders=[order],
            expires_at=timezone.now() + timedelta(minutes=5),
            actor=SYSTEM,
        )
        for order in orders
    ]


def one_order_at_a_time(org):
    update_dispatch_settings(organisation=org, rules={"batching": {"max_batch_size": 1}}, actor=SYSTEM)


def test_accepting_work_the_driver_can_no_longer_fit_in_is_refused_and_changes_nothing(org):
    one_order_at_a_time(org)
    bike = driver_at(org, 1)
    first, second = new_order(org, "TEN-A", weight="10"), new_order(org, "TEN-B", weight="10")
    offers = offer_each(org, bike, [first, second])
    accept_offer(offer_id=offers[0].id, driver=bike, actor=SYSTEM)
    with pytest.raises(InvalidTransition) as refused:
        accept_offer(offer_id=offers[1].id, driver=bike, actor=SYSTEM)
    assert "no longer take this offer" in refused.value.message
    assert "batch size" in refused.value.message
    second.refresh_from_db()
    assert (second.status, second.driver_id) == (OrderStatus.OFFERED, None)
    assert Offer.objects.get(id=offers[1].id).status == OfferStatus.PENDING


def test_a_manual_assignment_meanwhile_is_taken_into_account(org):
    one_order_at_a_time(org)
    bike = driver_at(org, 1)
    offered, manual = new_order(org, "OFFERED", weight="10"), new_order(org, "MANUAL", weight="10")
    (pending,) = offer_each(org, bike, [offered])
    transition_order(order_id=manual.id, organisation=org, action="assign", actor=SYSTEM, driver=bike)
    with pytest.raises(InvalidTransition):
        accept_offer(offer_id=pending.id, driver=bike, actor=SYSTEM)
    assert list(Order.objects.filter(driver=bike).values_list("external_ref", flat=True)) == ["MANUAL"]


@pytest.mark.django_db(transaction=True)
def test_one_driver_accepting_two_offers_at_once_ends_with_one_plan_that_fits(org):
    """Two acceptances by one courier who takes one order at a time: the driver row lock
    serialises them (PostgreSQL; SQLite's single writer does the same), and the second finds
    the plan full."""
    one_order_at_a_time(org)
    bike = driver_at(org, 1)
    orders = [new_order(org, f"RACE-{n}", weight="10") for n in range(2)]
    offers = offer_each(org, bike, orders)
    barrier = threading.Barrier(2)
    outcomes = []

    def accept(offer):
        try:
            barrier.wait(timeout=5)
            accept_offer(offer_id=offer.id, driver=bike, actor=SYSTEM)
            outcomes.append("won")
        except InvalidTransition as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(offer,)) for offer in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcome == "won" for outcome in outcomes) == [False, True], outcomes
    assert Order.objects.filter(driver=bike, status=OrderStatus.ASSIGNED).count() == 1
    assert sorted(Offer.objects.filter(driver=bike).values_list("status", flat=True)) == [
        OfferStatus.ACCEPTED,
        OfferStatus.PENDING,
    ]
