"""US licence barcodes (AAMVA PDF417): generated with pdf417gen, read back with zxing-cpp."""

import numpy as np
import pdf417gen
import pytest

from onboarding.verification.pdf417 import NoBarcodeFound, decode_pdf417, parse_aamva, read_licence
from tests.onboarding.conftest import FACES

CALIFORNIA = (
    "@\n\x1e\rANSI 636014090002DL00410278ZC03190024"
    "DLDAQD1234562\nDCSPUBLIC\nDDEN\nDACJOHN\nDDFN\nDADQUINCY\nDDGN\nDCAC\nDCBNONE\nDCDNONE\n"
    "DBD08312019\nDBB04191988\nDBA04192027\nDBC1\nDAYBRO\nDAU069 IN\nDAG123 MAIN STREET\n"
    "DAISACRAMENTO\nDAJCA\nDAK958230000  \nDCF00/00/0000NNNAN/ANFD/YY\nDCGUSA\r"
    "ZCZCAGRN\r"
)
ONTARIO_V3 = (
    "@\n\x1e\rANSI 636012030001DL00290180"
    "DLDAQA1234-56789-01234\nDAAROY,JEAN,PIERRE\nDCSROY\nDCTJEAN,PIERRE\nDBA20280131\n"
    "DBB19850302\nDBC2\nDAJON\nDCGCAN\r"
)


def barcode(text: str) -> np.ndarray:
    image = pdf417gen.render_image(pdf417gen.encode(text, columns=12, security_level=5), scale=3, ratio=3)
    return np.asarray(image.convert("RGB"))


def test_a_generated_california_licence_reads_back():
    licence = read_licence(barcode(CALIFORNIA))
    assert licence.valid, licence.reasons
    assert licence.issuer_id == "636014" and licence.version == 9
    assert licence.fields == {
        "document_number": "D1234562",
        "surname": "PUBLIC",
        "given_names": "JOHN QUINCY",
        "birth_date": "1988-04-19",
        "expiry_date": "2027-04-19",
        "sex": "M",
        "issuing_state": "CA",
        "country": "USA",
    }
    assert licence.elements["DAG"] == "123 MAIN STREET"


def test_an_older_canadian_licence_uses_its_date_order_and_element_names():
    licence = parse_aamva(decode_pdf417(barcode(ONTARIO_V3)))
    assert licence.valid, licence.reasons
    assert licence.fields["given_names"] == "JEAN PIERRE"
    assert licence.fields["birth_date"] == "1985-03-02"
    assert licence.fields["expiry_date"] == "2028-01-31"
    assert licence.fields["sex"] == "F" and licence.fields["issuing_state"] == "ON"


def test_missing_and_malformed_elements_are_reasons():
    licence = parse_aamva("@\n\x1e\rANSI 636014090001DL00000000DLDCSPUBLIC\nDBB13401988\nDAJCA\r")
    assert not licence.valid
    assert licence.reasons == [
        "birth date (DBB) missing or not a date",
        "expiry date (DBA) missing or not a date",
        "document number missing",
    ]
    assert parse_aamva("hello").reasons[0] == "no AAMVA header (@ LF RS CR ANSI)"


def test_an_image_without_a_barcode():
    with pytest.raises(NoBarcodeFound):
        read_licence(FACES / "obama_a.jpg")
