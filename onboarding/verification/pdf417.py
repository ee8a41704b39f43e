"""US and Canadian driving licences: the PDF417 barcode on the back (AAMVA DL/ID Card Design
Standard), read with zxing-cpp.

The payload is ``@`` LF RS CR, ``ANSI `` (or ``AAMVA``), the issuer's 6-digit IIN, versions,
a directory of subfiles, then the ``DL`` (or ``ID``) subfile: one element per line, a
three-letter element ID then its value. Elements used: DAQ licence number, DCS surname
(DAB before version 4), DAC first name (DCT given names before version 4), DAD middle
names, DBB birth date, DBA expiry date, DBC sex (1 male, 2 female, 9 unspecified), DAJ
state or province, DCG country. Dates are MMDDCCYY in the USA and CCYYMMDD in Canada.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import zxingcpp

from onboarding.verification.images import ImageSource, load_rgb

_HEADER = re.compile(r"@\n\x1e\r(?:ANSI |AAMVA)(\d{6})(\d{2})")
_SEX = {"1": "M", "2": "F", "9": "X", "M": "M", "F": "F", "X": "X"}


class NoBarcodeFound(ValueError):
    """No PDF417 barcode could be decoded from the image."""


@dataclass(frozen=True)
class LicenceData:
    """What the barcode says; ``reasons`` lists what is missing or malformed (empty = complete)."""

    fields: dict[str, str | None]
    elements: dict[str, str]
    issuer_id: str
    version: int | None
    reasons: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.reasons


def decode_pdf417(source: ImageSource) -> str:
    """The raw text of the first PDF417 barcode in the image (control characters kept)."""
    found = zxingcpp.read_barcodes(load_rgb(source), formats=zxingcpp.BarcodeFormat.PDF417)
    if not found:
        raise NoBarcodeFound("no PDF417 barcode found in the image")
    return found[0].bytes.decode("latin-1")


def parse_aamva(text: str) -> LicenceData:
    """Parse an AAMVA payload into the same field names as an MRZ (plus ``country``)."""
    header = _HEADER.search(text)
    issuer_id, version = (header.group(1), int(header.group(2))) if header else ("", None)
    body = text[header.end() :] if header else text
    # after the directory ("DL" + offset + length, ...) the subfile starts: "DL" or "ID", then
    # its first element ("DLDAQ...")
    start = re.search(r"(?:DL|ID)(?=D[A-Z]{2})", body)
    body = body[start.end() :] if start else body
    elements: dict[str, str] = {}
    for raw in re.split(r"[\n\r]", body):
        line = raw.strip()
        if re.match(r"^D[A-Z]{2}.", line) and line[:3] not in elements:
            elements[line[:3]] = line[3:].strip()
    country = elements.get("DCG") or None
    reasons = [] if header else ["no AAMVA header (@ LF RS CR ANSI)"]
    dates = {}
    for name, element in (("birth_date", "DBB"), ("expiry_date", "DBA")):
        dates[name] = _date(elements.get(element, ""), canadian=country == "CAN")
        if dates[name] is None:
            reasons.append(f"{name.replace('_', ' ')} ({element}) missing or not a date")
    given = elements.get("DAC") or elements.get("DCT", "").replace(",", " ")
    fields = {
        "document_number": elements.get("DAQ") or None,
        "surname": elements.get("DCS") or elements.get("DAB") or None,
        "given_names": " ".join(part for part in (given, elements.get("DAD", "")) if part and part != "NONE")
        or None,
        "birth_date": dates["birth_date"],
        "expiry_date": dates["expiry_date"],
        "sex": _SEX.get(elements.get("DBC", "")),
        "issuing_state": elements.get("DAJ") or None,
        "country": country,
    }
    reasons += [
        f"{name.replace('_', ' ')} missing"
        for name in ("document_number", "surname", "issuing_state")
        if not fields[name]
    ]
    return LicenceData(fields, elements, issuer_id, version, reasons)


def read_licence(source: ImageSource) -> LicenceData:
    """Decode and parse the licence barcode in a photo of the back of the card."""
    return parse_aamva(decode_pdf417(source))


def _date(value: str, *, canadian: bool) -> str | None:
    if not re.fullmatch(r"\d{8}", value):
        return None
    candidates = [(value[:4], value[4:6], value[6:]), (value[4:], value[:2], value[2:4])]
    if not canadian:
        candidates.reverse()
    for year, month, day in candidates:
        try:
            return date(int(year), int(month), int(day)).isoformat()
        except ValueError:
            continue
    return None
