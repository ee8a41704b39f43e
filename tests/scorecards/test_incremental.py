"""The scorecard's running window sums, updated fact by fact, equal a recomputation from the
fact rows; windows drop the days that leave them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.actors import Actor
from dispatch.models import GeofenceVisit, Offer, Order, OrderStatus, OrderTransition
from scorecards import selectors, services
from scorecards.models import Outcome, Rating, Scorecard
from scorecards.selectors import window_sums_from_facts
from tests.scorecards.conftest import new_order

START = datetime(2030, 3, 1, 9, tzinfo=UTC)
FACTS = st.sampled_from(["answer", "delivery", "late", "failed", "service", "rating", "cancel", "excuse"])
STEP = st.tuples(FACTS, st.integers(0, 40), st.integers(0, 3), st.integers(1, 5))


@pytest.fixture(autouse=True)
def straight_line_travel(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"


def _order(org, driver, n):
    order = Order.objects.get(pk=new_order(org, ref=f"P-{n}").pk)
    Order.objects.filter(pk=order.pk).update(driver=driver)
    order.refresh_from_db()
    return order


def _delivered(order, at):
    """The order marked delivered just before `at` (a rating needs a delivery to rate)."""
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DELIVERED)
    transition = OrderTransition.objects.create(
        order=order,
        action="deliver",
        from_status=OrderStatus.ARRIVED_DROPOFF,
        to_status=OrderStatus.DELIVERED,
        driver=order.driver,
        **Actor.system("test").as_fields(),
    )
    OrderTransition.objects.filter(pk=transition.pk).update(occurred_at=at - timedelta(minutes=1))
    order.refresh_from_db()
    return order


def _apply_fact(org, driver, kind, at, now, stars, n):
    if kind == "answer":
        offer = Offer.objects.create(
            organisation=org, driver=driver, currency="EUR", expires_at=START + timedelta(days=400)
        )
        answer = ["ACCEPTED", "DECLINED", "EXPIRED"][stars % 3]
        services.record_offer_answer(offer=offer, answer=answer, answered_at=at, now=now)
    elif kind in ("delivery", "late", "failed"):
        order = _order(org, driver, n)
        Order.objects.filter(pk=order.pk).update(dropoff_window_end=at + timedelta(minutes=9))
        order.refresh_from_db()
        finished = at + timedelta(minutes=18) if kind == "late" else at
        services.record_delivery_outcome(order=order, finished_at=finished, failed=kind == "failed", now=now)
    elif kind == "service":
        order = _order(org, driver, n)
        visit = GeofenceVisit.objects.create(
            organisation=org,
            driver=driver,
            order=order,
            kind=["pickup", "dropoff"][stars % 2],
            radius_m=50,
            exit_radius_m=80,
            entered_at=at - timedelta(seconds=60 * stars),
        )
        services.record_stop_service(visit=visit, departed_at=at, now=now)
    elif kind == "rating":
        order = _delivered(_order(org, driver, n), at)
        services.submit_rating(order=order, stars=stars, comment="", now=at)
    elif kind == "cancel":
        order = _order(org, driver, n)
        services.record_cancellation(
            order=order, driver_id=driver.id, event_id=order.id, cancelled_at=at, reason="gave up", now=now
        )
    elif kind == "excuse":
        late = driver.delivery_outcomes.filter(outcome=Outcome.LATE, excused_cause="").first()
        if late is not None:
            services.excuse_late_delivery(
                outcome_id=late.id,
                organisation=org,
                actor=Actor.system("test"),
                reason="Bridge closed.",
                now=now,
            )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=12))
def test_incremental_sums_equal_a_recomputation_from_the_facts(org, driver, steps):
    with transaction.atomic():
        now = START
        for n, (kind, lag_days, advance_days, stars) in enumerate(steps):
            now += timedelta(days=advance_days, minutes=n)
            _apply_fact(org, driver, kind, now - timedelta(days=lag_days), now, stars, n)
        now += timedelta(days=steps[0][2])
        card = services.refresh_scorecard(driver_id=driver.id, now=now)
        for window in selectors.WINDOWS:
            since = selectors.window_start(window, selectors.utc_day(now))
            assert card.sums[window] == window_sums_from_facts(driver, since=since), window
        transaction.set_rollback(True)


def test_a_window_drops_the_days_that_leave_it(org, driver):
    offer = Offer.objects.create(
        organisation=org, driver=driver, currency="EUR", expires_at=START + timedelta(days=9)
    )
    services.record_offer_answer(offer=offer, answer="ACCEPTED", answered_at=START, now=START)
    card = Scorecard.objects.get(driver=driver)
    assert card.sums["7d"]["offers_accepted"] == 1 and card.sums["30d"]["offers_accepted"] == 1
    card = services.refresh_scorecard(driver_id=driver.id, now=START + timedelta(days=6, hours=14))
    assert card.sums["7d"]["offers_accepted"] == 1  # the 7th day, still in
    card = services.refresh_scorecard(driver_id=driver.id, now=START + timedelta(days=7))
    assert card.sums["7d"]["offers_accepted"] == 0 and card.sums["30d"]["offers_accepted"] == 1
    card = services.refresh_scorecard(driver_id=driver.id, now=START + timedelta(days=30))
    assert card.sums["30d"]["offers_accepted"] == 0
    assert driver.daily_stats.get().offers_accepted == 1  # the bucket stays: it is the history


def test_a_late_fact_lands_in_its_own_day_not_today(org, driver):
    services.refresh_scorecard(driver_id=driver.id, now=START)
    order = _delivered(_order(org, driver, 1), START - timedelta(days=10))
    services.submit_rating(order=order, stars=4, comment="", now=START - timedelta(days=10))
    card = Scorecard.objects.get(driver=driver)
    assert card.sums["7d"]["rating_count"] == 0 and card.sums["30d"]["rating_count"] == 1
    assert Rating.objects.get().rated_at == START - timedelta(days=10)


def test_daily_snapshots_make_the_history_the_charts_draw(org, driver, dispatcher):
    from django.urls import reverse
    from django.utils import timezone

    from scorecards.models import ScorecardSnapshot
    from tests.api.conftest import session_client

    now = timezone.now()
    offer = Offer.objects.create(
        organisation=org, driver=driver, currency="EUR", expires_at=now + timedelta(days=1)
    )
    services.record_offer_answer(
        offer=offer, answer="DECLINED", answered_at=now - timedelta(days=2), now=now - timedelta(days=2)
    )
    for days in (2, 1):
        assert services.snapshot_scorecards(now=now - timedelta(days=days)) == 1
    assert services.snapshot_scorecards(now=now - timedelta(days=1)) == 1  # again: the same day's row
    assert ScorecardSnapshot.objects.filter(driver=driver).count() == 2
    history = session_client(dispatcher).get(reverse("scorecard-detail", args=[driver.id])).json()["history"]
    assert [point["day"] for point in history] == [
        (now - timedelta(days=d)).date().isoformat() for d in (2, 1, 0)
    ]
    assert history[0]["acceptance_rate"] == 0.0 and history[-1]["performance_score"] < 1.0
