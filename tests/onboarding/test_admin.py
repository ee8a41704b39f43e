"""The review queue in Django admin: a decision needs a reason, goes through the services
(audited override of the driver's status, admin log), and the queue pages render."""

from django.contrib.admin.models import LogEntry
from django.urls import reverse

from fleet.models import DriverStatus, DriverStatusChange
from onboarding.models import Application, ApplicationStatus, Review
from tests.onboarding.factories import add, signed_up
from tests.onboarding.test_services import denied_appeal, private_root  # noqa: F401 (fixtures)


def test_a_reviewer_decides_an_appeal_in_admin_with_a_reason(staff_client, denied_appeal):  # noqa: F811
    url = reverse("admin:onboarding_review_override_status", args=[denied_appeal.id])
    page = staff_client.get(url)
    assert page.status_code == 200
    missing = staff_client.post(url, {"to_status": "APPROVED", "reason": ""})
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    done = staff_client.post(url, {"to_status": "APPROVED", "reason": "Same person, checked by hand."})
    assert done.status_code == 302
    review = Review.objects.get(id=denied_appeal.id)
    assert (
        review.status == Review.Status.RESOLVED and review.resolved_reason == "Same person, checked by hand."
    )
    application = Application.objects.get(id=review.application_id)
    assert application.status == ApplicationStatus.APPROVED
    change = DriverStatusChange.objects.filter(driver_id=application.driver_id).latest("occurred_at")
    assert change.to_status == DriverStatus.ACTIVE and change.is_override
    assert LogEntry.objects.filter(object_id=str(review.id)).exists()


def test_the_queue_and_an_application_with_its_documents_render(staff_client, org, denied_appeal):  # noqa: F811
    add(signed_up(org), "ID_FRONT")
    for url in (
        reverse("admin:onboarding_review_changelist"),
        reverse("admin:onboarding_review_change", args=[denied_appeal.id]),
        reverse("admin:onboarding_application_changelist"),
        reverse("admin:onboarding_application_change", args=[Application.objects.first().id]),
        reverse("admin:onboarding_onboardingpolicy_changelist"),
        reverse("admin:onboarding_documentaccess_changelist"),
    ):
        assert staff_client.get(url).status_code == 200, url
