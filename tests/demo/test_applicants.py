"""The demo's applicants go through the real flow and land in the three states; the review
queue has work; running it again adds nothing."""

import pytest

from onboarding.models import Application, ApplicationStatus, Review


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"


@pytest.mark.django_db(transaction=True)
def test_the_demo_applicants_are_approved_in_review_and_denied_with_an_appeal(org):
    from demo.applicants import seed_applicants

    made = seed_applicants(org)
    statuses = {a.driver.user.username: a.status for a in made}
    assert statuses == {
        "applicant-clean": ApplicationStatus.APPROVED,
        "applicant-typo": ApplicationStatus.MANUAL_REVIEW,
        "applicant-stranger": ApplicationStatus.ACCESS_DENIED,
    }
    denied = Application.objects.get(driver__user__username="applicant-stranger")
    assert "FACE_MISMATCH" in denied.decision_codes and denied.decision_reason
    queue = Review.objects.filter(organisation=org, status=Review.Status.OPEN)
    assert sorted(queue.values_list("kind", flat=True)) == [Review.Kind.APPEAL, Review.Kind.AUTOMATIC]
    assert seed_applicants(org) == []
