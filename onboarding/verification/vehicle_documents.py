"""Registration and insurance papers: the plate, the expiry date and the VIN out of OCR text
(``ocr.read_visual_zone`` of a photo of the paper, or a PDF's text).

Labelled values win: a plate after "Registration number", "Reg. no", "Plate", "Licence
plate", "Kennzeichen", "Rekisteritunnus"...; an expiry after "Expiry", "Expires", "Valid
until", "Valid to", "Expiration", "Period of insurance ... to", "Gültig bis"... Without an
expiry label the latest date in the text is taken (a policy prints its start before its end),
unless ``unlabelled_expiry=False`` (a registration certificate: its dates are first
registration and issue, and many never expire).
Dates: ISO, ``dd.mm.yyyy``, ``dd/mm/yyyy`` (``mm/dd/yyyy`` with ``day_first=False``; a
part above 12 decides either way), and ``15 Apr 2027`` / ``April 15, 2027``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from onboarding.verification.vin import check_vin

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
_PLATE_LABEL = re.compile(
    r"(?i:registration\s*(?:no\.?|number|mark)|reg\.?\s*no\.?|licen[cs]e\s*plate|number\s*plate"
    r"|plate(?:\s*(?:no\.?|number))?|kennzeichen|rekisteritunnus|immatriculation)"
    r"[ \t]*[:#.]?[ \t]*([A-Z0-9]{1,8}(?:[ -][A-Z0-9]{1,8}){0,2})\b"
)
_EXPIRY_LABEL = re.compile(
    r"(?:expiry(?:\s*date)?|expires(?:\s*on)?|expiration(?:\s*date)?|valid\s*(?:until|to|thru|through)|"
    r"end\s*date|cover\s*ends|g[üu]ltig\s*bis|voimassa)\s*[:.]?\s*",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"(?P<iso>\d{4}-\d{2}-\d{2})"
    r"|(?P<num>\d{1,2}[./-]\d{1,2}[./-]\d{4})"
    r"|(?P<dmy>\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4})"
    r"|(?P<mdy>[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})"
)
_VIN = re.compile(r"\b[A-Z0-9]{17}\b")
# A VIN never holds I, O or Q (for this very confusion): OCR's I, O, Q in one are 1, 0, 0.
_VIN_OCR = str.maketrans("IOQ", "100")


@dataclass(frozen=True)
class VehicleDocument:
    """``vin`` is the first VIN whose check digit holds, else the first VIN-shaped text with
    ``vin_reasons`` saying why it fails; ``reasons`` lists what could not be found."""

    plate: str | None
    expiry_date: str | None
    vin: str | None
    reasons: list[str] = field(default_factory=list)
    vin_reasons: list[str] = field(default_factory=list)


def plate_key(plate: str) -> str:
    """A plate as compared: upper case, letters and digits only ("ab-12 c" = "AB12C")."""
    return re.sub(r"[^A-Z0-9]", "", plate.upper())


def parse_date(text: str, *, day_first: bool = True) -> date | None:
    """One date in any of the module's formats, or None."""
    match = _DATE.search(text)
    if not match:
        return None
    value = match.group()
    try:
        if match.group("iso"):
            return date.fromisoformat(value)
        if match.group("num"):
            a, b, year = (int(part) for part in re.split(r"[./-]", value))
            day, month = (a, b) if (day_first and b <= 12) or a > 12 else (b, a)
            return date(year, month, day)
        words = value.replace(",", " ").replace(".", " ").split()
        if match.group("dmy"):
            day, month, year = int(words[0]), _MONTHS.get(words[1][:3].upper()), int(words[2])
        else:
            month, day, year = _MONTHS.get(words[0][:3].upper()), int(words[1]), int(words[2])
        return date(year, month, day) if month else None
    except ValueError:
        return None


def _all_dates(text: str, *, day_first: bool) -> list[date]:
    found = (parse_date(m.group(), day_first=day_first) for m in _DATE.finditer(text))
    return [d for d in found if d]


def parse_vehicle_document(
    text: str, *, day_first: bool = True, unlabelled_expiry: bool = True
) -> VehicleDocument:
    """Plate, expiry (ISO) and a VIN whose check digit holds where required, from OCR text."""
    reasons = []
    plate_match = _PLATE_LABEL.search(text)
    plate = " ".join(plate_match.group(1).split()) if plate_match else None
    if not plate:
        reasons.append("no registration plate found")
    expiry = None
    for label in _EXPIRY_LABEL.finditer(text):
        dates = _all_dates(text[label.end() : label.end() + 40], day_first=day_first)
        if dates:
            expiry = dates[0]
            break
    if expiry is None and unlabelled_expiry:
        dates = _all_dates(text, day_first=day_first)
        expiry = max(dates) if dates else None
    if expiry is None:
        reasons.append("no expiry date found")
    vins = [
        check_vin(m.group().translate(_VIN_OCR))
        for m in _VIN.finditer(text.upper())
        if re.search(r"\d", m.group())  # a long word is no VIN: every VIN has digits
    ]
    vin = next((v for v in vins if v.valid), vins[0] if vins else None)
    return VehicleDocument(
        plate,
        expiry.isoformat() if expiry else None,
        vin.vin if vin else None,
        reasons,
        vin.reasons if vin else [],
    )
