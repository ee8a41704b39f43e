"""The pipeline's own rules: a run that crashes is recorded and retried a bounded number of
times, then a person reviews it; an MRZ name that OCR may have misread (a filler read as a
letter) never denies on its own."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import DomainEvent
from demo.applicants import passport_page, td3_lines
from onboarding import decisions, pipeline, services, tasks
from onboarding.models import Application, ApplicationStatus, CheckResult, DocumentKind, Review
from onboarding.verification.mrz import fillers_misread, parse_mrz
from tests.onboarding.conftest import FACES
from tests.onboarding.factories import add, signed_up
from tests.onboarding.flow import API, OBAMA


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.ONBOARDING_PIPELINE_MAX_ATTEMPTS = 3


def submitted(org, minutes_ago: int = 30) -> Application:
    application = signed_up(org)
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.SUBMITTED, submitted_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return application


def crash(monkeypatch):
    def broken(application, *, today):
        raise RuntimeError("internal detail the applicant must not see")

    monkeypatch.setattr(services, "run_checks", broken)


def test_a_crash_is_recorded_retried_by_the_resume_task_then_reviewed_by_a_person(org, monkeypatch):
    application = submitted(org)
    crash(monkeypatch)
    for run in (1, 2):
        assert tasks.resume_pipelines() == 1  # queued and run (eager): it fails again
        application.refresh_from_db()
        assert application.status == ApplicationStatus.SUBMITTED and application.pipeline_attempts == run
        failed = CheckResult.objects.get(application=application, step="pipeline")
        assert failed.reason_codes == ["PIPELINE_ERROR"] and failed.outcome == CheckResult.Outcome.FAILED
        assert failed.details == {"reason": "verification failed to run", "error": "RuntimeError"}
    assert tasks.resume_pipelines() == 1  # the last run allowed
    application.refresh_from_db()
    assert application.status == ApplicationStatus.MANUAL_REVIEW and application.pipeline_attempts == 3
    assert application.decision_codes == ["PIPELINE_ERROR"]
    assert decisions.REASON_TEXT["PIPELINE_ERROR"] in application.decision_reason
    assert Review.objects.get(application=application).kind == Review.Kind.AUTOMATIC
    assert tasks.resume_pipelines() == 0  # a person has it now
    events = DomainEvent.objects.filter(
        subject_id=str(application.id), event_type="application.pipeline_failed"
    )
    assert [e.payload["run"] for e in events.order_by("sequence")] == [1, 2, 3]
    # The applicant reads the plain reason; the error's class is there for staff, no more.
    client = APIClient()
    client.force_login(application.driver.user)
    shown = client.get(f"{API}/application")
    assert shown.status_code == 200 and "could not run" in shown.json()["decision_reason"]
    assert b"internal detail" not in shown.content and b"Traceback" not in shown.content


def test_a_run_that_works_after_a_crash_decides_and_leaves_no_failure(org, monkeypatch):
    application = submitted(org)
    crash(monkeypatch)
    services.run_pipeline(application_id=application.id)
    monkeypatch.setattr(services, "run_checks", lambda application, *, today: [])
    decided = services.run_pipeline(application_id=application.id)
    assert decided.status == ApplicationStatus.APPROVED and decided.decision_codes == []
    assert not CheckResult.objects.filter(application=application, step="pipeline").exists()


def test_runs_killed_midway_count_too(org, monkeypatch):
    """A worker killed by the kernel raises nothing: the runs started are counted."""
    application = submitted(org)
    Application.objects.filter(id=application.id).update(pipeline_attempts=3)
    monkeypatch.setattr(services, "run_checks", lambda application, *, today: pytest.fail("not run again"))
    given_up = services.run_pipeline(application_id=application.id)
    assert given_up.status == ApplicationStatus.MANUAL_REVIEW
    check = CheckResult.objects.get(application=application, step="pipeline")
    assert check.details["error"] == "the earlier runs did not finish (stopped or killed)"


def test_a_failure_to_run_is_never_a_denial_whatever_the_policy(org):
    with pytest.raises(ValidationError) as refused:
        services.set_deny_codes(organisation=org, deny_codes=["PIPELINE_ERROR"])
    assert "never denied" in refused.value.error_dict["deny_codes"][0].message
    assert (
        decisions.decide(["PIPELINE_ERROR"], deny_codes={"PIPELINE_ERROR"}).outcome == decisions.MANUAL_REVIEW
    )


# --- an MRZ name OCR may have misread ------------------------------------------------------


def test_fillers_read_as_letters_are_told_from_another_name():
    assert fillers_misread("VIRTANEN<<BARACK<C<<<<<", "Virtanen", "Barack")
    assert fillers_misread("VIRTANEN<<BARACKK<<<<<<", "Virtanen", "Barack")
    assert fillers_misread("VIRTANENKKBARACK<<<<<<<", "Virtanen", "Barack")
    assert not fillers_misread("VIRTANEN<<BARACK<<<<<<<", "Virtanen", "Barack")  # no difference
    assert fillers_misread("VIRTANENK<<BARACKK<KCK<<<", "Virtanen", "Barack")  # tesseract, seen here
    assert not fillers_misread("VIRTANEN<<BARACK<<<<<<<", "Virtane", "Barack")  # a typo: N vs <
    assert not fillers_misread("VIRTANEN<<MICHELLE<<<<<", "Virtanen", "Barack")
    # a K between fillers is turned back into a filler by repair, and the repair is known
    line1, line2 = td3_lines(OBAMA)
    misread = line1.replace("BARACK<<", "BARACK<K", 1)
    repaired = parse_mrz([misread, line2], repair=True)
    assert repaired.fields["given_names"] == "BARACK" and repaired.name_repaired
    assert not parse_mrz([line1, line2], repair=True).name_repaired
    assert not parse_mrz([line1[:-3], line2], repair=True).name_repaired  # fitted, not a filler repair


@pytest.mark.django_db
def test_a_name_mismatch_from_a_misread_filler_goes_to_a_person_even_where_mismatches_deny(org):
    services.set_deny_codes(organisation=org, deny_codes=["MRZ_APPLICANT_MISMATCH", "DOC_EXPIRED"])
    application = signed_up(org)
    line1, line2 = td3_lines(OBAMA)
    printed = line1.replace("BARACK<<", "BARACK<C", 1)  # as OCR reads a worn filler
    add(
        application,
        DocumentKind.ID_FRONT,
        passport_page(OBAMA, FACES / "obama_b.jpg", lines=[printed, line2]),
    )
    application.declared = {**application.declared, "document_number": OBAMA.document_number}
    result = pipeline.identity_step(application, list(application.documents.all()), today=date(2026, 12, 2))
    # tesseract reads fillers around the C as K too ("VIRTANENK<<BARACKK<KCK"): nobody's name
    read = result.details["mrz"]["fields"]["given_names"]
    assert read.startswith("BARACK") and read != "BARACK"
    assert "MRZ_NAME_UNCERTAIN" in result.codes and "MRZ_APPLICANT_MISMATCH" not in result.codes
    assert any("fillers read as letters" in reason for reason in result.details["name_uncertain"])
    decision = decisions.decide(result.codes, deny_codes=services.policy_for(org).deny_codes)
    assert (
        decision.outcome == decisions.MANUAL_REVIEW and "could not be read with certainty" in decision.reason
    )
