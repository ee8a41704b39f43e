"""The vehicle papers (registration, insurance: OCR of rendered certificates) and the US
licence barcode (AAMVA PDF417, generated) in the pipeline: read, compared with what the
applicant declared and their ID, expiry checked; unreadable goes to a person with the reason.
Each step is run on its own (no face or MRZ models); the comparisons on text, without OCR."""

from dataclasses import replace
from datetime import date

import pytest
from django.core.exceptions import ValidationError

from demo.applicants import (
    VehiclePapers,
    aamva_payload,
    insurance_certificate,
    licence_back,
    registration_certificate,
)
from onboarding import pipeline, services
from onboarding.models import Document, DocumentKind
from onboarding.pipeline import StepResult, judge_licence, judge_vehicle_paper
from onboarding.verification.pdf417 import parse_aamva
from tests.onboarding.conftest import FACES
from tests.onboarding.factories import add, signed_up
from tests.onboarding.flow import OBAMA

TODAY = date(2026, 12, 2)
GOOD_VIN, BAD_VIN = "1M8GDM9AXKP042788", "1M8GDM9AYKP042788"  # the second's check digit fails
PAPERS = VehiclePapers("UTO-123", GOOD_VIN, insurance_to=date(2027, 4, 14))


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"


@pytest.fixture(scope="session")
def rendered() -> dict[str, bytes]:
    """The certificates and licence backs the tests upload, drawn once."""
    expired = replace(PAPERS, vin=BAD_VIN, insurance_to=date(2026, 6, 30))
    return {
        "registration": registration_certificate(OBAMA, PAPERS),
        "insurance": insurance_certificate(OBAMA, PAPERS),
        "registration_bad_vin": registration_certificate(OBAMA, expired),
        "insurance_expired": insurance_certificate(OBAMA, expired),
        "licence": licence_back(aamva_payload(OBAMA, expiry=date(2028, 8, 4))),
        "licence_other": licence_back(
            aamva_payload(
                replace(OBAMA, surname="Lahtinen", birth_date=date(1970, 1, 2)), expiry=date(2025, 1, 1)
            )
        ),
    }


def car_applicant(org, plate: str = "UTO 123", vin: str = GOOD_VIN):
    return signed_up(org, vehicle_type="car", plate=plate, vin=vin)


def papers_step(application):
    docs = list(application.documents.all())
    return pipeline.vehicle_papers_step(application, docs, today=TODAY)


def test_registration_and_insurance_read_and_agree_with_the_declared_vehicle(org, rendered):
    application = car_applicant(org)
    add(application, DocumentKind.VEHICLE_REGISTRATION, rendered["registration"])
    add(application, DocumentKind.INSURANCE, rendered["insurance"])
    result = papers_step(application)
    assert result.codes == [], result.details
    registration = result.details[DocumentKind.VEHICLE_REGISTRATION]
    assert (registration["plate"], registration["vin"], registration["manufacturer"]) == (
        "UTO-123",
        GOOD_VIN,
        "Mercury",
    )
    assert registration["expiry_date"] is None  # its first-registration date is no expiry
    assert result.expiries == {DocumentKind.INSURANCE: "2027-04-14"}


def test_a_wrong_vin_check_digit_an_expired_insurance_and_another_plate_are_codes(org, rendered):
    application = car_applicant(org, plate="XYZ-999")
    add(application, DocumentKind.VEHICLE_REGISTRATION, rendered["registration_bad_vin"])
    add(application, DocumentKind.INSURANCE, rendered["insurance_expired"])
    result = papers_step(application)
    assert set(result.codes) == {"PLATE_MISMATCH", "VIN_CHECK_DIGIT", "VIN_MISMATCH", "DOC_EXPIRED"}
    assert "expired on 2026-06-30" in result.details[DocumentKind.INSURANCE]["reasons"]
    assert any("check digit" in r for r in result.details[DocumentKind.VEHICLE_REGISTRATION]["reasons"])


def test_a_paper_that_cannot_be_read_goes_to_a_person_with_the_reason(org):
    application = car_applicant(org)
    add(application, DocumentKind.INSURANCE, (FACES / "obama_a.jpg").read_bytes())
    result = papers_step(application)
    assert result.codes == ["VEHICLE_PAPER_UNREADABLE"]
    assert result.details[DocumentKind.INSURANCE]["reasons"] == [
        "no registration plate found",
        "no expiry date found",
    ]
    strict = (
        set(services.decisions.REASON_TEXT) - services.decisions.REVIEW_ONLY_CODES
    )  # denies on all it may
    assert services.decisions.decide(result.codes, deny_codes=strict).outcome == "MANUAL_REVIEW"


def test_an_expiry_read_from_the_paper_wins_over_the_declared_one(org):
    application = signed_up(org)
    add(application, DocumentKind.INSURANCE, expires_on=date(2026, 1, 1))  # a typo by the applicant
    docs = list(application.documents.all())
    assert pipeline.documents_step(application, docs, today=TODAY).codes == ["DOC_EXPIRED"]
    read = {DocumentKind.INSURANCE: "2027-04-14"}
    assert pipeline.documents_step(application, docs, today=TODAY, read_expiries=read).codes == []


def test_no_papers_uploaded_is_no_code_and_a_bicycle_needs_none(org):
    assert papers_step(signed_up(org)).codes == []


@pytest.mark.parametrize(
    ("kind", "text", "plate", "vin", "codes"),
    [
        ("VEHICLE_REGISTRATION", "Registration number: AB-123\nVIN: JHMCM56557C404453", "ab 123", "", []),
        (
            "VEHICLE_REGISTRATION",
            "Reg. no AB-123\nVIN JHMCM56557C404453",
            "AB-123",
            GOOD_VIN,
            ["VIN_MISMATCH"],
        ),
        ("VEHICLE_REGISTRATION", "Registration number: AB-123", "AB-123", GOOD_VIN, ["VIN_MISMATCH"]),
        (
            "VEHICLE_REGISTRATION",
            "Registration number: AB-123\nValid until 01.01.2026",
            "AB-123",
            "",
            ["DOC_EXPIRED"],
        ),
        ("INSURANCE", "Licence plate: AB-123\nfrom 02.01.2026 to 01.01.2027", "", "", ["PLATE_MISMATCH"]),
        ("INSURANCE", "Licence plate: AB-123", "AB-123", "", ["VEHICLE_PAPER_UNREADABLE"]),
        ("INSURANCE", "CERTIFICATE OF MOTOR INSURANCE", "AB-123", "", ["VEHICLE_PAPER_UNREADABLE"]),
    ],
    ids=[
        "same",
        "other-vin",
        "no-vin-read",
        "expired-registration",
        "no-declared-plate",
        "no-end",
        "nothing",
    ],
)
def test_what_a_paper_says_against_the_declared_vehicle(kind, text, plate, vin, codes):
    found, _details = judge_vehicle_paper(kind, text, declared_plate=plate, declared_vin=vin, today=TODAY)
    assert found == codes


def test_a_vin_is_checked_at_sign_up(org):
    with pytest.raises(ValidationError) as refused:
        car_applicant(org, vin=BAD_VIN)
    assert "check digit" in refused.value.error_dict["vin"][0].message
    assert car_applicant(org, plate="OK-1", vin="1m8g dm9a xkp0 42788").driver.vehicles.get().vin == GOOD_VIN


# --- the licence barcode -------------------------------------------------------------------

MRZ_OK = StepResult("identity", details={"mrz": {"fields": {"surname": "VIRTANEN", "given_names": "BARACK"}}})


def licence_step(application, identity: StepResult = MRZ_OK) -> StepResult:
    return pipeline.licence_step(
        application, list(application.documents.all()), today=TODAY, identity=identity
    )


def test_the_licence_barcode_names_the_applicant_and_its_expiry_is_watched(org, rendered):
    application = signed_up(org)
    add(application, DocumentKind.DRIVING_LICENCE_BACK, rendered["licence"])
    result = licence_step(application)
    assert result.codes == [], result.details
    assert result.details["fields"]["surname"] == "VIRTANEN"
    assert result.expiries == {DocumentKind.DRIVING_LICENCE_BACK: "2028-08-04"}
    # the original is kept for the barcode (re-encoding could blur it)
    assert Document.objects.get(application=application, kind=DocumentKind.DRIVING_LICENCE_BACK).original


def test_another_persons_expired_licence_is_a_mismatch_and_expired(org, rendered):
    application = signed_up(org)
    add(application, DocumentKind.DRIVING_LICENCE_BACK, rendered["licence_other"])
    result = licence_step(application)
    assert result.codes == ["DOC_EXPIRED", "LICENCE_MISMATCH"]
    reasons = result.details["reasons"]
    assert "surname 'LAHTINEN' on the licence, 'Virtanen' elsewhere (the applicant's details)" in reasons
    assert "surname 'LAHTINEN' on the licence, 'VIRTANEN' elsewhere (the ID document)" in reasons
    assert "birth date 1970-01-02 on the licence, 1961-08-04 elsewhere (the applicant's details)" in reasons


def test_an_mrz_that_vouches_for_nothing_is_not_compared(org, rendered):
    application = signed_up(org)
    add(application, DocumentKind.DRIVING_LICENCE_BACK, rendered["licence"])
    misread = {"mrz": {"fields": {"surname": "VIRTANENK", "given_names": "BARACKK KCK"}}}
    for code in ("MRZ_NAME_UNCERTAIN", "MRZ_CHECK_DIGIT"):
        assert licence_step(application, StepResult("identity", [code], details=misread)).codes == []
    assert licence_step(application, StepResult("identity", details=misread)).codes == ["LICENCE_MISMATCH"]


def test_a_licence_back_without_a_barcode_goes_to_a_person(org):
    application = signed_up(org)
    add(application, DocumentKind.DRIVING_LICENCE_BACK, (FACES / "obama_a.jpg").read_bytes())
    result = licence_step(application)
    assert result.codes == ["LICENCE_UNREADABLE"]
    assert result.details["reasons"] == ["no PDF417 barcode found in the image"]


def test_middle_names_may_be_left_out_on_either_side_but_not_other_names():
    licence = parse_aamva(
        aamva_payload(replace(OBAMA, given_names="Barack Hussein"), expiry=date(2028, 1, 1))
    )
    declared = {"surname": "Virtanen", "given_names": "Barack", "birth_date": "1961-08-04"}
    assert judge_licence(licence, declared=declared, mrz_fields=None, today=TODAY) == ([], [])
    other = {**declared, "given_names": "Michelle"}
    codes, reasons = judge_licence(licence, declared=other, mrz_fields=None, today=TODAY)
    assert codes == ["LICENCE_MISMATCH"] and reasons == [
        "given names 'BARACK HUSSEIN' on the licence, 'Michelle' elsewhere (the applicant's details)"
    ]
    incomplete = parse_aamva("@\n\x1e\rANSI 636014090001DL00000000DLDCSVIRTANEN\nDAJCA\r")
    assert judge_licence(incomplete, declared=declared, mrz_fields=None, today=TODAY)[0] == [
        "LICENCE_UNREADABLE"
    ]
