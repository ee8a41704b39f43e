"""Background screening providers: a small interface, a Checkr adapter over HTTP and a local
rules provider (the default; no network).

Checkr's protocol (https://docs.checkr.com): HTTP Basic with the API key as the user name;
`POST /v1/candidates` -> candidate id; `POST /v1/reports {candidate_id, package}` -> a report
whose `status` is `pending`, `complete` or `suspended` and, once complete, `result` `clear` or
`consider`; `GET /v1/reports/{id}`. Webhooks (`report.completed`, `report.suspended`...) carry
the report in `data.object` and are signed: `X-Checkr-Signature` is the hex HMAC-SHA256 of the
raw body keyed with the API key.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

import httpx


class ScreeningError(Exception):
    """The provider could not be reached or answered nonsense; the step is retried."""


@dataclass(frozen=True)
class ScreeningReport:
    reference: str
    status: str  # pending, complete, suspended
    result: str | None  # clear, consider (when complete)


@dataclass(frozen=True)
class Candidate:
    application_id: str
    first_name: str
    last_name: str
    birth_date: str  # ISO
    email: str
    document_number: str


class ScreeningProvider(Protocol):
    name: str

    def start(self, candidate: Candidate) -> ScreeningReport: ...

    def fetch(self, reference: str) -> ScreeningReport: ...


class LocalRulesProvider:
    """Answers at once: `consider` for a document number on the configured list, else clear."""

    name = "local"

    def __init__(self, *, consider_document_numbers: list[str]) -> None:
        self.consider = {number.strip().upper() for number in consider_document_numbers if number.strip()}

    def start(self, candidate: Candidate) -> ScreeningReport:
        result = "consider" if candidate.document_number.upper() in self.consider else "clear"
        return ScreeningReport(f"local-{candidate.application_id}", "complete", result)

    def fetch(self, reference: str) -> ScreeningReport:
        raise ScreeningError("The local provider answers at once; there is nothing to fetch.")


class CheckrProvider:
    name = "checkr"

    def __init__(self, *, base_url: str, api_key: str, package: str, timeout: float = 10.0) -> None:
        if not api_key:
            raise ScreeningError("CHECKR_API_KEY is not set.")
        self.package = package
        self.api_key = api_key
        self.http = httpx.Client(base_url=base_url.rstrip("/"), auth=(api_key, ""), timeout=timeout)

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.http.request(method, path, **kwargs)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ScreeningError(f"Checkr {method} {path}: {exc}") from exc
        if not isinstance(body, dict) or not body.get("id"):
            raise ScreeningError(f"Checkr {method} {path}: no id in the answer")
        return body

    def start(self, candidate: Candidate) -> ScreeningReport:
        made = self._call(
            "POST",
            "/v1/candidates",
            json={
                "first_name": candidate.first_name,
                "last_name": candidate.last_name,
                "dob": candidate.birth_date,
                "email": candidate.email,
                "custom_id": candidate.application_id,
                "no_middle_name": True,
            },
        )
        return report_of(
            self._call("POST", "/v1/reports", json={"candidate_id": made["id"], "package": self.package})
        )

    def fetch(self, reference: str) -> ScreeningReport:
        return report_of(self._call("GET", f"/v1/reports/{reference}"))


def report_of(body: dict) -> ScreeningReport:
    status = body.get("status")
    if status not in ("pending", "complete", "suspended", "dispute"):
        raise ScreeningError(f"Unknown report status {status!r}.")
    result = body.get("result")
    if status == "complete" and result not in ("clear", "consider"):
        raise ScreeningError(f"A complete report with result {result!r}.")
    return ScreeningReport(str(body["id"]), "pending" if status == "dispute" else status, result)


def signature_valid(body: bytes, signature: str, key: str) -> bool:
    """`X-Checkr-Signature`: hex HMAC-SHA256 of the raw body with the API key, compared in
    constant time."""
    if not key or not signature:
        return False
    expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())
