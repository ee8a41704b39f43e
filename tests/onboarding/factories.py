"""Applications in a given state without running the (slow) image checks: signed up through
the services, with small generated images; the decision applied by fleet.services as the
pipeline would."""

import io
from datetime import date

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.actors import Actor
from fleet import services as fleet_services
from onboarding import services
from onboarding.models import Application, ApplicationStatus, Document
from tests.onboarding.flow import OBAMA

_numbers = iter(range(1, 10**6))


def image_bytes(colour=(200, 30, 30), size=(64, 48), image_format="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def signed_up(organisation, username: str | None = None, **vehicle) -> Application:
    """A draft application with details; ``vehicle``: vehicle_type, plate, vin (a bicycle)."""
    n = next(_numbers)
    username = username or f"applicant{n}"
    application = services.sign_up(
        signup_token=services.policy_for(organisation).signup_token,
        username=username,
        password="A-long-pass-phrase-42",
        name=f"Applicant {n}",
        phone=f"+3584055{n:05d}",
        email=f"{username}@example.com",
        **{"vehicle_type": "bicycle", **vehicle},
    )
    services.set_details(
        application_id=application.id,
        driver=application.driver,
        details={**OBAMA.declared(), "document_number": f"UT{n:07d}"},
    )
    application.refresh_from_db()
    return application


def add(
    application: Application, kind: str, data: bytes | None = None, expires_on: date | None = None
) -> Document:
    return services.add_document(
        application_id=application.id,
        driver=application.driver,
        kind=kind,
        upload=SimpleUploadedFile("x.jpg", data or image_bytes(), "image/jpeg"),
        expires_on=expires_on,
    )


def approved(organisation, *, decided_at=None) -> Application:
    """An approved applicant: an ACTIVE driver."""
    application = signed_up(organisation)
    fleet_services.change_driver_status(
        driver_id=application.driver_id,
        organisation=organisation,
        action="approve",
        actor=Actor.system("test"),
        reason="All checks passed.",
    )
    Application.objects.filter(id=application.id).update(
        status=ApplicationStatus.APPROVED, decided_at=decided_at or application.created_at
    )
    application.refresh_from_db()
    return application
