"""Face matching on the fixture pairs, its reasons, and `compare_faces`."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from onboarding.verification.faces import DEFAULT_TOLERANCE, compare_encodings, compare_faces, face_encodings
from tests.onboarding.conftest import FACES, VEHICLES, read_csv, run_command

PAIRS = read_csv(FACES / "pairs.csv")


@pytest.fixture(scope="module")
def encodings():
    names = {p["img_a"] for p in PAIRS} | {p["img_b"] for p in PAIRS}
    return {name: face_encodings(FACES / name) for name in names}


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p['img_a']}-{p['img_b']}" for p in PAIRS])
def test_every_fixture_pair_is_judged_right(pair, encodings):
    result = compare_encodings(encodings[pair["img_a"]], encodings[pair["img_b"]])
    assert result.faces == (1, 1)
    assert result.match is (pair["same_person"] == "yes"), result.reason


def test_the_default_tolerance_sits_in_the_gap_between_same_and_different_people(encodings):
    distances = {"yes": [], "no": []}
    for pair in PAIRS:
        result = compare_encodings(encodings[pair["img_a"]], encodings[pair["img_b"]])
        distances[pair["same_person"]].append(result.distance)
    assert max(distances["yes"]) < DEFAULT_TOLERANCE < min(distances["no"])
    # the margins the faces module's docstring reports
    assert max(distances["yes"]) < 0.45 and min(distances["no"]) > 0.75


def test_a_lower_tolerance_rejects_a_true_pair():
    result = compare_faces(FACES / "obama_a.jpg", FACES / "obama_b.jpg", tolerance=0.2)
    assert not result.match and "different people" in result.reason


def test_no_face_and_several_faces_give_a_reason_and_no_match(encodings):
    face = encodings["obama_a.jpg"]
    nobody = compare_encodings(face, [])
    assert not nobody.match and nobody.distance is None
    assert nobody.reason == "no face found in the second image"
    crowd = compare_encodings(face, face + encodings["biden_b.jpg"])
    assert not crowd.match and crowd.faces == (1, 2)
    assert crowd.reason == "one face needed in each image, found 1 and 2"


def test_a_photo_without_a_face_finds_none():
    assert face_encodings(VEHICLES / "skimage_motorcycle_left.png") == []


def test_compare_faces_prints_the_json_contract():
    out = StringIO()
    call_command(
        "compare_faces", str(FACES / "biden_a.jpg"), str(FACES / "biden_b.jpg"), "--json", stdout=out
    )
    printed = json.loads(out.getvalue())
    assert list(printed) == ["match", "distance", "faces"]
    assert printed["match"] is True and printed["faces"] == [1, 1]
    assert 0 < printed["distance"] < DEFAULT_TOLERANCE


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (VEHICLES / "skimage_motorcycle_left.png", "no face found in the second image"),
        (FACES / "pairs.csv", "not a readable image"),
        (FACES / "missing.jpg", "no such file"),
    ],
)
def test_compare_faces_refuses_with_a_reason(image, reason):
    with pytest.raises(CommandError, match=rf"^{reason}"):
        call_command("compare_faces", str(FACES / "obama_a.jpg"), str(image), "--json", stdout=StringIO())


def test_compare_faces_without_a_face_exits_non_zero_with_one_line_and_no_traceback():
    finished = run_command("compare_faces", str(FACES / "obama_a.jpg"), str(VEHICLES / "README.md"), "--json")
    assert finished.returncode != 0 and finished.stdout == ""
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith("CommandError: not a readable image")
