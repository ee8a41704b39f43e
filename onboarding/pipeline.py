"""The checks of one application, read-only: each step reads the stored documents, calls the
pure verification engines and returns a StepResult (reason codes, inputs summary, details).
services.run_pipeline stores them and decides; nothing here writes."""

from dataclasses import dataclass, field
from datetime import date

from onboarding.models import Application, Document, DocumentKind
from onboarding.verification import faces, liveness, ocr, vehicles
from onboarding.verification.images import UnreadableImage


@dataclass
class StepResult:
    step: str
    codes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


def _read(file_field) -> bytes:
    with file_field.open("rb") as handle:
        return handle.read()


def _one(docs: list[Document], kind: str) -> Document | None:
    return next((doc for doc in docs if doc.kind == kind), None)


def documents_step(application: Application, docs: list[Document], *, today: date) -> StepResult:
    """Expired papers (declared expiry of licence, insurance) and re-used files: the same
    bytes in another application, or one photo uploaded as two things."""
    result = StepResult("documents", inputs={"documents": sorted(f"{d.kind}:{d.sha256[:12]}" for d in docs)})
    expired = sorted(d.kind for d in docs if d.expires_on and d.expires_on < today)
    if expired:
        result.codes.append("DOC_EXPIRED")
        result.details["expired"] = expired
    hashes = [d.sha256 for d in docs if d.kind != DocumentKind.LIVENESS_FRAME]
    reused = (
        Document.objects.filter(sha256__in=hashes)
        .exclude(application=application)
        .values_list("kind", flat=True)
    )
    if reused or len(set(hashes)) < len(hashes):
        result.codes.append("TAMPERING_SUSPECTED")
        result.details["reused"] = sorted(set(reused)) or ["the same file uploaded twice"]
    return result


def identity_step(application: Application, docs: list[Document], *, today: date) -> StepResult:
    """The ID's MRZ: check digits, expiry, the applicant's declared details, the printed page."""
    result = StepResult("identity", inputs={"declared": application.declared})
    front = _one(docs, DocumentKind.ID_FRONT)
    if front is None:
        result.codes.append("DOCUMENT_MISSING")
        return result
    image = _read(front.original or front.file)
    try:
        mrz = ocr.read_mrz(image, today=today)
    except (ocr.NoMrzFound, UnreadableImage) as exc:
        result.codes.append("MRZ_NOT_FOUND")
        result.details["error"] = str(exc)
        return result
    result.details["mrz"] = {"doc_type": mrz.doc_type, "fields": mrz.fields, "checks": mrz.checks}
    if not mrz.valid:
        result.codes.append("MRZ_CHECK_DIGIT")
        result.details["mrz_reasons"] = mrz.reasons
    expiry = mrz.fields.get("expiry_date")
    if expiry:
        result.details["expires_on"] = expiry
        if date.fromisoformat(expiry) < today:
            result.codes.append("DOC_EXPIRED")
    declared = ocr.cross_check(mrz.fields, declared=application.declared)
    if declared:
        result.codes.append("MRZ_APPLICANT_MISMATCH")
        result.details["declared_mismatches"] = [m.reason for m in declared]
    visual = ocr.cross_check(mrz.fields, visual_text=ocr.read_visual_zone(image))
    if visual:
        result.codes.append("MRZ_VISUAL_MISMATCH")
        result.details["visual_mismatches"] = [m.reason for m in visual]
    return result


def face_step(application: Application, docs: list[Document]) -> StepResult:
    front, selfie = _one(docs, DocumentKind.ID_FRONT), _one(docs, DocumentKind.SELFIE)
    result = StepResult("face")
    if front is None or selfie is None:
        result.codes.append("DOCUMENT_MISSING")
        return result
    result.inputs = {"id_front": front.sha256[:12], "selfie": selfie.sha256[:12]}
    try:
        comparison = faces.compare_faces(_read(front.file), _read(selfie.file))
    except UnreadableImage as exc:
        result.codes.append("FACE_NOT_FOUND")
        result.details["error"] = str(exc)
        return result
    result.details = {
        "match": comparison.match,
        "distance": comparison.distance,
        "faces": list(comparison.faces),
        "tolerance": comparison.tolerance,
        "reason": comparison.reason,
    }
    if comparison.faces != (1, 1):
        result.codes.append("FACE_NOT_FOUND")
    elif not comparison.match:
        result.codes.append("FACE_MISMATCH")
    return result


def liveness_step(application: Application, docs: list[Document]) -> StepResult:
    """The frames follow the challenge, and the live face is the selfie's (else a photo of
    someone else could pass the selfie while another person does the challenge)."""
    frames = [d for d in docs if d.kind == DocumentKind.LIVENESS_FRAME]
    result = StepResult(
        "liveness", inputs={"challenge": application.liveness_challenge, "frames": len(frames)}
    )
    if not frames or sorted(application.liveness_challenge) != sorted(liveness.ACTIONS):
        result.codes.append("LIVENESS_FAILED")
        result.details["reasons"] = ["no challenge answered"]
        return result
    try:
        check = liveness.check_liveness([_read(d.file) for d in frames], application.liveness_challenge)
    except UnreadableImage as exc:
        result.codes.append("LIVENESS_FAILED")
        result.details["reasons"] = [str(exc)]
        return result
    reasons = list(check.reasons)
    selfie = _one(docs, DocumentKind.SELFIE)
    if selfie is not None:
        same = faces.compare_faces(_read(selfie.file), _read(frames[0].file))
        result.details["selfie_distance"] = same.distance
        if not same.match:
            reasons.append(f"the live face is not the selfie's ({same.reason})")
    result.details.update(
        {"passed": check.passed and not reasons, "reasons": reasons, "observed": check.observed}
    )
    if reasons or not check.passed:
        result.codes.append("LIVENESS_FAILED")
    return result


def vehicle_step(application: Application, docs: list[Document]) -> StepResult:
    photo = _one(docs, DocumentKind.VEHICLE_PHOTO)
    result = StepResult("vehicle", inputs={"declared_type": application.declared_vehicle_type})
    if photo is None:
        result.codes.append("DOCUMENT_MISSING")
        return result
    try:
        found = vehicles.detect_vehicle(_read(photo.file))
    except UnreadableImage as exc:
        result.codes.append("VEHICLE_NOT_FOUND")
        result.details["reason"] = str(exc)
        return result
    result.details = {
        "vehicle_type": found.vehicle_type,
        "confidence": round(found.confidence, 3),
        "capacity": found.capacity,
        "reason": found.reason,
    }
    if found.vehicle_type is None:
        result.codes.append("VEHICLE_NOT_FOUND")
    elif found.vehicle_type != application.declared_vehicle_type:
        result.codes.append("VEHICLE_TYPE_MISMATCH")
    return result


def run_checks(application: Application, *, today: date) -> list[StepResult]:
    """Every automatic step but screening (services.run_pipeline handles the provider)."""
    docs = list(application.documents.filter(purged_at__isnull=True).order_by("kind", "sequence"))
    return [
        documents_step(application, docs, today=today),
        identity_step(application, docs, today=today),
        face_step(application, docs),
        liveness_step(application, docs),
        vehicle_step(application, docs),
    ]
