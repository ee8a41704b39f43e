"""The applicant's mobile pages: sign-up by the organisation's link, the one-page application
(details, consents, uploads, submit, status with reasons), the live selfie page; strict CSP
(no inline script), text escaped."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from onboarding import services
from onboarding.models import Application, ApplicationStatus
from tests.onboarding.factories import image_bytes, signed_up


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.ONBOARDING_PRIVATE_ROOT = tmp_path / "private"


def no_inline_script(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "javascript:" not in html


def test_sign_up_by_link_then_fill_in_the_application_page(client, org):
    token = services.policy_for(org).signup_token
    join = reverse("onboarding-join", args=[token])
    page = client.get(join)
    assert page.status_code == 200
    no_inline_script(page.content.decode())
    assert (
        "script-src" in page["Content-Security-Policy"]
        and "'unsafe-inline'" not in page["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )
    bad = client.post(join, {"username": "x"})
    assert bad.status_code == 200 and "This field is required" in bad.content.decode()
    made = client.post(
        join,
        {
            "username": "webapplicant",
            "password": "A-long-pass-phrase-42",
            "name": "<b>Web</b> Applicant",
            "phone": "+358401112233",
            "email": "web@example.com",
            "vehicle_type": "bicycle",
        },
    )
    assert made.status_code == 302 and made["Location"] == reverse("onboarding-apply")
    apply = reverse("onboarding-apply")
    details = {
        "action": "details",
        "surname": "<script>alert(1)</script>",
        "given_names": "Web",
        "birth_date": "1990-05-01",
        "document_number": "UT7654321",
        "nationality": "UTO",
    }
    assert client.post(apply, details).status_code == 302
    html = client.get(apply).content.decode()
    no_inline_script(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for kind, (version, _text) in services.CONSENT_TEXTS.items():
        assert (
            client.post(apply, {"action": "consent", "kind": kind, "text_version": version}).status_code
            == 302
        )
    upload = client.post(
        apply,
        {
            "action": "upload",
            "kind": "SELFIE",
            "file": SimpleUploadedFile("s.jpg", image_bytes(), "image/jpeg"),
        },
    )
    assert upload.status_code == 302
    refused = client.post(
        apply,
        {
            "action": "upload",
            "kind": "ID_FRONT",
            "file": SimpleUploadedFile("id.jpg", b"%PDF-1.4", "image/jpeg"),
        },
    )
    assert refused.status_code == 200 and "This is not a readable image." in refused.content.decode()
    early = client.post(apply, {"action": "submit"})
    assert early.status_code == 200 and "Upload the identity document, front." in early.content.decode()
    application = Application.objects.get(driver__user__username="webapplicant")
    assert application.status == ApplicationStatus.DRAFT and application.consents.count() == 2
    assert list(application.documents.values_list("kind", flat=True)) == ["SELFIE"]


def test_the_liveness_page_loads_its_script_from_a_file(client, org):
    application = signed_up(org)
    client.force_login(application.driver.user)
    page = client.get(reverse("onboarding-liveness-page"))
    html = page.content.decode()
    no_inline_script(html)
    assert "onboarding/liveness.js" in html
    assert 'data-challenge-url="/api/v1/onboarding/application/liveness"' in html


def test_a_denied_applicant_sees_the_reasons_and_can_appeal(client, org):
    application = signed_up(org)
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.ACCESS_DENIED,
        decision_codes=["DOC_EXPIRED"],
        decision_reason="Your identity document (or licence, insurance) has expired.",
    )
    services.fleet_services.change_driver_status(
        driver_id=application.driver_id,
        organisation=org,
        action="deny_access",
        actor=services.PIPELINE,
        reason="x",
    )
    client.force_login(application.driver.user)
    html = client.get(reverse("onboarding-apply")).content.decode()
    assert "has expired" in html and "Send appeal" in html
    sent = client.post(reverse("onboarding-apply"), {"action": "appeal", "text": "Renewed last week."})
    assert sent.status_code == 302
    assert application.reviews.get().appeal_text == "Renewed last week."


def test_staff_and_strangers_do_not_get_the_applicant_pages(client, org, dispatcher):
    client.force_login(dispatcher)
    assert client.get(reverse("onboarding-apply")).status_code == 403
    client.logout()
    assert client.get(reverse("onboarding-apply")).status_code == 302
    assert client.get(reverse("onboarding-join", args=["nope"])).status_code == 200
