"""Specimen applicants for the demo and the tests: an ICAO TD3 passport page drawn from
declared details (a valid MRZ, the holder's photo, the printed fields), made with the
verification fixtures' faces; the vehicle's registration certificate and insurance
certificate as printed papers; a US-style driving licence back (AAMVA PDF417). Fictional
people on a fictional state's (Utopia) documents."""

import io
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from onboarding.verification.mrz import check_digit, name_as_mrz

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OCR_B = "/usr/share/fonts/opentype/ocr-b/OCRB.otf"
PAPER_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@dataclass(frozen=True)
class Person:
    surname: str
    given_names: str
    document_number: str
    birth_date: date
    expiry_date: date
    sex: str = "F"
    nationality: str = "UTO"

    def declared(self) -> dict:
        return {
            "surname": self.surname,
            "given_names": self.given_names,
            "birth_date": self.birth_date.isoformat(),
            "document_number": self.document_number,
            "nationality": self.nationality,
        }


def td3_lines(person: Person) -> list[str]:
    """The two 44-character MRZ lines of a passport, with ICAO 9303 check digits."""
    name = name_as_mrz(person.surname, person.given_names)
    line1 = f"P<{person.nationality}{name}".ljust(44, "<")[:44]
    number = person.document_number.upper().ljust(9, "<")
    birth, expiry = person.birth_date.strftime("%y%m%d"), person.expiry_date.strftime("%y%m%d")
    optional = "<" * 14
    parts = [number + check_digit(number), birth + check_digit(birth), expiry + check_digit(expiry)]
    optional_part = optional + check_digit(optional)
    composite = check_digit(parts[0] + parts[1] + parts[2] + optional_part)
    line2 = f"{parts[0]}{person.nationality}{parts[1]}{person.sex}{parts[2]}{optional_part}{composite}"
    return [line1, line2]


def passport_page(person: Person, face: Path, *, lines: list[str] | None = None) -> bytes:
    """A PNG of the data page: heading, photo, printed fields, MRZ set in OCR-B."""
    mrz_font = ImageFont.truetype(OCR_B, 28)
    text_font = ImageFont.truetype(OCR_B, 24)
    lines = lines or td3_lines(person)
    width = int(mrz_font.getlength(lines[0])) + 80
    page = Image.new("RGB", (width, 470), (236, 240, 232))
    draw = ImageDraw.Draw(page)
    draw.text((40, 20), "UTOPIA  PASSPORT", font=text_font, fill=(40, 40, 90))
    with Image.open(face) as photo:
        photo = photo.convert("RGB")
        photo.thumbnail((220, 260))
        page.paste(photo, (40, 70))
    printed = [
        person.surname.upper(),
        person.given_names.upper(),
        person.document_number.upper(),
        person.birth_date.strftime("%d %m %Y"),
    ]
    for i, text in enumerate(printed):
        draw.text((300, 80 + i * 44), text, font=text_font, fill=(20, 20, 20))
    for i, line in enumerate(lines):
        draw.text((40, 370 + i * 42), line, font=mrz_font, fill=(20, 20, 20))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class VehiclePapers:
    plate: str
    vin: str
    registration_expiry: date | None = None  # many registrations never expire
    insurance_to: date | None = None  # a year's cover ending on this day; else in ten months


def _cover(papers: VehiclePapers) -> tuple[date, date]:
    end = papers.insurance_to or date.today() + timedelta(days=300)
    return end - timedelta(days=364), end


def _paper(lines: list[str], heading: str) -> bytes:
    """A scanned paper: a heading and one labelled field a line, black on off-white."""
    font, title = ImageFont.truetype(PAPER_FONT, 26), ImageFont.truetype(PAPER_FONT, 32)
    page = Image.new("RGB", (1100, 140 + 48 * len(lines)), (248, 246, 240))
    draw = ImageDraw.Draw(page)
    draw.text((50, 40), heading, font=title, fill=(30, 30, 80))
    for i, line in enumerate(lines):
        draw.text((50, 120 + i * 48), line, font=font, fill=(20, 20, 20))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def registration_certificate(person: Person, papers: VehiclePapers) -> bytes:
    lines = [
        f"Registration number: {papers.plate}",
        f"Holder: {person.given_names.upper()} {person.surname.upper()}",
        f"VIN: {papers.vin}",
        "Date of first registration: 01.03.2019",
    ]
    if papers.registration_expiry:
        lines.append(f"Valid until: {papers.registration_expiry:%d.%m.%Y}")
    return _paper(lines, "UTOPIA VEHICLE REGISTRATION CERTIFICATE")


def insurance_certificate(person: Person, papers: VehiclePapers) -> bytes:
    start, end = _cover(papers)
    return _paper(
        [
            f"Policyholder: {person.given_names.upper()} {person.surname.upper()}",
            f"Licence plate: {papers.plate}",
            f"Period of insurance: from {start:%d.%m.%Y} to {end:%d.%m.%Y}",
        ],
        "CERTIFICATE OF MOTOR INSURANCE",
    )


def aamva_payload(person: Person, *, expiry: date, number: str = "D1234562", state: str = "CA") -> str:
    """A driving licence's AAMVA (version 9) payload for the person: US dates (MMDDCCYY)."""
    given, _, middle = person.given_names.upper().partition(" ")
    elements = [
        f"DAQ{number}",
        f"DCS{person.surname.upper()}",
        f"DAC{given}",
        f"DAD{middle or 'NONE'}",
        f"DBB{person.birth_date:%m%d%Y}",
        f"DBA{expiry:%m%d%Y}",
        f"DBC{'1' if person.sex == 'M' else '2'}",
        f"DAJ{state}",
        "DCGUSA",
    ]
    return "@\n\x1e\rANSI 636014090001DL00310200DL" + "\n".join(elements) + "\r"


def licence_back(payload: str) -> bytes:
    """The back of a licence: its PDF417 barcode (zxing-cpp writes it) on a card."""
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.PDF417).to_image(scale=3)
    code = Image.fromarray(barcode).convert("RGB")
    card = Image.new("RGB", (code.width + 120, code.height + 160), (235, 238, 245))
    card.paste(code, (60, 100))
    ImageDraw.Draw(card).text(
        (60, 30), "UTOPIA DRIVER LICENSE", font=ImageFont.truetype(PAPER_FONT, 28), fill=(30, 30, 80)
    )
    buffer = io.BytesIO()
    card.save(buffer, format="PNG")
    return buffer.getvalue()


def encoded(array, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


def jpeg(array) -> bytes:
    return encoded(array, "JPEG")


def png(array) -> bytes:
    return encoded(array, "PNG")


@dataclass(frozen=True)
class DemoApplicant:
    username: str
    person: Person
    id_face: str
    selfie: str
    phone: str
    vehicle: str
    vehicle_type: str
    papers: VehiclePapers
    with_registration: bool = True  # else the insurance certificate only
    declared_surname: str = ""  # a typo in the declared details: the checks send it to review
    appeal: str = ""


VIRTANEN = Person("Virtanen", "Barack", "UT1234567", date(1961, 8, 4), date(2031, 1, 1), sex="M")
DEMO_APPLICANTS = (
    DemoApplicant(
        "applicant-clean",
        VIRTANEN,
        "obama_b.jpg",
        "obama_a.jpg",
        "+358409900001",
        "coco_000000001532_highway_cars.jpg",
        "car",
        VehiclePapers("DEM-001", "JHMCM56557C404453"),
    ),
    DemoApplicant(
        "applicant-typo",
        Person("Korhonen", "Mikael Juhani", "UT7654321", date(1984, 3, 12), date(2030, 6, 30), sex="M"),
        "obama_b.jpg",
        "obama_c.jpg",
        "+358409900002",
        "coco_000000009769_pickup_truck.jpg",
        "car",
        VehiclePapers("DEM-002", "1M8GDM9AXKP042788", registration_expiry=date(2028, 5, 31)),
        declared_surname="Korhone",
    ),
    DemoApplicant(
        "applicant-stranger",
        Person("Nieminen", "Jaakko", "UT2345678", date(1990, 11, 23), date(2029, 9, 15), sex="M"),
        "obama_b.jpg",
        "biden_b.jpg",
        "+358409900003",
        "skimage_motorcycle_left.png",
        "motorcycle",
        VehiclePapers("DEM-003", ""),
        with_registration=False,
        appeal="The selfie is me; the passport photo is ten years old.",
    ),
)


def seed_applicants(organisation) -> list:
    """A few applicants, each their own person (name, birth date, documents), sent through the
    real flow (services and the pipeline): one approved, one in review, one denied who
    appealed, so the review queue has work. Skips those that exist. Each uploads its own photos
    and vehicle papers (the same bytes in two applications is tampering).
    Takes a few seconds each (OCR and face models)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from demo.liveness_frames import sequence
    from identity.models import User
    from onboarding import services
    from onboarding.models import DocumentKind

    applications = []
    for demo in DEMO_APPLICANTS:
        if User.objects.filter(username=demo.username).exists():
            continue
        application = services.sign_up(
            signup_token=services.policy_for(organisation).signup_token,
            username=demo.username,
            password=secrets.token_urlsafe(16),
            name=f"{demo.person.given_names} {demo.person.surname}",
            phone=demo.phone,
            email=f"{demo.username}@example.com",
            vehicle_type=demo.vehicle_type,
            plate=demo.papers.plate,
            vin=demo.papers.vin,
        )
        ids = {"application_id": application.id, "driver": application.driver}
        declared = demo.person.declared()
        services.set_details(
            **ids, details={**declared, "surname": demo.declared_surname or declared["surname"]}
        )
        for kind, (version, _text) in services.CONSENT_TEXTS.items():
            services.give_consent(**ids, kind=kind, text_version=version)
        uploads = [
            (DocumentKind.ID_FRONT, passport_page(demo.person, FIXTURES / "faces" / demo.id_face)),
            (DocumentKind.SELFIE, (FIXTURES / "faces" / demo.selfie).read_bytes()),
            (
                DocumentKind.VEHICLE_PHOTO,
                (FIXTURES / "vehicles" / demo.vehicle).read_bytes(),
            ),
            (DocumentKind.INSURANCE, insurance_certificate(demo.person, demo.papers)),
        ]
        if demo.with_registration:
            uploads.append(
                (DocumentKind.VEHICLE_REGISTRATION, registration_certificate(demo.person, demo.papers))
            )
        for kind, data in uploads:
            services.add_document(**ids, kind=kind, upload=SimpleUploadedFile("upload", data))
        challenge = services.start_liveness(**ids)
        for frame in sequence(FIXTURES / "faces" / demo.selfie, challenge):
            services.add_document(
                **ids, kind=DocumentKind.LIVENESS_FRAME, upload=SimpleUploadedFile("f", png(frame))
            )
        services.submit(**ids)
        application = services.run_pipeline(application_id=application.id)  # a no-op if the task ran it
        if demo.appeal and application.status == "ACCESS_DENIED":
            services.appeal(**ids, text=demo.appeal)
        applications.append(application)
    return applications
