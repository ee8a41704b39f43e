"""Facts about one driver arriving at once are each counted once (PostgreSQL row locks)."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dispatch.models import Offer, Order
from scorecards import services
from scorecards.models import DailyStats, DeliveryOutcome, Scorecard
from scorecards.selectors import WINDOWS, utc_day, window_start, window_sums_from_facts
from tests.scorecards.conftest import new_order


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    settings.DATABASE_IS_SPATIALITE, reason="SQLite has no row locks; its single writer serialises"
)
def test_facts_about_one_driver_at_once_are_each_counted_once(org, driver, settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"
    now = timezone.now()
    orders = []
    for n in range(4):
        order = new_order(org, ref=f"RACE-{n}")
        Order.objects.filter(pk=order.pk).update(driver=driver)
        order.refresh_from_db()
        orders.append(order)
    offers = [
        Offer.objects.create(
            organisation=org, driver=driver, currency="EUR", expires_at=now + timedelta(days=1)
        )
        for _ in range(4)
    ]
    finished = orders[0].dropoff_window_end - timedelta(minutes=10)  # on time, on one day
    works = [
        *(lambda o=o: services.record_delivery_outcome(order=o, finished_at=finished) for o in orders),
        # The same order twice at once: one outcome.
        lambda: services.record_delivery_outcome(order=orders[0], finished_at=finished),
        *(
            lambda f=f: services.record_offer_answer(offer=f, answer="ACCEPTED", answered_at=finished)
            for f in offers
        ),
    ]
    barrier = threading.Barrier(len(works))
    errors = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert DeliveryOutcome.objects.count() == 4 and DailyStats.objects.count() == 1
    card = Scorecard.objects.get(driver=driver)
    for window in WINDOWS:
        assert card.sums[window] == window_sums_from_facts(driver, since=window_start(window, utc_day(now)))
    assert card.sums["7d"]["deliveries_on_time"] == 4 and card.sums["7d"]["offers_accepted"] == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    settings.DATABASE_IS_SPATIALITE, reason="SQLite has no row locks; its single writer serialises"
)
def test_ratings_and_deliveries_for_one_driver_at_once_queue_on_the_driver_without_deadlock(
    org, driver, settings
):
    """A rating (scorecard, then the score on the driver) and a delivery (the driver, then the
    order, then the scorecard) take their locks in one order: the driver first."""
    from django.core.files.base import ContentFile

    from core.actors import Actor
    from core.geo import make_point
    from dispatch.services.orders import deliver_order
    from scorecards.models import Rating
    from tests.dispatch.test_order_lifecycle import png_bytes
    from tests.scorecards.conftest import DAY, carry, step

    settings.TRAVEL_TIME_PROVIDER = "haversine"
    rated = [carry(new_order(org, ref=f"RATED-{n}"), org, driver) for n in range(3)]
    at_the_door = []
    for n in range(3):
        order = new_order(org, ref=f"DOOR-{n}")
        with time_machine.travel(DAY.replace(hour=12, minute=5 + n), tick=False):
            for action, kwargs in (
                ("assign", {"driver": driver}),
                ("start_pickup", {}),
                ("arrive_pickup", {}),
                ("pick_up", {}),
                ("arrive_dropoff", {}),
            ):
                step(order, action, org, **kwargs)
        at_the_door.append(order)

    def deliver(order):
        deliver_order(
            order_id=order.id,
            organisation=org,
            driver=driver,
            actor=Actor.system("driver-app"),
            location=make_point(lat=60.1655, lon=24.938),
            captured_at=timezone.now(),
            signature=ContentFile(png_bytes(), name="signature.png"),
            recipient_name="Maija",
        )

    works = [
        *(lambda o=o: services.submit_rating(order=o, stars=4) for o in rated),
        *(lambda o=o: deliver(o) for o in at_the_door),
    ]
    barrier = threading.Barrier(len(works))
    errors = []

    def run(work):
        try:
            barrier.wait(timeout=10)
            work()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Rating.objects.count() == 3
    assert DeliveryOutcome.objects.filter(driver=driver).count() == 6
    # Each rating counted once in its day's bucket (the test's deliveries are dated 2030).
    assert sum(DailyStats.objects.filter(driver=driver).values_list("rating_count", flat=True)) == 3
