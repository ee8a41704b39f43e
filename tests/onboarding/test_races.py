"""Nothing applied twice: two reviewers deciding one review at once, and one screening event
delivered twice at once. PostgreSQL: row locks and the unique event id order them; SpatiaLite:
one writer at a time. Either way one decision, one status change."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection

from fleet.models import DriverStatus, DriverStatusChange
from identity.models import Role
from onboarding import services
from onboarding.models import Application, Review, ScreeningWebhookEvent
from tests.conftest import make_user
from tests.onboarding.test_screening import checkr, event, signed, waiting  # noqa: F401 (fixtures)
from tests.onboarding.test_services import denied_appeal, private_root  # noqa: F401 (fixtures)


def race(*writes) -> list:
    barrier = threading.Barrier(len(writes))
    results = []

    def run(write):
        try:
            barrier.wait()
            results.append(write())
        except (ValidationError, OperationalError) as exc:
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
def test_two_reviewers_deciding_at_once_give_one_decision(org, settings, denied_appeal):  # noqa: F811
    settings.ONBOARDING_FOUR_EYES = False
    reviewers = [make_user(org, Role.ORG_ADMIN, f"racer-{n}") for n in range(2)]
    driver_id = denied_appeal.application.driver_id
    before = DriverStatusChange.objects.filter(driver_id=driver_id).count()
    results = race(
        lambda: services.resolve_review(
            review_id=denied_appeal.id,
            organisation=org,
            outcome="APPROVED",
            reason="Me first.",
            user=reviewers[0],
        ),
        lambda: services.resolve_review(
            review_id=denied_appeal.id,
            organisation=org,
            outcome="ACCESS_DENIED",
            reason="No, me.",
            user=reviewers[1],
        ),
    )
    review = Review.objects.get(id=denied_appeal.id)
    assert review.status == Review.Status.RESOLVED
    assert sum(isinstance(r, Review) for r in results) == 1, results
    application = Application.objects.get(id=review.application_id)
    assert application.status == review.resolved_outcome
    expected = DriverStatus.ACTIVE if review.resolved_outcome == "APPROVED" else DriverStatus.ACCESS_DENIED
    assert application.driver.status == expected
    # Approving moves the driver; confirming the denial they already have changes nothing.
    assert DriverStatusChange.objects.filter(driver_id=driver_id).count() == before + (
        expected == DriverStatus.ACTIVE
    )


@pytest.mark.django_db(transaction=True)
def test_one_webhook_event_delivered_twice_at_once_is_applied_once(waiting):  # noqa: F811
    body = event("evt_race", "rep_1", "complete", "clear")
    results = race(
        *[lambda: services.handle_screening_webhook(body=body, signature=signed(body)) for _ in range(2)]
    )
    assert sorted(str(r) for r in results) in (["decided", "replay"], ["decided", "database is locked"]), (
        results
    )
    assert ScreeningWebhookEvent.objects.filter(event_id="evt_race").count() == 1
    waiting.refresh_from_db()
    assert waiting.status == "APPROVED"
    assert (
        DriverStatusChange.objects.filter(driver_id=waiting.driver_id, to_status=DriverStatus.ACTIVE).count()
        == 1
    )
