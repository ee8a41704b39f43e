"""Two ping requests of one driver at once (the app's HTTP retry and its socket, say): the
driver's row lock makes them apply one after the other, so an arrival is decided once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent
from dispatch.models import GeofenceVisit, OrderStatus, OrderTransition
from dispatch.services.offers import accept_offer
from dispatch.services.pings import receive_pings
from fleet.services import PingInput
from tests.dispatch.test_offers import new_order, offer, online_driver

PICKUP = {"lat": 60.1690, "lon": 24.9410}  # order_payload's


@pytest.mark.django_db(transaction=True)
def test_two_ping_requests_at_the_door_at_once_arrive_once(org):
    driver = online_driver(org, 1)
    order = new_order(org, "RACE-PINGS")
    accept_offer(offer_id=offer(org, driver, order).id, driver=driver, actor=Actor.system("t"))
    start = timezone.now() - timedelta(seconds=60)
    receive_pings(
        driver_id=driver.id, organisation=org, pings=[PingInput(recorded_at=start, accuracy_m=4, **PICKUP)]
    )
    barrier = threading.Barrier(2)
    errors = []

    def send(seconds):
        try:
            barrier.wait(timeout=5)
            ping = PingInput(recorded_at=start + timedelta(seconds=seconds), accuracy_m=4, **PICKUP)
            receive_pings(driver_id=driver.id, organisation=org, pings=[ping])
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(seconds,)) for seconds in (15, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED_PICKUP
    assert OrderTransition.objects.filter(order=order, action="arrive_pickup").count() == 1
    assert DomainEvent.objects.filter(event_type="geofence.entered").count() == 1
    visit = GeofenceVisit.objects.get(order=order)
    assert (visit.phase, visit.entered_at) == ("INSIDE", start)
