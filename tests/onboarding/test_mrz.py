"""MRZ parsing, validation and repair (onboarding.verification.mrz) and `check_mrz`."""

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from onboarding.verification.countries import is_icao_code
from onboarding.verification.mrz import check_digit, parse_mrz
from tests.onboarding.conftest import MRZ, read_csv, run_command

CASES = read_csv(MRZ / "mrz_cases.csv")
TODAY = date(2026, 12, 2)


def lines_of(row):
    return [row["line1"], row["line2"]] + ([row["line3"]] if row["line3"] else [])


@pytest.mark.parametrize("row", CASES, ids=[row["case_id"] for row in CASES])
def test_every_fixture_case_has_its_expected_type_checks_and_validity(row):
    result = parse_mrz(lines_of(row), today=TODAY)
    assert result.doc_type == row["doc_type"]
    assert result.valid is (row["expected_valid"] == "yes")
    failing = {name for name, holds in result.checks.items() if not holds}
    assert failing == set(row["failing_check_digits"].split())
    assert all(is_icao_code(result.fields[k]) for k in ("issuing_state", "nationality")) is (
        row["country_codes_valid"] == "yes"
    )
    assert bool(result.reasons) is not result.valid


def test_the_fields_of_the_icao_specimen_passport():
    result = parse_mrz(lines_of(next(r for r in CASES if r["case_id"] == "S04")), today=TODAY)
    assert result.fields == {
        "document_number": "L898902C3",
        "surname": "ERIKSSON",
        "given_names": "ANNA MARIA",
        "nationality": "UTO",
        "issuing_state": "UTO",
        "birth_date": "1974-08-12",
        "expiry_date": "2012-04-15",
        "sex": "F",
    }
    assert result.checks == dict.fromkeys(
        ("document_number", "birth_date", "expiry_date", "personal_number", "composite"), True
    )
    assert result.optional_data == "ZE184226B"


def test_the_german_card_uses_d_and_an_unspecified_sex():
    result = parse_mrz(lines_of(next(r for r in CASES if r["case_id"] == "S06")), today=TODAY)
    assert result.fields["issuing_state"] == result.fields["nationality"] == "D"
    assert result.fields["sex"] == "X"
    assert result.fields["surname"] == "MUSTERMANN" and result.fields["given_names"] == "ERIKA"


def test_check_digit_is_the_icao_7_3_1_sum():
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("<<<<<<<<<<<<<<") == "0"
    assert check_digit("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "7"


def test_two_digit_years_birth_in_the_past_expiry_at_most_twenty_years_ahead():
    def td3(birth, expiry):
        line2 = f"L898902C36UTO{birth}{check_digit(birth)}F{expiry}{check_digit(expiry)}"
        line2 += "<" * 14 + "0"
        line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:43])
        return parse_mrz(["P<UTOERIKSSON<<ANNA<MARIA" + "<" * 19, line2], today=TODAY)

    assert td3("261201", "461201").fields["birth_date"] == "2026-12-01"
    assert td3("261203", "471201").fields["birth_date"] == "1926-12-03"
    assert td3("050101", "461201").fields["expiry_date"] == "2046-12-01"
    assert td3("050101", "471201").fields["expiry_date"] == "1947-12-01"
    impossible = td3("741312", "301301")
    assert impossible.fields["birth_date"] is None and impossible.fields["expiry_date"] is None
    assert impossible.valid and len(impossible.warnings) == 2


def test_a_visa_and_a_country_that_icao_does_not_know():
    line2 = "L8988901C4XXX4009078F96121096ZE184226B<<<<<<"
    visa = parse_mrz(["V<UTOERIKSSON<<ANNA<MARIA" + "<" * 19, line2], today=TODAY)
    assert visa.doc_type == "MRV-A" and visa.valid, visa.reasons
    assert set(visa.checks) == {"document_number", "birth_date", "expiry_date"}
    fake = parse_mrz(["V<QQQERIKSSON<<ANNA<MARIA" + "<" * 19, line2], today=TODAY)
    assert not fake.valid and fake.reasons == ["issuing state 'QQQ' is not an ICAO country code"]
    assert parse_mrz(["V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", line2[:36]]).doc_type == "MRV-B"


def test_a_td1_document_number_longer_than_nine_characters_continues_in_the_optional_data():
    number = "D23145890734"
    line1 = f"I<UTO{number[:9]}<{number[9:]}{check_digit(number)}" + "<" * 11
    line2 = "7408122F1204159UTO<<<<<<<<<<<"
    composite = check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    result = parse_mrz([line1, line2 + composite, "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"], today=TODAY)
    assert result.valid, result.reasons
    assert result.fields["document_number"] == number


def test_text_is_not_repaired_but_ocr_output_is():
    row = next(r for r in CASES if r["case_id"] == "S04")
    misread = [row["line1"][:30] + "  ", "l8989O2C36UT07408122FI2O4159ZE184226B<<<<<1O"]
    assert not parse_mrz(misread).valid
    repaired = parse_mrz(misread, repair=True, today=TODAY)
    assert repaired.lines == lines_of(row)
    assert repaired.valid and repaired.corrections


def test_repair_uses_the_check_digit_to_choose_between_look_alikes():
    row = next(r for r in CASES if r["case_id"] == "S05")
    # a document number may hold S or 5: only one reading makes its check digit hold
    repaired = parse_mrz(
        [row["line1"], row["line2"].replace("D23145890", "D2314S890")], repair=True, today=TODAY
    )
    assert repaired.lines == lines_of(row) and repaired.valid
    assert repaired.corrections == ["line 2 position 6: S -> 5 (makes the document number check digit hold)"]


def test_repair_leaves_a_look_alike_when_several_readings_would_hold():
    row = next(r for r in CASES if r["case_id"] == "S05")
    misread = [row["line1"], row["line2"].replace("D23145890", "D23I45890")]
    repaired = parse_mrz(misread, repair=True, today=TODAY)
    assert repaired.fields["document_number"] == "D23I45890"
    assert not repaired.valid and repaired.corrections == []


def test_an_o_or_q_among_digits_of_a_document_number_is_a_zero_when_the_check_digit_agrees():
    row = next(r for r in CASES if r["case_id"] == "S02")
    # read as OCR-B zeros often are; the check digit happens to hold for this reading too
    misread = [row["line1"], row["line2"].replace("AA00000000", "AAQQ0OO000")]
    assert parse_mrz(misread).checks["document_number"]
    repaired = parse_mrz(misread, repair=True, today=TODAY)
    assert repaired.lines == lines_of(row) and repaired.valid
    assert repaired.fields["document_number"] == "AA0000000"
    l898 = next(r for r in CASES if r["case_id"] == "S04")
    line2 = l898["line2"].replace("L898902C3", "L8989O2C3")
    assert (
        parse_mrz([l898["line1"], line2], repair=True, today=TODAY).fields["document_number"] == "L898902C3"
    )


def test_a_check_digit_read_as_g_may_be_a_4_or_a_6():
    row = next(r for r in CASES if r["case_id"] == "S06")
    misread = [row["line1"], row["line2"][:-1] + "G", row["line3"]]
    result = parse_mrz(misread, repair=True, today=TODAY)
    assert result.lines == lines_of(row) and result.valid
    assert "line 2 position 30: 6 -> 4 (makes the composite check digit hold)" in result.corrections
    assert result.warnings == [
        "the composite check digit was unreadable and is taken from its data: a person should compare it with the document"
    ]


def test_repair_does_not_invent_a_valid_mrz_from_a_wrong_check_digit():
    row = next(r for r in CASES if r["case_id"] == "S10")
    result = parse_mrz(lines_of(row), repair=True, today=TODAY)
    assert not result.valid and result.checks["document_number"] is False


def test_not_an_mrz():
    result = parse_mrz(["HELLO"])
    assert result.doc_type is None and not result.valid and result.reasons


def test_a_wrong_length_is_a_reason():
    row = next(r for r in CASES if r["case_id"] == "S04")
    result = parse_mrz([row["line1"], row["line2"][:-1]])
    assert result.doc_type == "TD3" and not result.valid
    assert result.reasons == ["line 2 has 43 characters; TD3 needs 44"]


def test_check_mrz_prints_the_json_contract():
    row = next(r for r in CASES if r["case_id"] == "S03")
    out = StringIO()
    call_command("check_mrz", *lines_of(row), "--json", stdout=out)
    printed = json.loads(out.getvalue())
    assert list(printed) == ["doc_type", "lines", "fields", "checks", "valid", "reasons"]
    assert printed["doc_type"] == "TD1" and printed["valid"] is False
    assert printed["checks"]["composite"] is False
    assert printed["fields"]["birth_date"] == "1971-09-09"


def test_check_mrz_takes_the_lines_pasted_as_one_argument():
    row = next(r for r in CASES if r["case_id"] == "S04")
    out = StringIO()
    call_command("check_mrz", f"{row['line1']}\n{row['line2']}\n", "--json", stdout=out)
    assert json.loads(out.getvalue())["valid"] is True


def test_check_mrz_on_something_that_is_no_mrz_exits_non_zero_with_one_line():
    finished = run_command("check_mrz", "NOT AN MRZ", "--json")
    assert finished.returncode != 0
    assert finished.stdout == ""
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith("CommandError: not an MRZ")
