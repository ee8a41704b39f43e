"""Reads of onboarding: an applicant's own application with its progress, the review queue."""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from onboarding.decisions import REASON_TEXT
from onboarding.models import Application, ApplicationStatus, DocumentKind, Review
from onboarding.services import CONSENT_TEXTS, missing_for_submission

STEPS = ("details", "consents", "id_document", "selfie", "liveness", "vehicle", "submitted", "decided")


def own_application(driver) -> Application | None:
    return (
        Application.objects.filter(driver=driver)
        .prefetch_related("checks", "consents", "documents", "driver__onboarding_notices")
        .first()
    )


def progress(application: Application) -> dict:
    """The steps done, what is missing, each check's outcome and the reasons in plain words."""
    kinds = {doc.kind for doc in application.documents.all()}
    done = {
        "details": bool(application.declared),
        "consents": len(application.consents.all()) == len(CONSENT_TEXTS),
        "id_document": DocumentKind.ID_FRONT in kinds,
        "selfie": DocumentKind.SELFIE in kinds,
        "liveness": DocumentKind.LIVENESS_FRAME in kinds,
        "vehicle": DocumentKind.VEHICLE_PHOTO in kinds,
        "submitted": application.submitted_at is not None,
        "decided": application.decided_at is not None,
    }
    return {
        "steps": [{"step": step, "done": done[step]} for step in STEPS],
        "percent": round(100 * sum(done.values()) / len(STEPS)),
        "missing": missing_for_submission(application) if application.status == "DRAFT" else {},
        "reasons": [
            {"code": code, "text": REASON_TEXT.get(code, code)} for code in application.decision_codes
        ],
    }


def applications_of(organisation) -> QuerySet[Application]:
    return (
        Application.objects.filter(organisation=organisation)
        .select_related("driver")
        .prefetch_related("checks", "documents")
    )


def review_queue(organisation) -> QuerySet[Review]:
    return (
        Review.objects.filter(organisation=organisation)
        .select_related("application__driver", "proposed_by", "resolved_by")
        .prefetch_related(Prefetch("application__checks"))
        .order_by("status", "created_at")
    )


def stuck_application_ids(*, older_than: timedelta, status: str = ApplicationStatus.SUBMITTED) -> list:
    """Applications submitted longer ago than `older_than` and still in `status`."""
    cutoff = timezone.now() - older_than
    return list(
        Application.objects.filter(status=status, submitted_at__lt=cutoff).values_list("id", flat=True)
    )
