"""Nothing decided twice: two late deliveries recorded at once suspend once, and two people
deciding one review at once give one decision. PostgreSQL: the driver's and the review's row
locks order them (and a unique trigger key backs the first); SpatiaLite: one writer at a time."""

import threading

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction

from core.exceptions import InvalidTransition
from discipline import services
from discipline.models import DisciplineDecision, DisciplineReview
from fleet.models import Driver, DriverStatus, DriverStatusChange
from identity.models import Role
from scorecards.models import DeliveryOutcome
from tests.conftest import make_active_driver, make_user
from tests.discipline.factories import STRICT_STREAK, hand_over, late, set_rules, strict, to_dropoff


def race(*writes) -> list:
    barrier = threading.Barrier(len(writes))
    results = []

    def run(write):
        try:
            barrier.wait()
            results.append(write())
        except (ValidationError, OperationalError, InvalidTransition) as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(write,)) for write in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_late_deliveries_recorded_at_once_suspend_once(org):
    driver = make_active_driver(org)
    strict(org)
    late(org, driver)
    late(org, driver)
    first, _ = to_dropoff(org, driver, late_minutes=10)
    second, finished = to_dropoff(org, driver, late_minutes=10)  # both late by then
    with time_machine.travel(finished, tick=False):
        results = race(
            lambda: hand_over(org, driver, first, finished),
            lambda: hand_over(org, driver, second, finished),
        )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert DeliveryOutcome.objects.filter(driver=driver, outcome="LATE").count() == 4
    assert DisciplineDecision.objects.filter(driver=driver).count() == 1
    assert Driver.objects.get(id=driver.id).status == DriverStatus.SUSPENDED
    assert DriverStatusChange.objects.filter(driver=driver, to_status=DriverStatus.SUSPENDED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_of_one_streak_at_once_decide_once(org):
    """The rules weighed twice at once for the same streak (two recordings that do not lock the
    driver themselves): the driver's row lock makes the second see the first's decision."""
    driver = make_active_driver(org)
    set_rules(org, late_streak={**STRICT_STREAK, "enabled": False})
    for _ in range(3):
        late(org, driver)
    set_rules(org, late_streak=STRICT_STREAK)

    def weigh():
        with transaction.atomic():
            return services.evaluate_driver(driver_id=driver.id, metrics={"consecutive_late"})

    results = race(weigh, weigh)
    assert sorted(len(r) for r in results) == [0, 1], results
    assert DisciplineDecision.objects.filter(driver=driver).count() == 1
    assert Driver.objects.get(id=driver.id).status == DriverStatus.SUSPENDED


@pytest.mark.django_db(transaction=True)
def test_lifting_and_confirming_at_once_give_one_decision(org):
    driver = make_active_driver(org)
    strict(org)
    for _ in range(3):
        late(org, driver)
    decision = DisciplineDecision.objects.get(driver=driver)
    review = services.appeal(decision_id=decision.id, driver=driver, text="It was the traffic.")
    lifter, confirmer = (make_user(org, Role.DISPATCHER, name) for name in ("lifter", "confirmer"))
    results = race(
        lambda: services.resolve_review(
            review_id=review.id, organisation=org, outcome="lift", reason="Not their fault.", user=lifter
        ),
        lambda: services.resolve_review(
            review_id=review.id, organisation=org, outcome="confirm", reason="It stands.", user=confirmer
        ),
    )
    winners = [r for r in results if isinstance(r, DisciplineReview)]
    assert len(winners) == 1, results
    assert [type(r) for r in results if not isinstance(r, DisciplineReview)] == [InvalidTransition]
    review.refresh_from_db()
    decision.refresh_from_db()
    assert review.status == "RESOLVED" and decision.status == review.outcome
    expected = DriverStatus.ACTIVE if review.outcome == "LIFTED" else DriverStatus.SUSPENDED
    assert Driver.objects.get(id=driver.id).status == expected
    assert DisciplineReview.objects.filter(decision=decision).count() == 1
