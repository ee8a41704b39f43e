"""The Checkr adapter against a local HTTP server that speaks Checkr's protocol (Basic auth
with the API key, candidates, reports, report statuses), and the signed, replay-safe webhook."""

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from fleet.models import Driver, DriverStatus
from onboarding import screening, services
from onboarding.models import Application, ApplicationStatus, CheckResult, ScreeningWebhookEvent
from tests.onboarding.factories import signed_up

KEY = "test_checkr_key_123"
WEBHOOK = "/api/v1/onboarding/screening/checkr/webhook"


class FakeCheckr(BaseHTTPRequestHandler):
    """Checkr's v1 API as documented: JSON bodies, HTTP Basic with the key as user name."""

    candidates: dict
    reports: dict
    seen: list

    def log_message(self, *args):
        pass

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._answer(401, {"error": "Bad authentication"})
            return False
        return True

    def do_POST(self):
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(("POST", self.path, body))
        if self.path == "/v1/candidates":
            if not body.get("email") or not body.get("dob"):
                return self._answer(400, {"error": "email and dob are required"})
            candidate = {"id": f"cand_{len(self.candidates) + 1}", "object": "candidate", **body}
            self.candidates[candidate["id"]] = candidate
            return self._answer(201, candidate)
        if self.path == "/v1/reports":
            if body.get("candidate_id") not in self.candidates:
                return self._answer(404, {"error": "Candidate not found"})
            report = {
                "id": f"rep_{len(self.reports) + 1}",
                "object": "report",
                "status": "pending",
                "result": None,
            }
            self.reports[report["id"]] = {**report, "package": body["package"]}
            return self._answer(201, report)
        self._answer(404, {"error": "Not found"})

    def do_GET(self):
        if not self._authorised():
            return
        self.seen.append(("GET", self.path, None))
        report = self.reports.get(self.path.removeprefix("/v1/reports/"))
        if report is None:
            return self._answer(404, {"error": "Not found"})
        self._answer(200, report)


@pytest.fixture
def checkr(settings):
    handler = type("Handler", (FakeCheckr,), {"candidates": {}, "reports": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ONBOARDING_SCREENING_PROVIDER = "checkr"
    settings.CHECKR_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.CHECKR_API_KEY = KEY
    yield handler
    server.shutdown()
    server.server_close()


def candidate() -> screening.Candidate:
    return screening.Candidate("app-1", "Barack", "Virtanen", "1961-08-04", "b@example.com", "UT1234567")


def test_the_adapter_creates_a_candidate_and_a_report_and_fetches_it(checkr):
    provider = services.screening_provider()
    report = provider.start(candidate())
    assert report == screening.ScreeningReport("rep_1", "pending", None)
    assert [(m, p) for m, p, _ in checkr.seen] == [("POST", "/v1/candidates"), ("POST", "/v1/reports")]
    assert checkr.seen[0][2]["dob"] == "1961-08-04" and checkr.seen[0][2]["custom_id"] == "app-1"
    assert checkr.seen[1][2] == {"candidate_id": "cand_1", "package": "driver_pro"}
    checkr.reports["rep_1"].update(status="complete", result="consider")
    assert provider.fetch("rep_1") == screening.ScreeningReport("rep_1", "complete", "consider")
    with pytest.raises(screening.ScreeningError, match="404"):
        provider.fetch("rep_nope")


def test_a_wrong_key_or_a_dead_server_is_a_screening_error(checkr, settings):
    settings.CHECKR_API_KEY = "wrong"
    with pytest.raises(screening.ScreeningError, match="401"):
        services.screening_provider().start(candidate())
    settings.CHECKR_API_KEY = KEY
    settings.CHECKR_API_URL = "http://127.0.0.1:9"
    with pytest.raises(screening.ScreeningError):
        services.screening_provider().start(candidate())


def signed(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def event(event_id: str, report_id: str, status: str, result: str | None) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": f"report.{'completed' if status == 'complete' else status}",
            "data": {"object": {"id": report_id, "object": "report", "status": status, "result": result}},
        }
    ).encode()


@pytest.fixture
def waiting(org, checkr):
    """An application whose other checks passed, waiting on Checkr's report rep_1."""
    application = signed_up(org)
    report = services.screening_provider().start(services._candidate(application))
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.SCREENING, screening_provider="checkr", screening_reference=report.reference
    )
    CheckResult.objects.create(application=application, step="screening", outcome="PENDING")
    return application


def deliver(body: bytes, signature: str):
    return APIClient().post(WEBHOOK, body, content_type="application/json", HTTP_X_CHECKR_SIGNATURE=signature)


def test_a_signed_clear_report_approves_and_a_replay_changes_nothing(waiting):
    body = event("evt_1", "rep_1", "complete", "clear")
    answer = deliver(body, signed(body))
    assert answer.status_code == 200 and answer.json() == {"outcome": "decided"}
    waiting.refresh_from_db()
    assert waiting.status == ApplicationStatus.APPROVED
    assert Driver.objects.get(id=waiting.driver_id).status == DriverStatus.ACTIVE
    assert CheckResult.objects.get(application=waiting, step="screening").outcome == "PASSED"
    assert deliver(body, signed(body)).json() == {"outcome": "replay"}
    assert ScreeningWebhookEvent.objects.count() == 1


def test_a_consider_report_sends_the_application_to_review(waiting):
    body = event("evt_2", "rep_1", "complete", "consider")
    assert deliver(body, signed(body)).json() == {"outcome": "decided"}
    waiting.refresh_from_db()
    assert waiting.status == ApplicationStatus.MANUAL_REVIEW
    assert waiting.decision_codes == ["SCREENING_CONSIDER"]
    assert waiting.reviews.get().status == "OPEN"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: ("0" * 64, body),
        lambda body: (signed(body, "another-key"), body),
        lambda body: (signed(body), body.replace(b"consider", b"clear")),  # body changed after signing
        lambda body: ("", body),
    ],
    ids=["zeros", "other-key", "tampered-body", "missing"],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(waiting, mangle):
    signature, body = mangle(event("evt_3", "rep_1", "complete", "consider"))
    response = deliver(body, signature)
    assert response.status_code == 403
    assert "X-Checkr-Signature" in response.json()["error"]["message"]
    waiting.refresh_from_db()
    assert waiting.status == ApplicationStatus.SCREENING
    assert not ScreeningWebhookEvent.objects.exists()


def test_a_signed_body_that_is_not_a_report_event_is_a_400_naming_the_body(waiting):
    body = b'{"id": "evt_4", "data": {"object": {"id": "rep_1", "status": "exploded"}}}'
    response = deliver(body, signed(body))
    assert response.status_code == 400
    assert "body" in response.json()["error"]["fields"]


def test_the_local_provider_considers_listed_document_numbers(settings):
    settings.ONBOARDING_SCREENING_PROVIDER = "local"
    settings.ONBOARDING_LOCAL_SCREENING_CONSIDER = ["ut1234567"]
    provider = services.screening_provider()
    assert provider.start(candidate()).result == "consider"
    other = screening.Candidate("app-2", "A", "B", "1990-01-01", "a@example.com", "X1")
    assert provider.start(other) == screening.ScreeningReport("local-app-2", "complete", "clear")


def test_a_lost_webhook_is_made_up_for_by_asking_checkr(waiting, checkr, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from onboarding import tasks

    assert services.refresh_screening(application_id=waiting.id) == "stored"  # still pending
    checkr.reports["rep_1"].update(status="complete", result="clear")
    Application.objects.filter(id=waiting.id).update(submitted_at=timezone.now() - timedelta(hours=7))
    queued = []
    monkeypatch.setattr(tasks.refresh_screening, "delay", queued.append)
    assert tasks.resume_pipelines() == 1 and queued == [str(waiting.id)]
    assert services.refresh_screening(application_id=waiting.id) == "decided"
    waiting.refresh_from_db()
    assert waiting.status == ApplicationStatus.APPROVED
    assert services.refresh_screening(application_id=waiting.id) == "not waiting"
