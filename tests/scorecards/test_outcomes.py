"""Delivery outcomes are recorded from the order's events, once, with the signal."""

from datetime import timedelta

from scorecards.models import DeliveryOutcome, Outcome
from scorecards.selectors import recent_outcomes
from scorecards.signals import delivery_outcome_recorded
from tests.scorecards.conftest import PROMISED_BY, carry, new_order


def test_on_time_late_and_failed_outcomes_are_recorded_with_the_signal(org, driver):
    heard = []

    def listener(sender, outcome, **kwargs):
        heard.append(outcome)

    delivery_outcome_recorded.connect(listener)
    try:
        on_time = carry(new_order(org), org, driver)
        late = carry(new_order(org), org, driver, delivered_at=PROMISED_BY + timedelta(minutes=7))
        failed = carry(new_order(org), org, driver, fail=True)
    finally:
        delivery_outcome_recorded.disconnect(listener)
    outcomes = {o.order_id: o for o in DeliveryOutcome.objects.all()}
    assert outcomes[on_time.id].outcome == Outcome.ON_TIME and outcomes[on_time.id].late_seconds == 0
    assert outcomes[late.id].outcome == Outcome.LATE and outcomes[late.id].late_seconds == 420
    assert outcomes[late.id].promised_by == PROMISED_BY
    assert outcomes[failed.id].outcome == Outcome.FAILED
    assert [o.order_id for o in heard] == [on_time.id, late.id, failed.id]
    assert [o.order_id for o in recent_outcomes(driver, 2)] == [late.id, failed.id]  # ties: newest row first
    driver.refresh_from_db()
    card = driver.scorecard
    assert card.sums["30d"]["deliveries_on_time"] == 1
    assert card.sums["30d"]["deliveries_late"] == 1
    assert card.sums["30d"]["deliveries_failed"] == 1
