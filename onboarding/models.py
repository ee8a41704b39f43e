"""Driver applications: the applicant's details, consents, documents, each check's result,
the decision, appeals and reviews, and who looked at an identity document."""

import os
import uuid

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q

from core.models import ActorFields
from fleet.models import Driver
from identity.models import Organisation


class PrivateStorage(FileSystemStorage):
    """Identity documents and biometrics: ONBOARDING_PRIVATE_ROOT, outside MEDIA_ROOT and the
    static root, with no URL; only onboarding's permission-checked view serves them. The root is
    read from settings at each use (not frozen when the model class is made)."""

    def __init__(self) -> None:
        super().__init__(base_url=None)

    @property
    def base_location(self):
        return settings.ONBOARDING_PRIVATE_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)


def private_storage() -> FileSystemStorage:
    return PrivateStorage()


class OnboardingPolicy(models.Model):
    """An organisation's sign-up link and which reason codes deny (the rest go to review)."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="onboarding")
    signup_token = models.CharField(max_length=64, unique=True)
    is_open = models.BooleanField(default=True)
    deny_codes = models.JSONField(default=list)

    class Meta:
        verbose_name_plural = "onboarding policies"

    def __str__(self) -> str:
        return f"Onboarding of {self.organisation}"


class ApplicationStatus(models.TextChoices):
    DRAFT = "DRAFT", "Filling in"
    SUBMITTED = "SUBMITTED", "Being checked"
    SCREENING = "SCREENING", "Background check pending"
    MANUAL_REVIEW = "MANUAL_REVIEW", "In review"
    APPROVED = "APPROVED", "Approved"
    ACCESS_DENIED = "ACCESS_DENIED", "Denied"


class Application(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="applications")
    driver = models.OneToOneField(Driver, on_delete=models.CASCADE, related_name="application")
    status = models.CharField(
        max_length=16, choices=ApplicationStatus.choices, default=ApplicationStatus.DRAFT
    )
    # What the applicant declared, in the MRZ's field names (surname, given_names, birth_date...).
    declared = models.JSONField(default=dict, blank=True)
    declared_vehicle_type = models.CharField(max_length=16)
    liveness_challenge = models.JSONField(default=list, blank=True)
    decision_codes = models.JSONField(default=list, blank=True)
    decision_reason = models.TextField(blank=True)
    # Runs of the pipeline started: bounded (ONBOARDING_PIPELINE_MAX_ATTEMPTS), then a person.
    pipeline_attempts = models.PositiveSmallIntegerField(default=0)
    screening_provider = models.CharField(max_length=16, blank=True)
    screening_reference = models.CharField(max_length=64, blank=True, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organisation", "status"])]

    def __str__(self) -> str:
        return f"Application of {self.driver.name}"


class CheckResult(models.Model):
    """One pipeline step's result: what it looked at, what it found, why. Re-running a step
    replaces its row (one per application and step), so steps are idempotent."""

    class Outcome(models.TextChoices):
        PASSED = "PASSED"
        FAILED = "FAILED"
        PENDING = "PENDING"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="checks")
    step = models.CharField(max_length=24)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason_codes = models.JSONField(default=list, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["application", "step"]
        constraints = [models.UniqueConstraint(fields=["application", "step"], name="one_result_per_step")]

    def __str__(self) -> str:
        return f"{self.step}: {self.outcome}"


class DocumentKind(models.TextChoices):
    ID_FRONT = "ID_FRONT", "Identity document, front"
    ID_BACK = "ID_BACK", "Identity document, back"
    SELFIE = "SELFIE", "Selfie"
    LIVENESS_FRAME = "LIVENESS_FRAME", "Liveness frame"
    VEHICLE_PHOTO = "VEHICLE_PHOTO", "Vehicle photo"
    VEHICLE_REGISTRATION = "VEHICLE_REGISTRATION", "Vehicle registration"
    DRIVING_LICENCE = "DRIVING_LICENCE", "Driving licence"
    DRIVING_LICENCE_BACK = "DRIVING_LICENCE_BACK", "Driving licence, back (US/Canada: the barcode)"
    INSURANCE = "INSURANCE", "Insurance"


BIOMETRIC_KINDS = frozenset({DocumentKind.SELFIE, DocumentKind.LIVENESS_FRAME})
# Kinds whose untouched original a check reads (OCR suffers from re-encoding): kept privately.
ORIGINAL_KEPT_KINDS = frozenset(
    {
        DocumentKind.ID_FRONT,
        DocumentKind.ID_BACK,
        DocumentKind.VEHICLE_REGISTRATION,
        DocumentKind.INSURANCE,
        DocumentKind.DRIVING_LICENCE_BACK,
    }
)
# Kinds with an expiry date that is watched after approval.
EXPIRING_KINDS = frozenset(
    {
        DocumentKind.ID_FRONT,
        DocumentKind.DRIVING_LICENCE,
        DocumentKind.DRIVING_LICENCE_BACK,
        DocumentKind.INSURANCE,
    }
)


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=24, choices=DocumentKind.choices)
    sequence = models.PositiveSmallIntegerField(default=0)  # order of liveness frames
    # The re-encoded copy (no EXIF): what staff are shown and what face checks read.
    file = models.FileField(storage=private_storage, upload_to="onboarding/%Y/%m/", blank=True)
    # The bytes as uploaded, for OCR; only for ORIGINAL_KEPT_KINDS.
    original = models.FileField(storage=private_storage, upload_to="onboarding/originals/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    expires_on = models.DateField(null=True, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["application", "kind", "sequence"]
        permissions = [("view_identity_document", "May view applicants' identity documents")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.application_id}"


class Consent(models.Model):
    class Kind(models.TextChoices):
        DATA_PROCESSING = "DATA_PROCESSING", "Processing of my documents and biometrics"
        BACKGROUND_CHECK = "BACKGROUND_CHECK", "Background check"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    text_version = models.CharField(max_length=32)
    text_sha256 = models.CharField(max_length=64)
    given_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["application", "kind"], name="one_consent_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.text_version}"


class Review(models.Model):
    """A human look at an application: automatic (MANUAL_REVIEW) or the applicant's appeal."""

    class Kind(models.TextChoices):
        AUTOMATIC = "AUTOMATIC", "Sent to review by the checks"
        APPEAL = "APPEAL", "Appeal by the applicant"

    class Status(models.TextChoices):
        OPEN = "OPEN"
        AWAITING_SECOND = "AWAITING_SECOND", "Awaiting a second reviewer"
        RESOLVED = "RESOLVED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="reviews")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    appeal_text = models.TextField(blank=True)
    proposed_outcome = models.CharField(max_length=16, blank=True)
    proposed_reason = models.TextField(blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_outcome = models.CharField(max_length=16, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["application"],
                condition=~Q(status="RESOLVED"),
                name="one_open_review_per_application",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} review of {self.application_id}: {self.status}"


class DocumentAccess(ActorFields):
    """Who looked at an identity document, when (every view of the private file)."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="accesses")
    accessed_at = models.DateTimeField(auto_now_add=True)
    remote_addr = models.CharField(max_length=45, blank=True)

    class Meta:
        ordering = ["-accessed_at"]


class ScreeningWebhookEvent(models.Model):
    """A provider's webhook event, kept by id so a replay is applied once."""

    provider = models.CharField(max_length=16)
    event_id = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="screening_event_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id}"


class DriverNotice(models.Model):
    """What a driver is told about their documents (expiring soon, lapsed); one per document,
    kind and expiry date, so the daily watch tells them once."""

    class Kind(models.TextChoices):
        EXPIRING = "EXPIRING", "Document expiring soon"
        LAPSED = "LAPSED", "Document lapsed"

    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="onboarding_notices")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    expires_on = models.DateField()
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["document", "kind", "expires_on"], name="one_notice_per_expiry")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.document_id} {self.expires_on}"
