"""The rules weighed as deliveries, offer answers and ratings arrive: decisions written to the
driver's record with their inputs and explanation, excused lateness left out, a streak that
decides once, warnings before suspensions, work taken away as any suspension takes it, and
suspensions that end by themselves."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.models import DomainEvent
from core.scheduler import beat_jobs
from discipline import services
from discipline.models import DecisionAction, DecisionStatus, DisciplineDecision, DisciplineReview
from dispatch.models import OrderStatus
from dispatch.services.orders import create_order, transition_order
from fleet.models import Driver, DriverStatus, DriverStatusChange
from scorecards.models import DeliveryOutcome
from tests.conftest import make_active_driver, order_payload
from tests.discipline.factories import (
    STRICT_STREAK,
    SYSTEM,
    deliver,
    excused_late,
    late,
    on_time,
    set_rules,
    strict,
)
from tests.dispatch.factories import order_input


@pytest.fixture
def driver(org):
    return make_active_driver(org)


def status_of(driver) -> str:
    return Driver.objects.get(id=driver.id).status


def test_three_late_deliveries_in_a_row_suspend_with_the_outcomes_counted_and_explained(org, driver):
    rules = strict(org)
    late(org, driver)
    late(org, driver)
    assert status_of(driver) == DriverStatus.ACTIVE and not DisciplineDecision.objects.exists()
    late(org, driver, minutes=25)
    assert status_of(driver) == DriverStatus.SUSPENDED
    decision = DisciplineDecision.objects.get()
    assert (decision.action, decision.status, decision.rule_name) == ("SUSPEND", "IN_FORCE", "late_streak")
    assert decision.rule_set == rules and decision.inputs["rule_version"] == rules.version
    outcomes = list(DeliveryOutcome.objects.order_by("-finished_at"))
    assert [item["id"] for item in decision.inputs["counted"]] == [str(o.id) for o in outcomes]
    assert decision.inputs["left_out"] == []
    assert decision.suspended_until == decision.created_at + timedelta(hours=24)
    # In the driver's decision record, through change_driver_status, with the explanation.
    change = decision.status_change
    assert (change.from_status, change.to_status, change.actor_type) == ("ACTIVE", "SUSPENDED", "system")
    assert change.reason == decision.explanation
    assert change.inputs["decision_id"] == str(decision.id)
    assert decision.explanation.startswith(
        "You are suspended for 24 hours because your last 3 deliveries were late"
    )
    assert f"order {outcomes[0].order.external_ref} (" in decision.explanation
    made = DomainEvent.objects.get(event_type="discipline.decision_made")
    assert made.payload["decision_id"] == str(decision.id) and made.reason == decision.explanation
    assert (
        DomainEvent.objects.filter(event_type="driver.status_changed", payload__status="SUSPENDED").count()
        == 1
    )


def test_an_excused_late_delivery_is_left_out_and_breaks_nothing(org, driver):
    strict(org)
    late(org, driver)
    excused = excused_late(org, driver)
    outcome = DeliveryOutcome.objects.get(order=excused)
    assert (outcome.outcome, outcome.excused_cause) == ("LATE", "LATE_PICKUP_WINDOW")
    late(org, driver)
    assert status_of(driver) == DriverStatus.ACTIVE  # two of the driver's own, not three
    late(org, driver)
    decision = DisciplineDecision.objects.get()
    assert decision.action == "SUSPEND"
    assert len(decision.inputs["counted"]) == 3
    assert str(outcome.id) not in [item["id"] for item in decision.inputs["counted"]]
    assert [item["id"] for item in decision.inputs["left_out"]] == [str(outcome.id)]
    assert "left out because the lateness was not yours" in decision.explanation
    assert (
        f"order {excused.external_ref} (it was assigned or ready too late for anyone to be on time)"
        in decision.explanation
    )


def test_an_on_time_or_failed_delivery_breaks_the_streak(org, driver):
    strict(org)
    late(org, driver)
    late(org, driver)
    on_time(org, driver)
    late(org, driver)
    deliver(org, driver, fail=True)
    late(org, driver)
    late(org, driver)
    assert status_of(driver) == DriverStatus.ACTIVE and not DisciplineDecision.objects.exists()


def test_the_same_streak_decides_once_and_the_next_counts_only_what_came_after(org, driver):
    set_rules(org, late_warning={"metric": "consecutive_late", "threshold": 2, "action": "WARN"})
    late(org, driver)
    late(org, driver)
    assert DisciplineDecision.objects.count() == 1
    with transaction.atomic():
        assert services.evaluate_driver(driver_id=driver.id, metrics={"consecutive_late"}) == []
    late(org, driver)  # one after the warned streak: not two in a row yet
    assert DisciplineDecision.objects.count() == 1
    late(org, driver)
    assert DisciplineDecision.objects.count() == 2
    first, second = DisciplineDecision.objects.order_by("created_at")
    assert not {i["id"] for i in first.inputs["counted"]} & {i["id"] for i in second.inputs["counted"]}
    assert status_of(driver) == DriverStatus.ACTIVE  # warnings leave the status as it is
    assert all(d.status_change.to_status == "ACTIVE" for d in (first, second))


def test_warn_first_warns_then_suspends_when_it_happens_again(org, driver):
    set_rules(org, late_streak={**STRICT_STREAK, "warn_first": True})
    for _ in range(3):
        late(org, driver)
    warning = DisciplineDecision.objects.get()
    assert warning.action == DecisionAction.WARN and status_of(driver) == DriverStatus.ACTIVE
    assert "This is a warning" in warning.explanation and "within 30 days" in warning.explanation
    for _ in range(3):
        late(org, driver)
    suspension = DisciplineDecision.objects.exclude(id=warning.id).get()
    assert suspension.action == DecisionAction.SUSPEND and status_of(driver) == DriverStatus.SUSPENDED


def test_a_suspension_takes_work_away_as_any_suspension_does(org, driver):
    """Work not picked up goes back to the pool, work on board is flagged for a dispatcher,
    pending offers are withdrawn: what driver.status_changed to SUSPENDED does for any suspension."""
    from dispatch.services.offers import make_offer
    from fleet.services import set_driver_online
    from tests.discipline.factories import hand_over, to_dropoff

    strict(org)
    late(org, driver)
    late(org, driver)
    waiting = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload("WAITING")))
    transition_order(order_id=waiting.id, organisation=org, action="assign", actor=SYSTEM, driver=driver)
    on_board, _ = to_dropoff(org, driver, late_minutes=5)
    third, finished = to_dropoff(org, driver, late_minutes=5)
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
    offered = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload("OFFERED")))
    with time_machine.travel(finished, tick=False):
        offer = make_offer(
            organisation=org,
            driver=Driver.objects.get(id=driver.id),
            orders=[offered],
            expires_at=timezone.now() + timedelta(minutes=5),
            incentive_minor=0,
            actor=SYSTEM,
        )
        hand_over(org, driver, third, finished)
    assert status_of(driver) == DriverStatus.SUSPENDED
    waiting.refresh_from_db()
    on_board.refresh_from_db()
    offer.refresh_from_db()
    assert (waiting.status, waiting.driver_id) == (OrderStatus.CREATED, None)
    released = DomainEvent.objects.get(event_type="order.released", subject_id=str(waiting.id))
    assert "suspended" in released.reason and "late" not in released.reason  # never the private reason
    assert (on_board.status, on_board.driver_id) == (OrderStatus.ARRIVED_DROPOFF, driver.id)
    assert "can no longer take work (suspended)" in on_board.attention_reason
    assert offer.status == "WITHDRAWN"
    assert not Driver.objects.get(id=driver.id).is_online


def test_a_suspended_driver_is_not_weighed_again(org, driver):
    strict(org)
    for _ in range(3):
        late(org, driver)
    carried = DisciplineDecision.objects.count()
    # A delivery finished while suspended (the parcel they carried) decides nothing.
    with transaction.atomic():
        assert services.evaluate_driver(driver_id=driver.id, metrics={"consecutive_late"}) == []
    assert DisciplineDecision.objects.count() == carried


def test_a_suspension_ends_by_itself_with_the_reason_and_what_came_before_is_not_held_again(
    org, driver, settings
):
    settings.BACKGROUND_JOBS = "in-process"
    strict(org)
    for _ in range(3):
        late(org, driver)
    decision = DisciplineDecision.objects.get()
    assert services.end_due_suspensions(now=decision.suspended_until - timedelta(seconds=1)) == 0
    with time_machine.travel(decision.suspended_until + timedelta(minutes=1), tick=False):
        beat = {job.name: job for job in beat_jobs()}["discipline-end-due-suspensions"]
        assert beat.interval_s == 60.0
        beat.run()  # the beat task (in-process here), as Celery beat runs it
        assert services.end_due_suspensions() == 0
    decision.refresh_from_db()
    assert (decision.status, status_of(driver)) == (DecisionStatus.ENDED, DriverStatus.ACTIVE)
    back = DriverStatusChange.objects.filter(driver=driver).order_by("-occurred_at", "-id").first()
    assert (back.to_status, back.actor_label) == ("ACTIVE", "discipline-suspension-end")
    assert 'Your 24-hour suspension under rule "late_streak" ended' in back.reason
    assert DomainEvent.objects.filter(event_type="discipline.suspension_ended").count() == 1
    # A fresh start: one more late delivery is not a fourth in a row.
    late(org, driver)
    assert status_of(driver) == DriverStatus.ACTIVE and DisciplineDecision.objects.count() == 1


def test_low_acceptance_warns_from_the_offer_answers(org, driver):
    from dispatch.services.offers import decline_offer, make_offer
    from fleet.services import set_driver_online

    set_rules(
        org, low_acceptance={"metric": "acceptance_rate", "threshold": 50, "over_last": 3, "action": "WARN"}
    )
    set_driver_online(driver_id=driver.id, organisation=org, online=True, actor=SYSTEM)
    for n in range(3):
        order = create_order(organisation=org, actor=SYSTEM, data=order_input(order_payload(f"OFFER-{n}")))
        offer = make_offer(
            organisation=org,
            driver=Driver.objects.get(id=driver.id),
            orders=[order],
            expires_at=timezone.now() + timedelta(minutes=5),
            incentive_minor=0,
            actor=SYSTEM,
        )
        decline_offer(offer_id=offer.id, driver=driver, actor=Actor.system("driver"), reason="Too far.")
    decision = DisciplineDecision.objects.get()
    assert (decision.action, decision.rule_name) == ("WARN", "low_acceptance")
    assert [item["answer"] for item in decision.inputs["counted"]] == ["DECLINED"] * 3
    assert "you accepted 0 of your last 3 offers (0%)" in decision.explanation


def test_a_rule_asking_for_a_person_opens_a_review(org, driver):
    set_rules(
        org, late_review={"metric": "on_time_rate", "threshold": 60, "over_last": 2, "action": "HUMAN_REVIEW"}
    )
    late(org, driver)
    late(org, driver)
    decision = DisciplineDecision.objects.get()
    assert (decision.action, decision.status) == ("HUMAN_REVIEW", "IN_REVIEW")
    review = DisciplineReview.objects.get()
    assert (review.kind, review.status, review.decision) == ("RULE", "OPEN", decision)
    assert status_of(driver) == DriverStatus.ACTIVE
    assert decision.status_change.reason == decision.explanation


def test_low_ratings_from_recipients_ask_a_person_to_review(org, driver):
    from scorecards.services import submit_rating

    set_rules(
        org, low_rating={"metric": "mean_rating", "threshold": 3.5, "over_last": 3, "action": "HUMAN_REVIEW"}
    )
    orders = [on_time(org, driver) for _ in range(3)]
    submit_rating(order=orders[0], stars=2)
    submit_rating(order=orders[1], stars=5)
    assert not DisciplineDecision.objects.exists()  # two ratings: too little to judge
    submit_rating(order=orders[2], stars=2)
    decision = DisciplineDecision.objects.get()
    assert (decision.action, decision.rule_name, decision.inputs["value"]) == (
        "HUMAN_REVIEW",
        "low_rating",
        3.0,
    )
    assert [item["order"] for item in decision.inputs["counted"]] == [
        o.external_ref for o in reversed(orders)
    ]
    assert DisciplineReview.objects.get().kind == "RULE"
    assert "the mean of your last 3 customer ratings is 3" in decision.explanation


def test_a_lateness_excused_afterwards_sends_the_decision_that_counted_it_to_a_person(
    org, driver, dispatcher
):
    from scorecards.services import excuse_late_delivery

    strict(org)
    orders = [late(org, driver) for _ in range(3)]
    decision = DisciplineDecision.objects.get()
    outcome = DeliveryOutcome.objects.get(order=orders[1])
    excuse_late_delivery(
        outcome_id=outcome.id,
        organisation=org,
        actor=Actor.for_user(dispatcher),
        reason="The bridge was closed.",
    )
    decision.refresh_from_db()
    review = DisciplineReview.objects.get()
    assert (review.kind, review.status, decision.status) == ("EXCUSE", "OPEN", "IN_REVIEW")
    assert f"order {orders[1].external_ref}" in review.note and "The bridge was closed." in review.note
    assert DomainEvent.objects.filter(event_type="discipline.review_opened").count() == 1
    services.resolve_review(
        review_id=review.id, organisation=org, outcome="lift", reason="Excused: not three.", user=dispatcher
    )
    assert status_of(driver) == DriverStatus.ACTIVE
    # An excuse of a delivery no decision counted changes nothing.
    other = late(org, driver)
    excuse_late_delivery(
        outcome_id=DeliveryOutcome.objects.get(order=other).id,
        organisation=org,
        actor=Actor.for_user(dispatcher),
        reason="Also fine.",
    )
    assert DisciplineReview.objects.count() == 1
