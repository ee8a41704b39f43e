"""Specimen applicants for the demo and the tests: an ICAO TD3 passport page drawn from
declared details (a valid MRZ, the holder's photo, the printed fields), made with the
verification fixtures' faces. Fictional people on a fictional state's (Utopia) document."""

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from onboarding.verification.mrz import check_digit

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OCR_B = "/usr/share/fonts/opentype/ocr-b/OCRB.otf"


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
    name = f"{person.surname}<<{person.given_names.replace(' ', '<')}".upper()
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


def encoded(array, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=image_format)
    return buffer.getvalue()


def jpeg(array) -> bytes:
    return encoded(array, "JPEG")


def png(array) -> bytes:
    return encoded(array, "PNG")
