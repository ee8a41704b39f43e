"""Vehicle identification numbers (ISO 3779): shape, the check digit where the region uses
it, and the maker from the WMI (the first three characters), decoded by ``vininfo``.

The check digit (position 9, 49 CFR 565: transliterate, weights 8 7 6 5 4 3 2 10 0 9 ... 2,
sum mod 11, 10 = X) is mandatory for vehicles made for North America (WMI starting 1-5, and
the many Asian and European cars built for that market that use it too). Elsewhere (e.g. most
EU VINs) position 9 is free, so a mismatch there is not a fault: ``check_digit_ok`` is None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vininfo import Vin
from vininfo.exceptions import ValidationError

VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


@dataclass(frozen=True)
class VinResult:
    vin: str
    valid: bool
    reasons: list[str] = field(default_factory=list)
    manufacturer: str | None = None
    country: str | None = None
    region: str | None = None
    check_digit_ok: bool | None = None
    model_years: list[int] = field(default_factory=list)


def check_vin(text: str) -> VinResult:
    """Validate a VIN: 17 characters without I, O or Q; the check digit when the region
    requires it (or the VIN verifies anyway); the maker when the WMI is known."""
    vin = "".join(text.upper().split())
    if not VIN_PATTERN.match(vin):
        return VinResult(vin, False, ["a VIN is 17 letters and digits, without I, O or Q"])
    try:
        decoded = Vin(vin)
    except ValidationError as error:
        return VinResult(vin, False, [str(error)])
    holds = decoded.verify_checksum(check_year=False)
    required = vin[0] in "12345" or holds
    reasons = [] if holds or not required else [f"the check digit (position 9, {vin[8]}) does not match"]
    return VinResult(
        vin,
        not reasons,
        reasons,
        manufacturer=decoded.manufacturer if decoded.manufacturer != "UnsupportedBrand" else None,
        country=decoded.country,
        region=decoded.region,
        check_digit_ok=holds if required else None,
        model_years=list(decoded.years),
    )
