"""Every write of onboarding: sign-up, details, consents, documents, the pipeline and its
decision, screening webhooks, appeals and reviews, the document-expiry watch, biometric
retention and audited access to identity documents."""

import hashlib
import json
import logging
import secrets
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.db import lock
from core.events import record_event
from core.uploads import clean_image
from fleet import services as fleet_services
from fleet.models import VEHICLE_DEFAULT_CAPACITY, Driver, DriverStatus, Vehicle
from identity.models import Organisation, Role, User
from identity.services import save_user
from onboarding import decisions, screening
from onboarding.models import (
    BIOMETRIC_KINDS,
    EXPIRING_KINDS,
    ORIGINAL_KEPT_KINDS,
    Application,
    ApplicationStatus,
    CheckResult,
    Consent,
    Document,
    DocumentAccess,
    DocumentKind,
    DriverNotice,
    OnboardingPolicy,
    Review,
    ScreeningWebhookEvent,
)
from onboarding.pipeline import StepResult, run_checks, seen_as_declared
from onboarding.verification.liveness import new_challenge
from onboarding.verification.vin import check_vin

logger = logging.getLogger(__name__)
PIPELINE = Actor.system("onboarding-pipeline")
# The consent texts the applicant agrees to; the version is stored with each consent.
CONSENT_TEXTS = {
    Consent.Kind.DATA_PROCESSING: (
        "2026-12",
        "I agree that my identity document, selfie and short selfie video frames are checked "
        "automatically to confirm who I am. My selfie and video frames are deleted after the "
        "decision's retention period; my documents are kept while I drive.",
    ),
    Consent.Kind.BACKGROUND_CHECK: (
        "2026-12",
        "I agree to a background check by the organisation's screening provider.",
    ),
}
LIVENESS_FRAMES_MAX = 30


def policy_for(organisation: Organisation) -> OnboardingPolicy:
    """The organisation's onboarding policy, made with a fresh sign-up link on first use."""
    policy = OnboardingPolicy.objects.filter(organisation=organisation).first()
    if policy is None:
        policy, _ = OnboardingPolicy.objects.get_or_create(
            organisation=organisation,
            defaults={
                "signup_token": secrets.token_urlsafe(24),
                "deny_codes": sorted(decisions.DEFAULT_DENY_CODES),
            },
        )
    return policy


@transaction.atomic
def set_deny_codes(*, organisation: Organisation, deny_codes: list[str]) -> OnboardingPolicy:
    unknown = sorted(set(deny_codes) - set(decisions.REASON_TEXT))
    if unknown:
        raise ValidationError({"deny_codes": f"Unknown reason codes: {', '.join(unknown)}."})
    review_only = sorted(set(deny_codes) & decisions.REVIEW_ONLY_CODES)
    if review_only:
        raise ValidationError(
            {"deny_codes": f"Always reviewed by a person, never denied: {', '.join(review_only)}."}
        )
    policy = policy_for(organisation)
    policy.deny_codes = sorted(set(deny_codes))
    policy.save(update_fields=["deny_codes"])
    return policy


def _event(application: Application, event_type: str, actor: Actor, reason: str = "", **payload) -> None:
    record_event(
        organisation=application.organisation_id,
        event_type=event_type,
        subject_type="application",
        subject_id=application.id,
        actor=actor,
        reason=reason,
        payload={
            "application_id": str(application.id),
            "driver_id": str(application.driver_id),
            "status": application.status,
            **payload,
        },
    )


@transaction.atomic
def sign_up(
    *,
    signup_token: str,
    username: str,
    password: str,
    name: str,
    phone: str,
    email: str,
    vehicle_type: str,
    plate: str = "",
    vin: str = "",
) -> Application:
    """A new applicant account of the organisation whose sign-up link this is: a driver user,
    an APPLICANT driver with the declared vehicle (plate, VIN: the registration is compared
    with them), and a draft application."""
    policy = OnboardingPolicy.objects.select_related("organisation").filter(signup_token=signup_token).first()
    if policy is None or not policy.is_open:
        raise ValidationError({"signup_token": "This sign-up link is not valid (any more)."})
    organisation = policy.organisation
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This user name is taken."})
    if Driver.objects.filter(organisation=organisation, phone=phone).exists():
        raise ValidationError({"phone": "A driver of this organisation already has this phone number."})
    if plate and Vehicle.objects.filter(organisation=organisation, plate=plate).exists():
        raise ValidationError({"plate": "A vehicle of this organisation already has this plate."})
    if vehicle_type not in Vehicle.Type.values:
        raise ValidationError({"vehicle_type": f"One of {', '.join(Vehicle.Type.values)}."})
    if vin:
        checked = check_vin(vin)
        if not checked.valid:
            raise ValidationError({"vin": " ".join(checked.reasons)})
        vin = checked.vin
    user = User(username=username, email=email, organisation=organisation, role=Role.DRIVER)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    save_user(user=user)
    actor = Actor.for_user(user)
    driver = fleet_services.create_driver(
        organisation=organisation,
        name=name,
        phone=phone,
        email=email,
        fleet_type=Driver.FleetType.GIG,
        vehicle_type=vehicle_type,
        plate=plate,
        vin=vin,
        user=user,
        actor=actor,
    )
    application = Application.objects.create(
        organisation=organisation, driver=driver, declared_vehicle_type=vehicle_type
    )
    _event(application, "application.started", actor)
    return application


def _draft(application_id, driver: Driver) -> Application:
    application = lock(Application.objects).get(id=application_id, driver=driver)
    if application.status != ApplicationStatus.DRAFT:
        raise ValidationError(
            {"status": f"The application is {application.get_status_display()}: no more changes."}
        )
    return application


DETAIL_FIELDS = ("surname", "given_names", "birth_date", "document_number", "nationality")


@transaction.atomic
def set_details(*, application_id, driver: Driver, details: dict) -> Application:
    """The identity details as on the document (they are compared with its MRZ)."""
    application = _draft(application_id, driver)
    errors = {name: "Required." for name in DETAIL_FIELDS if not str(details.get(name) or "").strip()}
    if not errors:
        try:
            born = date.fromisoformat(str(details["birth_date"]))
        except ValueError:
            errors["birth_date"] = "A date as YYYY-MM-DD."
        else:
            if born >= timezone.now().date():
                errors["birth_date"] = "Must be in the past."
    if errors:
        raise ValidationError(errors)
    application.declared = {name: str(details[name]).strip() for name in DETAIL_FIELDS}
    application.save(update_fields=["declared", "updated_at"])
    return application


@transaction.atomic
def give_consent(*, application_id, driver: Driver, kind: str, text_version: str) -> Consent:
    """Record a consent with the version and hash of the text the applicant was shown."""
    application = _draft(application_id, driver)
    if kind not in CONSENT_TEXTS:
        raise ValidationError({"kind": f"One of {', '.join(CONSENT_TEXTS)}."})
    version, text = CONSENT_TEXTS[kind]
    if text_version != version:
        raise ValidationError({"text_version": f"The current text is version {version}; reload and read it."})
    consent, _ = Consent.objects.update_or_create(
        application=application,
        kind=kind,
        defaults={"text_version": version, "text_sha256": hashlib.sha256(text.encode()).hexdigest()},
    )
    return consent


@transaction.atomic
def start_liveness(*, application_id, driver: Driver) -> list[str]:
    """A fresh random challenge; frames of an earlier one are dropped."""
    application = _draft(application_id, driver)
    for frame in application.documents.filter(kind=DocumentKind.LIVENESS_FRAME):
        _delete_files(frame)
        frame.delete()
    application.liveness_challenge = new_challenge()
    application.save(update_fields=["liveness_challenge", "updated_at"])
    return application.liveness_challenge


def _delete_files(document: Document) -> None:
    for file_field in (document.file, document.original):
        if file_field:
            file_field.delete(save=False)


@transaction.atomic
def add_document(
    *, application_id, driver: Driver, kind: str, upload, field: str = "file", expires_on: date | None = None
) -> Document:
    """Store an upload checked by content (core.uploads): the re-encoded copy (no EXIF) and,
    for the kinds OCR reads, the original bytes; both in private storage. A kind holds one
    document (a new upload replaces it), except liveness frames, which are appended."""
    if kind not in DocumentKind.values:
        raise ValidationError({"kind": f"One of {', '.join(DocumentKind.values)}."})
    application = _draft(application_id, driver)
    if kind == DocumentKind.LIVENESS_FRAME and not application.liveness_challenge:
        raise ValidationError({"kind": "Start the liveness challenge first."})
    data = upload.read(settings.UPLOAD_MAX_IMAGE_BYTES + 1)
    cleaned = clean_image(ContentFile(data), field=field)
    existing = application.documents.filter(kind=kind)
    sequence = 0
    if kind == DocumentKind.LIVENESS_FRAME:
        sequence = existing.count()
        if sequence >= LIVENESS_FRAMES_MAX:
            raise ValidationError({field: f"At most {LIVENESS_FRAMES_MAX} frames."})
    else:
        for old in existing:
            _delete_files(old)
            old.delete()
    document = Document(
        organisation_id=application.organisation_id,
        application=application,
        kind=kind,
        sequence=sequence,
        sha256=hashlib.sha256(data).hexdigest(),
        expires_on=expires_on,
    )
    document.file.save(cleaned.name, cleaned, save=False)
    if kind in ORIGINAL_KEPT_KINDS:
        document.original.save(cleaned.name.rsplit(".", 1)[0] + ".orig", ContentFile(data), save=False)
    document.save()
    return document


def missing_for_submission(application: Application) -> dict[str, str]:
    """What the applicant still has to give, by field."""
    missing = {}
    if not application.declared:
        missing["details"] = "Enter your details as on your identity document."
    consents = set(application.consents.values_list("kind", flat=True))
    for kind in CONSENT_TEXTS:
        if kind not in consents:
            missing[f"consent_{kind.lower()}"] = "Consent is required."
    kinds = set(application.documents.values_list("kind", flat=True))
    for kind in (DocumentKind.ID_FRONT, DocumentKind.SELFIE, DocumentKind.VEHICLE_PHOTO):
        if kind not in kinds:
            missing[kind.lower()] = f"Upload the {DocumentKind(kind).label.lower()}."
    if DocumentKind.LIVENESS_FRAME not in kinds:
        missing["liveness_frame"] = "Take the live selfie challenge."
    return missing


@transaction.atomic
def submit(*, application_id, driver: Driver) -> Application:
    """Lock the application and queue the pipeline (after commit)."""
    from onboarding.tasks import run_application_pipeline

    application = _draft(application_id, driver)
    missing = missing_for_submission(application)
    if missing:
        raise ValidationError(missing)
    application.status = ApplicationStatus.SUBMITTED
    application.submitted_at = timezone.now()
    application.save(update_fields=["status", "submitted_at", "updated_at"])
    _event(application, "application.submitted", Actor.for_user(driver.user))
    transaction.on_commit(lambda: run_application_pipeline.delay(str(application.id)))
    return application


def _candidate(application: Application) -> screening.Candidate:
    declared = application.declared
    return screening.Candidate(
        application_id=str(application.id),
        first_name=declared.get("given_names", ""),
        last_name=declared.get("surname", ""),
        birth_date=declared.get("birth_date", ""),
        email=application.driver.email,
        document_number=declared.get("document_number", ""),
    )


def screening_provider() -> screening.ScreeningProvider:
    if settings.ONBOARDING_SCREENING_PROVIDER == "checkr":
        return screening.CheckrProvider(
            base_url=settings.CHECKR_API_URL,
            api_key=settings.CHECKR_API_KEY,
            package=settings.CHECKR_PACKAGE,
            timeout=settings.CHECKR_TIMEOUT_SECONDS,
        )
    return screening.LocalRulesProvider(
        consider_document_numbers=settings.ONBOARDING_LOCAL_SCREENING_CONSIDER
    )


SCREENING_CODES = {"consider": "SCREENING_CONSIDER", "suspended": "SCREENING_SUSPENDED"}


def _screening_result(provider: str, report: screening.ScreeningReport) -> StepResult:
    result = StepResult("screening", inputs={"provider": provider, "reference": report.reference})
    result.details = {"status": report.status, "result": report.result}
    code = SCREENING_CODES.get(report.result if report.status == "complete" else report.status)
    if code:
        result.codes.append(code)
    return result


def _store(application: Application, result: StepResult, *, pending: bool = False) -> None:
    CheckResult.objects.update_or_create(
        application=application,
        step=result.step,
        defaults={
            "outcome": CheckResult.Outcome.PENDING
            if pending
            else (CheckResult.Outcome.FAILED if result.codes else CheckResult.Outcome.PASSED),
            "reason_codes": result.codes,
            "inputs": json.loads(json.dumps(result.inputs, default=str)),
            "details": json.loads(json.dumps(result.details, default=str)),
        },
    )


PIPELINE_STEP = "pipeline"  # the CheckResult of a run that failed, until one succeeds


def run_pipeline(*, application_id, today: date | None = None) -> Application:
    """Run the checks (outside any transaction: OCR and face models take seconds), start the
    background check once, then store every result and decide in one transaction. Running it
    again for an application already past SUBMITTED does nothing.

    A run that raises is recorded (the exception's class for staff, a plain reason for the
    applicant) and left SUBMITTED for onboarding.resume_pipelines to try again; after
    ONBOARDING_PIPELINE_MAX_ATTEMPTS runs (a run killed midway counts too) a person reviews it."""
    today = today or timezone.now().date()
    with transaction.atomic():
        application = lock(Application.objects).select_related("driver").get(id=application_id)
        if application.status != ApplicationStatus.SUBMITTED:
            return application
        if application.pipeline_attempts >= settings.ONBOARDING_PIPELINE_MAX_ATTEMPTS:
            return _pipeline_failed(application, "the earlier runs did not finish (stopped or killed)")
        application.pipeline_attempts += 1
        application.save(update_fields=["pipeline_attempts", "updated_at"])
    try:
        return _check_and_decide(application, today)
    except Exception as exc:
        logger.exception(
            "The onboarding pipeline of %s failed (run %s)", application_id, application.pipeline_attempts
        )
        with transaction.atomic():
            application = lock(Application.objects).select_related("driver").get(id=application_id)
            if application.status != ApplicationStatus.SUBMITTED:
                return application
            return _pipeline_failed(application, type(exc).__name__)


def _pipeline_failed(application: Application, error: str) -> Application:
    """Record a run that failed (inside the caller's transaction); the last allowed run's
    failure sends the application to a person."""
    attempts, limit = application.pipeline_attempts, settings.ONBOARDING_PIPELINE_MAX_ATTEMPTS
    _store(
        application,
        StepResult(
            PIPELINE_STEP,
            codes=["PIPELINE_ERROR"],
            inputs={"run": attempts, "max_runs": limit},
            details={"reason": "verification failed to run", "error": error},
        ),
    )
    _event(
        application,
        "application.pipeline_failed",
        PIPELINE,
        "verification failed to run",
        error=error,
        run=attempts,
    )
    if attempts >= limit:
        return _decide(application)
    return application


def _check_and_decide(application: Application, today: date) -> Application:
    application_id = application.id
    results = run_checks(application, today=today)
    provider = screening_provider()
    existing = application.checks.filter(step="screening").first()
    report = None
    if existing is None:
        report = provider.start(_candidate(application))
    with transaction.atomic():
        application = lock(Application.objects).select_related("driver").get(id=application_id)
        if application.status != ApplicationStatus.SUBMITTED:
            return application
        application.checks.filter(step=PIPELINE_STEP).delete()
        for result in results:
            _store(application, result)
            for kind, expiry in result.expiries.items():
                application.documents.filter(kind=kind).update(expires_on=expiry)
        if report is not None:
            application.screening_provider = provider.name
            application.screening_reference = report.reference
            _store(application, _screening_result(provider.name, report), pending=report.status == "pending")
        if application.checks.filter(step="screening", outcome=CheckResult.Outcome.PENDING).exists():
            application.status = ApplicationStatus.SCREENING
            application.save(
                update_fields=["status", "screening_provider", "screening_reference", "updated_at"]
            )
            return application
        return _decide(application)


def _decide(application: Application) -> Application:
    """Decide from every stored check's codes by the organisation's policy, and apply it."""
    codes = [code for check in application.checks.all() for code in check.reason_codes]
    policy = policy_for(application.organisation)
    decision = decisions.decide(codes, deny_codes=policy.deny_codes)
    application.decision_codes = decision.codes
    application.decision_reason = decision.reason
    application.decided_at = timezone.now()
    inputs = {"codes": decision.codes, "checks": {c.step: c.reason_codes for c in application.checks.all()}}
    if decision.outcome == decisions.APPROVED:
        _approve(application, PIPELINE, decision.reason, inputs)
    elif decision.outcome == decisions.ACCESS_DENIED:
        application.status = ApplicationStatus.ACCESS_DENIED
        fleet_services.change_driver_status(
            driver_id=application.driver_id,
            organisation=application.organisation,
            action="deny_access",
            actor=PIPELINE,
            reason=decision.reason,
            inputs=inputs,
        )
    else:
        application.status = ApplicationStatus.MANUAL_REVIEW
        Review.objects.create(
            organisation_id=application.organisation_id, application=application, kind=Review.Kind.AUTOMATIC
        )
    application.save()
    _event(application, "application.decided", PIPELINE, decision.reason, codes=decision.codes)
    return application


def _approve(application: Application, actor: Actor, reason: str, inputs: dict, *, override=False) -> None:
    """ACTIVE driver; a vehicle the photo showed as another type than declared (a reviewer
    approved it) takes that type and its default capacity."""
    application.status = ApplicationStatus.APPROVED
    vehicle_check = application.checks.filter(step="vehicle").first()
    detected = ((vehicle_check.details if vehicle_check else {}) or {}).get("vehicle_type")
    vehicle = Vehicle.objects.filter(driver_id=application.driver_id, is_active=True).first()
    if vehicle is not None and detected and not seen_as_declared(detected, vehicle.type):
        kilograms, litres = VEHICLE_DEFAULT_CAPACITY[detected]
        fleet_services.update_vehicle(
            vehicle_id=vehicle.id,
            organisation=application.organisation,
            changes={"type": detected, "capacity_kg": kilograms, "capacity_litres": litres},
            actor=actor,
        )
    driver = Driver.objects.get(id=application.driver_id)
    if override or driver.status not in (DriverStatus.APPLICANT, DriverStatus.ACCESS_DENIED):
        fleet_services.force_driver_status(
            driver_id=driver.id,
            organisation=application.organisation,
            to_status=DriverStatus.ACTIVE,
            actor=actor,
            reason=reason,
        )
    else:
        fleet_services.change_driver_status(
            driver_id=driver.id,
            organisation=application.organisation,
            action="approve",
            actor=actor,
            reason=reason,
            inputs=inputs,
        )


def handle_screening_webhook(*, body: bytes, signature: str) -> str:
    """A Checkr webhook: signature checked, each event id applied once, the report's result
    stored and, if the application waited on it, the decision taken. Returns what happened."""
    if not screening.signature_valid(body, signature, settings.CHECKR_API_KEY):
        raise PermissionDenied("The X-Checkr-Signature does not match the body.")
    try:
        event = json.loads(body)
        event_id = str(event["id"])
        report = screening.report_of(event["data"]["object"])
    except (ValueError, KeyError, TypeError, screening.ScreeningError) as exc:
        raise ValidationError({"body": f"Not a Checkr report event: {exc}"}) from exc
    with transaction.atomic():
        try:
            with transaction.atomic():
                ScreeningWebhookEvent.objects.create(provider="checkr", event_id=event_id)
        except IntegrityError:
            return "replay"
        return _apply_report("checkr", report)


def _apply_report(provider: str, report: screening.ScreeningReport) -> str:
    """Store a provider's report on its application and decide if the application waited on it
    (inside the caller's transaction)."""
    application = (
        lock(Application.objects)
        .select_related("driver", "organisation")
        .filter(screening_provider=provider, screening_reference=report.reference)
        .first()
    )
    if application is None:
        return "unknown report"
    _store(application, _screening_result(provider, report), pending=report.status == "pending")
    if report.status != "pending" and application.status == ApplicationStatus.SCREENING:
        _decide(application)
        return "decided"
    return "stored"


def refresh_screening(*, application_id) -> str:
    """Ask the provider for a pending report (a webhook may have been lost) and apply it."""
    application = Application.objects.get(id=application_id)
    if application.status != ApplicationStatus.SCREENING:
        return "not waiting"
    provider = screening_provider()
    if provider.name != application.screening_provider:
        return "another provider"
    report = provider.fetch(application.screening_reference)  # outside the transaction: HTTP
    with transaction.atomic():
        return _apply_report(provider.name, report)


@transaction.atomic
def appeal(*, application_id, driver: Driver, text: str) -> Review:
    """The applicant contests a denial: a human review is queued."""
    application = lock(Application.objects).get(id=application_id, driver=driver)
    if application.status != ApplicationStatus.ACCESS_DENIED:
        raise ValidationError({"status": "Only a denied application can be appealed."})
    if not text.strip():
        raise ValidationError({"text": "Tell us why the decision is wrong."})
    if application.reviews.exclude(status=Review.Status.RESOLVED).exists():
        raise ValidationError({"status": "Your appeal is already in the review queue."})
    review = Review.objects.create(
        organisation_id=application.organisation_id,
        application=application,
        kind=Review.Kind.APPEAL,
        appeal_text=text.strip(),
    )
    _event(application, "application.appealed", Actor.for_user(driver.user), text.strip())
    return review


RESOLUTIONS = (decisions.APPROVED, decisions.ACCESS_DENIED)


@transaction.atomic
def resolve_review(*, review_id, organisation: Organisation, outcome: str, reason: str, user) -> Review:
    """A reviewer decides. With ONBOARDING_FOUR_EYES, a decision that goes against the checks
    (approving what they denied or sent to review, denying what they let through) is only a
    proposal until a second, different reviewer confirms the same outcome."""
    if outcome not in RESOLUTIONS:
        raise ValidationError({"outcome": f"One of {', '.join(RESOLUTIONS)}."})
    if not reason.strip():
        raise ValidationError({"reason": "A decision about an applicant needs a reason they can read."})
    review = lock(Review.objects).select_related("application").get(id=review_id, organisation=organisation)
    if review.status == Review.Status.RESOLVED:
        raise ValidationError({"status": "This review is already resolved."})
    application = lock(Application.objects).select_related("organisation").get(id=review.application_id)
    automatic = decisions.decide(application.decision_codes, deny_codes=policy_for(organisation).deny_codes)
    if settings.ONBOARDING_FOUR_EYES and outcome != automatic.outcome:
        if review.status != Review.Status.AWAITING_SECOND or review.proposed_outcome != outcome:
            review.status = Review.Status.AWAITING_SECOND
            review.proposed_outcome, review.proposed_reason, review.proposed_by = (
                outcome,
                reason.strip(),
                user,
            )
            review.save()
            return review
        if review.proposed_by_id == user.pk:
            raise ValidationError({"user": "Four eyes: a second reviewer must confirm this decision."})
    actor = Actor.for_user(user)
    inputs = {"review": str(review.id), "codes": application.decision_codes, "override": True}
    if outcome == decisions.APPROVED:
        _approve(application, actor, reason.strip(), inputs, override=True)
    else:
        application.status = ApplicationStatus.ACCESS_DENIED
        driver = Driver.objects.get(id=application.driver_id)
        if driver.status != DriverStatus.ACCESS_DENIED:
            fleet_services.force_driver_status(
                driver_id=driver.id,
                organisation=organisation,
                to_status=DriverStatus.ACCESS_DENIED,
                actor=actor,
                reason=reason.strip(),
            )
    application.decision_reason = reason.strip()
    application.decided_at = timezone.now()
    application.save()
    review.status = Review.Status.RESOLVED
    review.resolved_outcome, review.resolved_reason, review.resolved_by = outcome, reason.strip(), user
    review.resolved_at = timezone.now()
    review.save()
    _event(
        application, "application.reviewed", actor, reason.strip(), outcome=outcome, review_id=str(review.id)
    )
    return review


def watch_document_expiry(*, today: date | None = None) -> dict[str, int]:
    """Tell active drivers N days before a watched document lapses; suspend them (with the
    reason) once it has. Each notice is written once per document and expiry date."""
    today = today or timezone.now().date()
    horizon = today + timedelta(days=settings.ONBOARDING_EXPIRY_NOTICE_DAYS)
    counts = {"warned": 0, "suspended": 0}
    documents = Document.objects.filter(
        kind__in=EXPIRING_KINDS,
        expires_on__lte=horizon,
        application__status=ApplicationStatus.APPROVED,
        application__driver__status=DriverStatus.ACTIVE,
    ).select_related("application__driver", "application__organisation")
    for document in documents:
        with transaction.atomic():
            driver = lock(Driver.objects).get(id=document.application.driver_id)
            if driver.status != DriverStatus.ACTIVE:
                continue
            label = document.get_kind_display().lower()
            if document.expires_on < today:
                message = f"Your {label} expired on {document.expires_on:%Y-%m-%d}. Upload a valid one to drive again."
                DriverNotice.objects.get_or_create(
                    driver=driver,
                    document=document,
                    kind=DriverNotice.Kind.LAPSED,
                    expires_on=document.expires_on,
                    defaults={"message": message},
                )
                if driver.is_online:
                    fleet_services.set_driver_online(
                        driver_id=driver.id,
                        organisation=document.application.organisation,
                        online=False,
                        actor=PIPELINE,
                    )
                fleet_services.change_driver_status(
                    driver_id=driver.id,
                    organisation=document.application.organisation,
                    action="suspend",
                    actor=Actor.system("onboarding-document-expiry"),
                    reason=message,
                    inputs={
                        "document": str(document.id),
                        "kind": document.kind,
                        "expires_on": str(document.expires_on),
                    },
                )
                counts["suspended"] += 1
            else:
                _, made = DriverNotice.objects.get_or_create(
                    driver=driver,
                    document=document,
                    kind=DriverNotice.Kind.EXPIRING,
                    expires_on=document.expires_on,
                    defaults={
                        "message": f"Your {label} expires on {document.expires_on:%Y-%m-%d}. "
                        "Upload a new one before then to keep driving."
                    },
                )
                counts["warned"] += made
    return counts


def purge_biometrics(*, now: datetime | None = None) -> int:
    """Delete selfies and liveness frames (files and face data in check details) of
    applications decided more than ONBOARDING_BIOMETRIC_RETENTION_DAYS ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ONBOARDING_BIOMETRIC_RETENTION_DAYS)
    purged = 0
    documents = Document.objects.filter(
        kind__in=BIOMETRIC_KINDS, purged_at__isnull=True, application__decided_at__lt=cutoff
    )
    for document in documents:
        with transaction.atomic():
            _delete_files(document)
            document.file = ""
            document.original = ""
            document.purged_at = now
            document.save(update_fields=["file", "original", "purged_at"])
            CheckResult.objects.filter(
                application_id=document.application_id, step__in=("face", "liveness")
            ).update(details={})
            purged += 1
    return purged


def may_view_documents(user, organisation_id) -> bool:
    return bool(
        user.is_authenticated
        and user.organisation_id == organisation_id
        and (user.role == Role.ORG_ADMIN or user.has_perm("onboarding.view_identity_document"))
    )


@transaction.atomic
def open_document(*, document_id, user, remote_addr: str = "", original: bool = False):
    """An identity document's file for authorised staff of its organisation; every opening is
    written to the audit trail (DocumentAccess). Anyone else: PermissionDenied."""
    document = Document.objects.select_related("application").filter(id=document_id).first()
    if document is None or not may_view_documents(user, document.organisation_id):
        raise PermissionDenied("You may not view this document.")
    file_field = document.original if original else document.file
    if not file_field:
        raise ValidationError({"document": "This file has been deleted (retention)."})
    DocumentAccess.objects.create(
        document=document, remote_addr=remote_addr[:45], **Actor.for_user(user).as_fields()
    )
    return document, file_field.open("rb")
