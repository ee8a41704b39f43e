"""An applicant going through the onboarding API, as the mobile pages do: sign up through the
organisation's link, details, consents, ID page, selfie, the liveness challenge's frames,
vehicle photo, submit. The ID page is a Utopia specimen passport (demo.applicants)."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from demo import liveness_frames as frames
from demo.applicants import Person, passport_page, png
from onboarding import services
from onboarding.models import Application
from tests.onboarding.conftest import FACES, VEHICLES

OBAMA = Person("Virtanen", "Barack", "UT1234567", date(1961, 8, 4), date(2031, 1, 1), sex="M")
API = "/api/v1/onboarding"


@dataclass
class Applicant:
    client: APIClient
    application: Application


def upload(client: APIClient, kind: str, data: bytes, name: str = "photo.jpg", **extra):
    return client.post(
        f"{API}/application/documents",
        {"kind": kind, "file": SimpleUploadedFile(name, data, "image/jpeg"), **extra},
        format="multipart",
    )


def sign_up(organisation, username: str, *, vehicle_type: str = "car") -> APIClient:
    client = APIClient()
    token = services.policy_for(organisation).signup_token
    response = client.post(
        f"{API}/signup/{token}",
        {
            "username": username,
            "password": "A-long-pass-phrase-42",
            "name": f"Applicant {username}",
            "phone": f"+35840{sum(map(ord, username)) * 7919 % 10**7:07d}",
            "email": f"{username}@example.com",
            "vehicle_type": vehicle_type,
            "plate": f"UTO-{sum(map(ord, username)) % 1000:03d}",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return client


def fill_in(
    client: APIClient,
    *,
    person: Person = OBAMA,
    id_face: Path = FACES / "obama_b.jpg",
    selfie: Path = FACES / "obama_a.jpg",
    vehicle: Path = VEHICLES / "coco_000000001532_highway_cars.jpg",
    details: dict | None = None,
) -> dict:
    """Everything but submit; each answer checked. The synthetic liveness frames go up as PNG:
    their painted-over blink does not survive JPEG on every face (a real blink does). Returns the application as the API shows it."""
    ok = client.post(f"{API}/application/details", details or person.declared(), format="json")
    assert ok.status_code == 200, ok.content
    for kind, text in ok.json()["consent_texts"].items():
        given = client.post(
            f"{API}/application/consents", {"kind": kind, "text_version": text["version"]}, format="json"
        )
        assert given.status_code == 200, given.content
    for kind, data, name in (
        ("ID_FRONT", passport_page(person, id_face), "passport.png"),
        ("SELFIE", selfie.read_bytes(), selfie.name),
        ("VEHICLE_PHOTO", vehicle.read_bytes(), vehicle.name),
    ):
        sent = upload(client, kind, data, name)
        assert sent.status_code == 201, sent.content
    challenge = client.post(f"{API}/application/liveness").json()["liveness_challenge"]
    for frame in frames.sequence(selfie, challenge):
        sent = upload(client, "LIVENESS_FRAME", png(frame), "frame.png")
        assert sent.status_code == 201, sent.content
    return sent.json()


def submit(client: APIClient) -> dict:
    response = client.post(f"{API}/application/submit")
    assert response.status_code == 200, response.content
    return client.get(f"{API}/application").json()
