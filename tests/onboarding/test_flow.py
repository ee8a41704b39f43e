"""The onboarding flow end to end through the API, the pipeline run in-process (eager
Celery): no human for a clean applicant; reasons the applicant reads otherwise."""

from datetime import date

import pytest

from demo.applicants import (
    VehiclePapers,
    aamva_payload,
    insurance_certificate,
    licence_back,
    registration_certificate,
)
from fleet.models import Driver, DriverStatus, DriverStatusChange, Vehicle
from onboarding.models import Application, CheckResult, Review
from tests.onboarding.conftest import FACES
from tests.onboarding.flow import OBAMA, fill_in, sign_up, submit, upload


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.mark.django_db(transaction=True)
def test_a_clean_applicant_becomes_an_active_driver_with_no_human(org):
    client = sign_up(org, "clean")
    shown = fill_in(client)
    assert shown["status"] == "DRAFT" and shown["progress"]["missing"] == {}
    # The vehicle's papers and a US licence's back, as their owner declared them.
    plate = Vehicle.objects.get(driver_id=shown["driver_id"]).plate
    papers = VehiclePapers(plate, "JHMCM56557C404453", insurance_to=date(2031, 3, 31))
    for kind, data in (
        ("VEHICLE_REGISTRATION", registration_certificate(OBAMA, papers)),
        ("INSURANCE", insurance_certificate(OBAMA, papers)),
        ("DRIVING_LICENCE_BACK", licence_back(aamva_payload(OBAMA, expiry=date(2030, 8, 4)))),
    ):
        assert upload(client, kind, data, "paper.png").status_code == 201
    answer = submit(client)
    assert answer["status"] == "APPROVED", [
        (c["step"], c["reason_codes"], c["details"]) for c in answer["checks"] if c["reason_codes"]
    ]
    assert answer["decision_codes"] == []
    assert {c["step"]: c["outcome"] for c in answer["checks"]} == dict.fromkeys(
        ("documents", "identity", "face", "liveness", "vehicle", "vehicle_papers", "licence", "screening"),
        "PASSED",
    )
    driver = Driver.objects.get(id=answer["driver_id"])
    assert driver.status == DriverStatus.ACTIVE and driver.organisation == org
    vehicle = driver.vehicles.get()
    assert vehicle.type == "car" and vehicle.capacity_kg > 0
    change = DriverStatusChange.objects.filter(driver=driver).latest("occurred_at")
    assert change.to_status == DriverStatus.ACTIVE and "All checks passed" in change.reason
    # The expiries read from the ID's MRZ, the insurance and the licence are watched from now on.
    documents = Application.objects.get(id=answer["id"]).documents
    assert {
        kind: str(documents.get(kind=kind).expires_on)
        for kind in ("ID_FRONT", "INSURANCE", "DRIVING_LICENCE_BACK")
    } == {
        "ID_FRONT": "2031-01-01",
        "INSURANCE": "2031-03-31",
        "DRIVING_LICENCE_BACK": "2030-08-04",
    }


@pytest.mark.django_db(transaction=True)
def test_an_expired_document_is_denied_with_the_reason(org):
    client = sign_up(org, "expired")
    expired = OBAMA.__class__(**{**OBAMA.__dict__, "expiry_date": date(2024, 1, 1)})
    fill_in(client, person=expired)
    answer = submit(client)
    assert answer["status"] == "ACCESS_DENIED", answer["checks"]
    assert "DOC_EXPIRED" in answer["decision_codes"]
    assert "expired" in answer["decision_reason"]
    assert {"code": "DOC_EXPIRED", "text": answer["progress"]["reasons"][0]["text"]} in answer["progress"][
        "reasons"
    ]
    driver = Driver.objects.get(id=answer["driver_id"])
    assert driver.status == DriverStatus.ACCESS_DENIED
    change = DriverStatusChange.objects.filter(driver=driver).latest("occurred_at")
    assert "expired" in change.reason and change.inputs["codes"]


@pytest.mark.django_db(transaction=True)
def test_a_selfie_of_someone_else_is_denied_and_an_appeal_reaches_the_review_queue(org):
    client = sign_up(org, "mismatch")
    fill_in(client, selfie=FACES / "biden_b.jpg")
    answer = submit(client)
    assert answer["status"] == "ACCESS_DENIED", answer["checks"]
    face = CheckResult.objects.get(application_id=answer["id"], step="face")
    assert face.reason_codes == ["FACE_MISMATCH"] and face.details["distance"] > face.details["tolerance"]
    assert "does not match" in answer["decision_reason"]
    appealed = client.post(
        "/api/v1/onboarding/application/appeal", {"text": "That is me, new glasses."}, format="json"
    )
    assert appealed.status_code == 201
    review = Review.objects.get(application_id=answer["id"])
    assert review.kind == Review.Kind.APPEAL and review.status == Review.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_declared_details_that_differ_from_the_document_go_to_review(org):
    client = sign_up(org, "typo")
    fill_in(client, details={**OBAMA.declared(), "surname": "Someoneelse"})
    answer = submit(client)
    assert answer["status"] == "MANUAL_REVIEW", answer["checks"]
    assert answer["decision_codes"] == ["MRZ_APPLICANT_MISMATCH"]
    assert Driver.objects.get(id=answer["driver_id"]).status == DriverStatus.APPLICANT
    assert Review.objects.get(application_id=answer["id"]).kind == Review.Kind.AUTOMATIC


@pytest.mark.django_db
def test_the_liveness_challenge_done_by_someone_else_than_the_selfie_fails(org):
    from demo import liveness_frames as frames
    from demo.applicants import png
    from onboarding.pipeline import liveness_step
    from onboarding.services import start_liveness
    from tests.onboarding.factories import add, signed_up

    application = signed_up(org)
    add(application, "SELFIE", (FACES / "obama_a.jpg").read_bytes())
    challenge = start_liveness(application_id=application.id, driver=application.driver)
    for frame in frames.sequence(FACES / "astronaut_eileen_collins.png", challenge):
        add(application, "LIVENESS_FRAME", png(frame))
    application.refresh_from_db()
    result = liveness_step(application, list(application.documents.order_by("kind", "sequence")))
    assert result.codes == ["LIVENESS_FAILED"]
    assert any("not the selfie's" in reason for reason in result.details["reasons"]), result.details
    assert result.details["observed"] == challenge  # the challenge itself was followed


@pytest.mark.django_db
def test_a_vehicle_other_than_the_declared_one_goes_to_review(org):
    from onboarding import decisions
    from onboarding.pipeline import vehicle_step
    from tests.onboarding.conftest import VEHICLES
    from tests.onboarding.factories import add, signed_up

    application = signed_up(org)  # declared a bicycle
    add(application, "VEHICLE_PHOTO", (VEHICLES / "coco_000000001532_highway_cars.jpg").read_bytes())
    result = vehicle_step(application, list(application.documents.all()))
    assert application.declared_vehicle_type == "bicycle" and result.details["vehicle_type"] == "car"
    assert result.codes == ["VEHICLE_TYPE_MISMATCH"]
    assert decisions.decide(result.codes).outcome == decisions.MANUAL_REVIEW
