"""The scorecards hear the real flows: offers answered through the offer services, service
times from the geofence's pings, a driver giving up an order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from dispatch.services.offers import accept_offer, decline_offer, expire_due_offers, make_offer
from dispatch.services.orders import transition_order
from dispatch.services.pings import receive_pings
from fleet.services import PingInput, set_driver_online
from scorecards.models import DriverCancellation, OfferAnswer, Scorecard, StopService
from scorecards.selectors import recent_offer_answers
from tests.dispatch.test_rounds import LAT, LON
from tests.dispatch.test_rounds import new_order as soon_order


@pytest.fixture(autouse=True)
def straight_line_travel(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"


@pytest.fixture
def online(org, driver):
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=Actor.system("test"))
    driver.refresh_from_db()
    return driver


def offer(org, driver, order, minutes=10):
    return make_offer(
        organisation=org,
        driver=driver,
        orders=[order],
        expires_at=timezone.now() + timedelta(minutes=minutes),
        actor=Actor.system("test-matching"),
    )


def test_offer_answers_are_counted_once_each(org, online):
    driver = online
    accepted = offer(org, driver, soon_order(org, "O-1"))
    accept_offer(offer_id=accepted.id, driver=driver, actor=Actor.system("driver-app"))
    declined = offer(org, driver, soon_order(org, "O-2"))
    decline_offer(offer_id=declined.id, driver=driver, actor=Actor.system("driver-app"), reason="Too far")
    lapsed = offer(org, driver, soon_order(org, "O-3"))
    expire_due_offers(now=timezone.now() + timedelta(minutes=11))
    answers = [(a.offer_id, a.answer) for a in recent_offer_answers(driver, 10)]
    assert sorted(answers, key=str) == sorted(
        [(accepted.id, "ACCEPTED"), (declined.id, "DECLINED"), (lapsed.id, "EXPIRED")], key=str
    )
    card = Scorecard.objects.get(driver=driver)
    sums = card.sums["7d"]
    assert (sums["offers_accepted"], sums["offers_declined"], sums["offers_expired"]) == (1, 1, 1)
    assert OfferAnswer.objects.count() == 3


def test_service_time_is_arrival_to_departure_by_the_geofence(org, online):
    driver = online
    order = soon_order(org, "G-1")
    transition_order(
        order_id=order.id, organisation=org, action="assign", actor=Actor.system("t"), driver=driver
    )
    start = timezone.now() - timedelta(minutes=10)
    at_pickup = [
        PingInput(lat=LAT, lon=LON, accuracy_m=5, recorded_at=start + timedelta(seconds=s)) for s in (0, 15)
    ]
    away = [
        PingInput(lat=LAT - 0.01, lon=LON, accuracy_m=5, recorded_at=start + timedelta(seconds=s))
        for s in (200, 215)
    ]
    receive_pings(driver_id=driver.id, organisation=org, pings=at_pickup)
    receive_pings(driver_id=driver.id, organisation=org, pings=away)
    service = StopService.objects.get()
    assert service.kind == "pickup" and service.order_id == order.id
    assert service.service_s == int((service.departed_at - service.arrived_at).total_seconds()) > 0
    sums = Scorecard.objects.get(driver=driver).sums["7d"]
    assert sums["pickup_visits"] == 1 and sums["pickup_service_s"] == service.service_s


def test_a_driver_releasing_their_order_is_a_cancellation_a_dispatcher_taking_it_is_not(
    org, online, dispatcher
):
    driver = online
    mine, taken = soon_order(org, "C-1"), soon_order(org, "C-2")
    for order in (mine, taken):
        transition_order(
            order_id=order.id, organisation=org, action="assign", actor=Actor.system("t"), driver=driver
        )
    transition_order(
        order_id=mine.id,
        organisation=org,
        action="release",
        actor=Actor.for_user(driver_user(driver)),
        reason="Flat tyre",
    )
    transition_order(
        order_id=taken.id,
        organisation=org,
        action="release",
        actor=Actor.for_user(dispatcher),
        reason="Rebalancing",
    )
    [cancelled] = DriverCancellation.objects.all()
    assert (cancelled.order_id, cancelled.driver_id, cancelled.reason) == (mine.id, driver.id, "Flat tyre")
    assert Scorecard.objects.get(driver=driver).sums["30d"]["cancellations"] == 1


def driver_user(driver):
    from identity.models import Role
    from tests.conftest import make_user

    user = make_user(driver.organisation, Role.DRIVER, "the-driver")
    driver.user = user
    driver.save(update_fields=["user"])
    return user
