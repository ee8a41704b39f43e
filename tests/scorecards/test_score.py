"""The performance score: neutral (1.0) without history, moved by evidence as it grows, on
the driver for matching, and a better-scored driver wins a round over an otherwise equal one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.actors import Actor
from dispatch.models import Offer, Order
from dispatch.services.dispatch_settings import update_dispatch_settings
from dispatch.services.rounds import run_round
from scorecards import scoring, services
from scorecards.models import DEFAULT_WEIGHTS, Scorecard
from tests.dispatch.test_rounds import LAT, driver_at
from tests.dispatch.test_rounds import new_order as round_order
from tests.scorecards.conftest import new_order

WEIGHTS = DEFAULT_WEIGHTS


@pytest.fixture(autouse=True)
def straight_line_travel(settings):
    settings.TRAVEL_TIME_PROVIDER = "haversine"


def test_no_history_is_neutral_not_bad():
    score = scoring.performance_score({}, weights=WEIGHTS, prior_strength=10)
    assert score.value == 1.0
    assert all(part["shrunk"] == 1.0 and part["n"] == 0 for part in score.components.values())


def test_little_history_moves_the_score_little_and_more_history_more():
    one_late = scoring.performance_score({"deliveries_late": 1}, weights=WEIGHTS, prior_strength=10)
    many_late = scoring.performance_score({"deliveries_late": 40}, weights=WEIGHTS, prior_strength=10)
    assert 0.95 < one_late.value < 1.0
    assert many_late.value < 0.7
    # The on-time part is the Bayesian mean: (n * rate + k * 1.0) / (n + k).
    assert one_late.components["on_time"]["shrunk"] == pytest.approx(10 / 11, abs=1e-4)
    # With no prior, the measured rate itself.
    assert (
        scoring.performance_score({"deliveries_late": 1}, weights={"on_time": 1}, prior_strength=0).value == 0
    )


def test_excused_lateness_does_not_lower_the_score():
    excused = {"deliveries_on_time": 3, "deliveries_late": 5, "deliveries_late_excused": 5}
    assert scoring.performance_score(excused, weights=WEIGHTS, prior_strength=10).value == 1.0
    assert scoring.figures(excused)["on_time_rate"] == 1.0 and scoring.figures(excused)["late_excused"] == 5


def test_a_new_driver_is_neutral_and_history_reaches_the_driver_row(org, driver):
    assert driver.performance_score == 1.0
    for n in range(3):
        order = new_order(org, ref=f"LATE-{n}")
        Order.objects.filter(pk=order.pk).update(driver=driver)
        order.refresh_from_db()
        services.record_delivery_outcome(
            order=order, finished_at=order.dropoff_window_end + timedelta(minutes=5)
        )
    driver.refresh_from_db()
    card = Scorecard.objects.get(driver=driver)
    assert driver.performance_score == card.performance_score < 1.0
    assert card.score_inputs["components"]["on_time"]["n"] == 3


def _late_history(org, driver, count):
    now = timezone.now()
    for n in range(count):
        order = round_order(org, f"H-{driver.name[-1]}-{n}")
        Order.objects.filter(pk=order.pk).update(driver=driver, status="DELIVERED")
        order.refresh_from_db()
        services.record_delivery_outcome(order=order, finished_at=now + timedelta(hours=3))


def test_a_better_scored_driver_wins_a_high_value_order_over_an_equal_one(org):
    update_dispatch_settings(
        organisation=org,
        rules={"high_value": {"threshold_minor": 1000, "score_weight_s": 900}},
        actor=Actor.system("test"),
    )
    # Same place, same vehicle; with equal scores the often-late one wins this tie (checked).
    reliable = driver_at(org, 1)
    often_late = driver_at(org, 2)
    _late_history(org, often_late, 12)
    often_late.refresh_from_db()
    assert often_late.performance_score < 0.9 and reliable.performance_score == 1.0
    valuable = round_order(org, "VALUABLE", lat=LAT + 0.001, declared_value_minor=50_000)
    run_round(organisation=org)
    offer = Offer.objects.get(orders=valuable)
    assert offer.driver_id == reliable.id
    assert not any("low performance score" in line for line in offer.explanation)
