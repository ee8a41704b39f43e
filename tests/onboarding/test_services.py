"""Onboarding's rules outside the image checks: bad uploads, private storage and its audited
view, biometric retention, four-eyes reviews, the document-expiry watch, the pure decision."""

import io
import os
import zlib
from datetime import date, timedelta
from struct import pack

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from fleet.models import Driver, DriverStatus, DriverStatusChange
from identity.models import Role
from onboarding import decisions, services
from onboarding.models import (
    Application,
    ApplicationStatus,
    CheckResult,
    DocumentAccess,
    DriverNotice,
    Review,
)
from tests.api.conftest import error_of
from tests.conftest import make_user
from tests.onboarding.factories import add, approved, image_bytes, signed_up
from tests.onboarding.flow import upload

API = "/api/v1/onboarding"


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"


def png_bomb(side: int = 20_000) -> bytes:
    """A tiny PNG that decodes to side² pixels."""
    row = b"\0" + b"\0" * side
    data = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return pack(">I", len(body)) + kind + body + pack(">I", zlib.crc32(kind + body))

    header = pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


PDF_WITH_SCRIPT = b"%PDF-1.7\n1 0 obj << /Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj\n%%EOF"


@pytest.mark.parametrize(
    "data, name",
    [
        (b"just some text, not an image", "notes.jpg"),
        (image_bytes()[:200], "truncated.jpg"),
        (png_bomb(), "bomb.png"),
        (PDF_WITH_SCRIPT, "registration.pdf"),
        (image_bytes(image_format="GIF"), "animated.jpg"),  # a GIF sent as image/jpeg
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "id.svg"),
    ],
    ids=["text", "truncated", "decompression-bomb", "pdf-with-script", "gif-as-jpeg", "svg"],
)
def test_bad_uploads_are_refused_naming_the_field_and_nothing_is_stored(org, data, name, settings):
    application = signed_up(org)
    client = APIClient()
    client.force_login(application.driver.user)
    response = upload(client, "ID_FRONT", data, name)
    assert response.status_code == 400, response.content
    assert set(error_of(response)["fields"]) == {"file"}
    assert not application.documents.exists()
    assert (
        not list((settings.ONBOARDING_PRIVATE_ROOT).rglob("*.*"))
        if settings.ONBOARDING_PRIVATE_ROOT.exists()
        else True
    )


def test_a_huge_file_is_refused_by_size_and_a_body_over_the_route_limit_by_the_server(org, settings):
    application = signed_up(org)
    client = APIClient()
    client.force_login(application.driver.user)
    settings.UPLOAD_MAX_IMAGE_BYTES = 10_000
    response = upload(client, "SELFIE", image_bytes(size=(600, 600), image_format="PNG") + b"\0" * 20_000)
    assert response.status_code == 400
    assert "larger than 10000 bytes" in error_of(response)["fields"]["file"][0]
    over = client.post(
        f"{API}/application/documents",
        b"x" * (settings.API_UPLOAD_MAX_BODY_BYTES + 1),
        content_type="application/octet-stream",
    )
    assert over.status_code == 413


def test_exif_is_stripped_from_the_shown_copy_and_the_original_kept_privately(org, settings):
    application = signed_up(org)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    Image.new("RGB", (80, 60), (10, 120, 30)).save(buffer, format="JPEG", exif=exif)
    document = add(application, "ID_FRONT", buffer.getvalue())
    with document.file.open("rb") as shown:
        assert b"SpyCam" not in shown.read()
    with document.original.open("rb") as original:
        assert b"SpyCam" in original.read()
    root = settings.ONBOARDING_PRIVATE_ROOT.resolve()
    for path in (document.file.path, document.original.path):
        assert str(path).startswith(str(root))
        assert not str(path).startswith(str(settings.MEDIA_ROOT)) and not str(path).startswith(
            str(settings.STATIC_ROOT)
        )
    # A selfie keeps no original (no check needs its bytes as sent).
    assert not add(application, "SELFIE").original


def test_identity_documents_are_served_to_authorised_staff_only_and_every_view_is_audited(
    client, org, other_org, dispatcher
):
    document = add(signed_up(org), "ID_FRONT")
    url = reverse("onboarding-document-file", args=[document.id])
    admin = make_user(org, Role.ORG_ADMIN, "doc-admin")
    client.force_login(admin)
    response = client.get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert client.get(url + "?original=1").status_code == 200
    accesses = DocumentAccess.objects.filter(document=document)
    assert accesses.count() == 2 and {a.actor_user_id for a in accesses} == {admin.id}
    for user in (
        dispatcher,
        make_user(other_org, Role.ORG_ADMIN, "other-admin"),
        document.application.driver.user,
    ):
        client.force_login(user)
        assert client.get(url).status_code == 404, user
    client.logout()
    assert client.get(url).status_code == 302  # to the sign-in page
    assert accesses.count() == 2
    # A dispatcher given the permission may look, and is audited too.
    dispatcher.user_permissions.add(Permission.objects.get(codename="view_identity_document"))
    client.force_login(dispatcher)
    assert client.get(url).status_code == 200
    assert accesses.filter(actor_user=dispatcher).count() == 1


def test_biometrics_are_deleted_after_the_retention_window(org, settings):
    settings.ONBOARDING_BIOMETRIC_RETENTION_DAYS = 30
    old = approved(org, decided_at=timezone.now() - timedelta(days=31))
    recent = approved(org, decided_at=timezone.now() - timedelta(days=29))
    for application in (old, recent):
        Application.objects.filter(id=application.id).update(status=ApplicationStatus.DRAFT)
        add(application, "SELFIE")
        add(application, "ID_FRONT")
        services.start_liveness(application_id=application.id, driver=application.driver)
        add(application, "LIVENESS_FRAME")
        CheckResult.objects.create(
            application=application, step="face", outcome="PASSED", details={"distance": 0.3}
        )
    old_selfie = old.documents.get(kind="SELFIE")
    path = old_selfie.file.path
    assert services.purge_biometrics() == 2
    assert services.purge_biometrics() == 0  # idempotent
    old_selfie.refresh_from_db()
    assert old_selfie.purged_at and not old_selfie.file
    assert not os.path.exists(path)
    assert CheckResult.objects.get(application=old, step="face").details == {}
    assert old.documents.get(kind="ID_FRONT").file  # not biometric: kept
    assert all(d.file for d in recent.documents.all())
    assert CheckResult.objects.get(application=recent, step="face").details == {"distance": 0.3}


@pytest.fixture
def denied_appeal(org):
    application = signed_up(org)
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.ACCESS_DENIED, decision_codes=["FACE_MISMATCH"]
    )
    services.fleet_services.change_driver_status(
        driver_id=application.driver_id,
        organisation=org,
        action="deny_access",
        actor=services.PIPELINE,
        reason="The face in your selfie does not match.",
    )
    return services.appeal(application_id=application.id, driver=application.driver, text="It is me.")


def test_four_eyes_an_override_needs_a_second_reviewer(org, settings, denied_appeal):
    settings.ONBOARDING_FOUR_EYES = True
    first, second = make_user(org, Role.ORG_ADMIN, "rev-1"), make_user(org, Role.ORG_ADMIN, "rev-2")
    kwargs = {"review_id": denied_appeal.id, "organisation": org, "outcome": "APPROVED"}
    with pytest.raises(ValidationError) as missing:
        services.resolve_review(**kwargs, reason=" ", user=first)
    assert "reason" in missing.value.error_dict
    proposed = services.resolve_review(**kwargs, reason="Same person; glasses.", user=first)
    assert proposed.status == Review.Status.AWAITING_SECOND
    driver = Driver.objects.get(id=denied_appeal.application.driver_id)
    assert driver.status == DriverStatus.ACCESS_DENIED
    with pytest.raises(ValidationError) as same:
        services.resolve_review(**kwargs, reason="Me again.", user=first)
    assert "second reviewer" in str(same.value)
    done = services.resolve_review(**kwargs, reason="Confirmed: same person.", user=second)
    assert done.status == Review.Status.RESOLVED and done.resolved_by == second
    driver.refresh_from_db()
    assert driver.status == DriverStatus.ACTIVE
    change = DriverStatusChange.objects.filter(driver=driver).latest("occurred_at")
    assert (
        change.is_override
        and change.reason == "Confirmed: same person."
        and change.actor_user_id == second.id
    )


def test_without_four_eyes_one_reviewer_decides_through_the_api(org, settings, denied_appeal):
    settings.ONBOARDING_FOUR_EYES = False
    client = APIClient()
    client.force_login(make_user(org, Role.ORG_ADMIN, "rev-solo"))
    url = f"{API}/reviews/{denied_appeal.id}/resolve"
    bad = client.post(url, {"outcome": "MAYBE", "reason": "x"}, format="json")
    assert bad.status_code == 400 and "outcome" in error_of(bad)["fields"]
    ok = client.post(url, {"outcome": "APPROVED", "reason": "Checked by hand."}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "RESOLVED"
    application = Application.objects.get(id=denied_appeal.application_id)
    assert application.status == ApplicationStatus.APPROVED
    assert application.driver.status == DriverStatus.ACTIVE
    again = client.post(url, {"outcome": "ACCESS_DENIED", "reason": "Changed my mind."}, format="json")
    assert again.status_code == 400


def test_the_expiry_watch_tells_drivers_ahead_and_suspends_them_once_a_document_lapses(org, settings):
    settings.ONBOARDING_EXPIRY_NOTICE_DAYS = 14
    today = date(2026, 12, 2)
    soon, lapsed, fine = approved(org), approved(org), approved(org)
    for application, expiry in (
        (soon, today + timedelta(days=10)),
        (lapsed, today - timedelta(days=1)),
        (fine, today + timedelta(days=60)),
    ):
        Application.objects.filter(id=application.id).update(status=ApplicationStatus.DRAFT)
        add(application, "DRIVING_LICENCE", expires_on=expiry)
        Application.objects.filter(id=application.id).update(status=ApplicationStatus.APPROVED)
    assert services.watch_document_expiry(today=today) == {"warned": 1, "suspended": 1}
    assert services.watch_document_expiry(today=today) == {"warned": 0, "suspended": 0}
    notice = DriverNotice.objects.get(driver_id=soon.driver_id)
    assert notice.kind == "EXPIRING" and "2026-12-12" in notice.message
    driver = Driver.objects.get(id=lapsed.driver_id)
    assert driver.status == DriverStatus.SUSPENDED
    change = DriverStatusChange.objects.filter(driver=driver).latest("occurred_at")
    assert "driving licence expired on 2026-12-01" in change.reason
    assert Driver.objects.get(id=soon.driver_id).status == DriverStatus.ACTIVE
    assert not DriverNotice.objects.filter(driver_id=fine.driver_id).exists()


def test_the_decision_rule_and_each_organisations_policy():
    assert decisions.decide([]).outcome == decisions.APPROVED
    assert decisions.decide(["FACE_MISMATCH", "LIVENESS_FAILED"]).outcome == decisions.ACCESS_DENIED
    review = decisions.decide(["VEHICLE_TYPE_MISMATCH"])
    assert review.outcome == decisions.MANUAL_REVIEW and "not the type you declared" in review.reason
    strict = decisions.decide(["VEHICLE_TYPE_MISMATCH"], deny_codes={"VEHICLE_TYPE_MISMATCH"})
    assert strict.outcome == decisions.ACCESS_DENIED
    assert decisions.decide(["SOMETHING_NEW"]).outcome == decisions.MANUAL_REVIEW
    assert set(decisions.DEFAULT_DENY_CODES) <= set(decisions.REASON_TEXT)


def test_a_policy_names_only_known_codes(org):
    with pytest.raises(ValidationError) as unknown:
        services.set_deny_codes(organisation=org, deny_codes=["NOT_A_CODE"])
    assert "deny_codes" in unknown.value.error_dict
    assert services.set_deny_codes(organisation=org, deny_codes=["LIVENESS_FAILED"]).deny_codes == [
        "LIVENESS_FAILED"
    ]


def test_sign_up_names_the_field_that_is_taken(org):
    first = signed_up(org)
    token = services.policy_for(org).signup_token
    base = {
        "signup_token": token,
        "password": "A-long-pass-phrase-42",
        "name": "Second",
        "email": "second@example.com",
        "vehicle_type": "car",
    }
    for changes, field in (
        ({"username": first.driver.user.username, "phone": "+358401111111", "plate": "NEW-1"}, "username"),
        ({"username": "second", "phone": first.driver.phone, "plate": "NEW-1"}, "phone"),
        ({"username": "second", "phone": "+358401111111", "plate": ""}, "plate"),
        ({"username": "second", "phone": "+358401111111", "plate": "NEW-1", "password": "123"}, "password"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.sign_up(**{**base, **changes})
        assert field in refused.value.error_dict, changes
    taken = services.sign_up(**base, username="third", phone="+358401111112", plate="DUP-1")
    with pytest.raises(ValidationError) as refused:
        services.sign_up(**base, username="fourth", phone="+358401111113", plate="DUP-1")
    assert "plate" in refused.value.error_dict and taken.driver.organisation == org


def test_a_pipeline_left_behind_is_queued_again(org, monkeypatch):
    from onboarding import tasks

    stuck, fresh = signed_up(org), signed_up(org)
    now = timezone.now()
    Application.objects.filter(id=stuck.id).update(
        status="SUBMITTED", submitted_at=now - timedelta(minutes=30)
    )
    Application.objects.filter(id=fresh.id).update(status="SUBMITTED", submitted_at=now)
    queued = []
    monkeypatch.setattr(tasks.run_application_pipeline, "delay", queued.append)
    assert tasks.resume_pipelines() == 1
    assert queued == [str(stuck.id)]
