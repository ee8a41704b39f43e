"""The checks of one application, read-only: each step reads the stored documents, calls the
pure verification engines and returns a StepResult (reason codes, inputs summary, details).
services.run_pipeline stores them and decides; nothing here writes."""

from dataclasses import dataclass, field
from datetime import date

from fleet.models import VEHICLE_DEFAULT_CAPACITY, Vehicle
from onboarding.models import Application, Document, DocumentKind
from onboarding.verification import faces, liveness, ocr, pdf417, vehicles
from onboarding.verification.images import UnreadableImage
from onboarding.verification.mrz import fillers_misread, name_as_mrz
from onboarding.verification.vehicle_documents import parse_vehicle_document, plate_key
from onboarding.verification.vin import check_vin


@dataclass
class StepResult:
    step: str
    codes: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    # Expiry dates read from documents (kind -> ISO date): they replace the declared ones, and
    # the expiry watch follows them.
    expiries: dict[str, str] = field(default_factory=dict)


def _read(file_field) -> bytes:
    with file_field.open("rb") as handle:
        return handle.read()


def _one(docs: list[Document], kind: str) -> Document | None:
    return next((doc for doc in docs if doc.kind == kind), None)


def documents_step(
    application: Application,
    docs: list[Document],
    *,
    today: date,
    read_expiries: dict[str, str] | None = None,
) -> StepResult:
    """Expired papers by their declared expiry (where no check read one from the document
    itself: ``read_expiries`` win, their own steps judge them) and re-used files: the same
    bytes in another application, or one photo uploaded as two things."""
    result = StepResult("documents", inputs={"documents": sorted(f"{d.kind}:{d.sha256[:12]}" for d in docs)})
    read = read_expiries or {}
    expired = sorted(d.kind for d in docs if d.kind not in read and d.expires_on and d.expires_on < today)
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
        result.expiries[DocumentKind.ID_FRONT] = expiry
        if date.fromisoformat(expiry) < today:
            result.codes.append("DOC_EXPIRED")
    declared = ocr.cross_check(mrz.fields, declared=application.declared)
    visual = ocr.cross_check(mrz.fields, visual_text=ocr.read_visual_zone(image))
    names = [m for m in declared + visual if m.field in ("surname", "given_names")]
    if names and _name_misread(mrz, application.declared):
        # a filler read as K or C is no other person: a person compares, never a denial
        result.codes.append("MRZ_NAME_UNCERTAIN")
        result.details["name_uncertain"] = [m.reason for m in names] + [
            f"the MRZ's name {mrz.name_field!r} was repaired, or holds fillers read as letters"
        ]
        declared = [m for m in declared if m not in names]
        visual = [m for m in visual if m not in names]
    if declared:
        result.codes.append("MRZ_APPLICANT_MISMATCH")
        result.details["declared_mismatches"] = [m.reason for m in declared]
    if visual:
        result.codes.append("MRZ_VISUAL_MISMATCH")
        result.details["visual_mismatches"] = [m.reason for m in visual]
    return result


def _name_misread(mrz, declared: dict) -> bool:
    """Could OCR's confusion of fillers and K, C, X, L explain a name mismatch? Either the
    MRZ as read holds the declared name plus such letters, or repair turned a K of the name
    line into a filler and the declared name is the MRZ's plus such letters."""
    surname, given = declared.get("surname", ""), declared.get("given_names", "")
    if fillers_misread(mrz.name_field, surname, given):
        return True
    return mrz.name_repaired and fillers_misread(
        name_as_mrz(surname, given), mrz.fields["surname"] or "", mrz.fields["given_names"] or ""
    )


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


# The fleet's default capacity per vehicle type (fleet owns the table), as the vehicle engine
# and the API show it.
VEHICLE_CAPACITIES = {
    vehicle_type: {"kg": int(kg) if kg == int(kg) else float(kg), "litres": litres}
    for vehicle_type, (kg, litres) in VEHICLE_DEFAULT_CAPACITY.items()
}
# What the detector sees a declared type as: a scooter looks like a motorcycle to it, a cargo
# bike like a bicycle.
SEEN_AS = {Vehicle.Type.SCOOTER: Vehicle.Type.MOTORCYCLE, Vehicle.Type.CARGO_BIKE: Vehicle.Type.BICYCLE}


def seen_as_declared(detected: str | None, declared: str) -> bool:
    return detected is not None and detected == SEEN_AS.get(declared, declared)


def vehicle_step(application: Application, docs: list[Document]) -> StepResult:
    photo = _one(docs, DocumentKind.VEHICLE_PHOTO)
    declared = application.declared_vehicle_type
    result = StepResult("vehicle", inputs={"declared_type": declared})
    if photo is None:
        result.codes.append("DOCUMENT_MISSING")
        return result
    try:
        found = vehicles.detect_vehicle(_read(photo.file), capacities=VEHICLE_CAPACITIES)
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
    elif not seen_as_declared(found.vehicle_type, declared):
        result.codes.append("VEHICLE_TYPE_MISMATCH")
    return result


def _active_vehicle(application: Application) -> Vehicle | None:
    return Vehicle.objects.filter(driver_id=application.driver_id, is_active=True).first()


PAPER_KINDS = (DocumentKind.VEHICLE_REGISTRATION, DocumentKind.INSURANCE)


def judge_vehicle_paper(
    kind: str, text: str, *, declared_plate: str, declared_vin: str, today: date
) -> tuple[list[str], dict]:
    """Codes and details for one registration or insurance paper's OCR text. A paper must
    show a plate, and insurance its end date; a registration's VIN must hold its check digit.
    Each is compared with what the applicant declared: the plate always, the VIN if given."""
    registration = kind == DocumentKind.VEHICLE_REGISTRATION
    paper = parse_vehicle_document(text, unlabelled_expiry=not registration)
    details = {"plate": paper.plate, "expiry_date": paper.expiry_date, "vin": paper.vin, "reasons": []}
    codes = []
    unreadable = [] if paper.plate else ["no registration plate found"]
    if not (registration or paper.expiry_date):
        unreadable.append("no expiry date found")
    if unreadable:
        codes.append("VEHICLE_PAPER_UNREADABLE")
        details["reasons"] += unreadable
    if paper.plate and plate_key(paper.plate) != plate_key(declared_plate):
        codes.append("PLATE_MISMATCH")
        details["reasons"].append(
            f"the paper shows plate {paper.plate}; the applicant entered {declared_plate or 'none'}"
        )
    if paper.expiry_date and date.fromisoformat(paper.expiry_date) < today:
        codes.append("DOC_EXPIRED")
        details["reasons"].append(f"expired on {paper.expiry_date}")
    if registration:
        if paper.vin_reasons:
            codes.append("VIN_CHECK_DIGIT")
            details["reasons"] += [f"VIN {paper.vin}: {reason}" for reason in paper.vin_reasons]
        elif paper.vin:
            details["manufacturer"] = check_vin(paper.vin).manufacturer
        if declared_vin and paper.vin != check_vin(declared_vin).vin:
            codes.append("VIN_MISMATCH")
            details["reasons"].append(
                f"the paper shows VIN {paper.vin or '(none read)'}; the applicant entered {declared_vin}"
            )
    return codes, details


def vehicle_papers_step(application: Application, docs: list[Document], *, today: date) -> StepResult:
    """The registration certificate and insurance, when uploaded: read (OCR of the original),
    each compared with the declared plate and VIN, and their expiry checked. Whatever cannot be
    read goes to a person with the reason: never a silent pass."""
    vehicle = _active_vehicle(application)
    declared_plate, declared_vin = (vehicle.plate, vehicle.vin) if vehicle else ("", "")
    result = StepResult(
        "vehicle_papers",
        inputs={
            "declared_plate": declared_plate,
            "declared_vin": declared_vin,
            "documents": sorted(d.kind for d in docs if d.kind in PAPER_KINDS),
        },
    )
    for kind in PAPER_KINDS:
        document = _one(docs, kind)
        if document is None:
            continue
        try:
            text = ocr.read_visual_zone(_read(document.original or document.file))
        except UnreadableImage as exc:
            result.codes.append("VEHICLE_PAPER_UNREADABLE")
            result.details[kind] = {"reasons": [str(exc)]}
            continue
        codes, details = judge_vehicle_paper(
            kind, text, declared_plate=declared_plate, declared_vin=declared_vin, today=today
        )
        result.codes += [code for code in codes if code not in result.codes]
        result.details[kind] = details
        if details["expiry_date"]:
            result.expiries[kind] = details["expiry_date"]
    return result


def judge_licence(
    licence: pdf417.LicenceData, *, declared: dict, mrz_fields: dict | None, today: date
) -> tuple[list[str], list[str]]:
    """Codes and reasons for a licence barcode: complete, not expired, and the holder the
    applicant and their ID document name (surname, given names, birth date)."""
    codes, reasons = [], []
    if not licence.valid:
        codes.append("LICENCE_UNREADABLE")
        reasons += licence.reasons
    expiry = licence.fields.get("expiry_date")
    if expiry and date.fromisoformat(expiry) < today:
        codes.append("DOC_EXPIRED")
        reasons.append(f"the driving licence expired on {expiry}")
    mismatches = [
        f"{reason} ({source})"
        for source, fields in (("the applicant's details", declared), ("the ID document", mrz_fields or {}))
        for reason in ocr.compare_holder(licence.fields, fields)
    ]
    if mismatches:
        codes.append("LICENCE_MISMATCH")
        reasons += mismatches
    return codes, reasons


def licence_step(
    application: Application, docs: list[Document], *, today: date, identity: StepResult
) -> StepResult:
    """A US/Canadian driving licence's back, when uploaded: its AAMVA PDF417 barcode read and
    its holder compared with the applicant and the ID document's MRZ (when that read)."""
    result = StepResult("licence", inputs={"declared": application.declared})
    back = _one(docs, DocumentKind.DRIVING_LICENCE_BACK)
    if back is None:
        return result
    result.inputs["licence_back"] = back.sha256[:12]
    try:
        licence = pdf417.read_licence(_read(back.original or back.file))
    except (pdf417.NoBarcodeFound, UnreadableImage) as exc:
        result.codes.append("LICENCE_UNREADABLE")
        result.details["reasons"] = [str(exc)]
        return result
    mrz = identity.details.get("mrz")
    # an MRZ whose check digits fail, or whose name OCR may have misread, vouches for nothing
    trusted = mrz and not {"MRZ_CHECK_DIGIT", "MRZ_NAME_UNCERTAIN"} & set(identity.codes)
    mrz_fields = mrz["fields"] if trusted else None
    codes, reasons = judge_licence(licence, declared=application.declared, mrz_fields=mrz_fields, today=today)
    result.codes += codes
    result.details = {"fields": licence.fields, "issuer_id": licence.issuer_id, "reasons": reasons}
    if licence.fields.get("expiry_date"):
        result.expiries[DocumentKind.DRIVING_LICENCE_BACK] = licence.fields["expiry_date"]
    return result


def run_checks(application: Application, *, today: date) -> list[StepResult]:
    """Every automatic step but screening (services.run_pipeline handles the provider)."""
    docs = list(application.documents.filter(purged_at__isnull=True).order_by("kind", "sequence"))
    identity = identity_step(application, docs, today=today)
    papers = vehicle_papers_step(application, docs, today=today)
    licence = licence_step(application, docs, today=today, identity=identity)
    read_expiries = {
        kind: expiry for step in (identity, papers, licence) for kind, expiry in step.expiries.items()
    }
    return [
        documents_step(application, docs, today=today, read_expiries=read_expiries),
        identity,
        face_step(application, docs),
        liveness_step(application, docs),
        vehicle_step(application, docs),
        papers,
        licence,
    ]
