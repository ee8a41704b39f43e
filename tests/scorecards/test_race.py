"""Facts about one driver arriving at once are each counted once (PostgreSQL row locks)."""

import threading
from datetime import timedelta

import pytest
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
