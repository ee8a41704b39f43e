"""VINs (ISO 3779 check digit, WMI) and registration / insurance text."""

import pytest

from onboarding.verification.vehicle_documents import parse_date, parse_vehicle_document
from onboarding.verification.vin import check_vin


def test_a_north_american_vin_needs_its_check_digit():
    good = check_vin("1M8GDM9AXKP042788")
    assert good.valid and good.check_digit_ok is True
    assert (good.manufacturer, good.country, good.region) == ("Mercury", "United States", "North America")
    bad = check_vin("1M8GDM9AYKP042788")
    assert not bad.valid and bad.check_digit_ok is False
    assert bad.reasons == ["the check digit (position 9, Y) does not match"]


def test_a_european_vin_has_no_check_digit_to_hold():
    vw = check_vin("wvw zzz1jzxw000001")
    assert vw.vin == "WVWZZZ1JZXW000001"
    assert vw.valid and vw.check_digit_ok is None
    assert (vw.manufacturer, vw.country) == ("Volkswagen", "Germany")


def test_a_japanese_vin_for_north_america_that_uses_the_check_digit():
    honda = check_vin("JHMCM56557C404453")
    assert honda.valid and honda.check_digit_ok is True and honda.manufacturer == "Honda"
    assert honda.model_years == [2007]


@pytest.mark.parametrize("text", ["1M8GDM9AXKP04278", "1M8GDM9AXKPO42788", ""])
def test_malformed_vins(text):
    result = check_vin(text)
    assert not result.valid and result.reasons == ["a VIN is 17 letters and digits, without I, O or Q"]


def test_a_registration_certificate():
    text = """VEHICLE REGISTRATION CERTIFICATE
    Registration number: AB12 CDE Make FORD
    VIN 1M8GDM9AXKP042788 and a wrong one 1M8GDM9AYKP042788
    Date of first registration 01/03/2019
    Valid until: 28.02.2027"""
    document = parse_vehicle_document(text)
    assert (document.plate, document.expiry_date, document.vin) == (
        "AB12 CDE",
        "2027-02-28",
        "1M8GDM9AXKP042788",
    )
    assert document.reasons == []


def test_an_insurance_certificate_without_an_expiry_label_takes_the_cover_end():
    text = "CERTIFICATE OF MOTOR INSURANCE\nPeriod of insurance: from 15 Apr 2026 to 14 Apr 2027\nLicence plate ABC-123"
    document = parse_vehicle_document(text)
    assert (document.plate, document.expiry_date, document.vin) == ("ABC-123", "2027-04-14", None)


def test_us_dates_month_first():
    document = parse_vehicle_document(
        "Plate: 7XYZ123 Effective 04/15/2026 Expires 04/14/2027", day_first=False
    )
    assert (document.plate, document.expiry_date) == ("7XYZ123", "2027-04-14")


def test_nothing_found_says_so():
    assert parse_vehicle_document("a shopping list").reasons == [
        "no registration plate found",
        "no expiry date found",
    ]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2027-02-28", "2027-02-28"),
        ("28/02/2027", "2027-02-28"),
        ("02/28/2027", "2027-02-28"),
        ("April 15, 2027", "2027-04-15"),
        ("15 APR 2027", "2027-04-15"),
    ],
)
def test_date_formats(text, iso):
    assert parse_date(text).isoformat() == iso


def test_an_impossible_date_is_none():
    assert parse_date("31/02/2027") is None and parse_date("no date") is None
