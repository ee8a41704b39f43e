"""Vehicle detection against the expected YOLOX-nano detections, vehicle type and capacity, and
`detect_vehicle`."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from fleet.models import VEHICLE_DEFAULT_CAPACITY
from onboarding.pipeline import VEHICLE_CAPACITIES
from onboarding.verification.vehicles import (
    Detection,
    detect_objects,
    detect_vehicle,
    vehicle_type_of,
)
from tests.onboarding.conftest import FACES, VEHICLES, read_csv, run_command

EXPECTED = read_csv(VEHICLES / "expected_detections_yolox_nano.csv")
IMAGES = sorted({row["image"] for row in EXPECTED})
SCORE_TOLERANCE = 0.02
BOX_TOLERANCE = 2.0  # pixels


@pytest.mark.parametrize("image", IMAGES)
def test_detections_match_the_expected_csv(image):
    expected = [row for row in EXPECTED if row["image"] == image]
    got = detect_objects(VEHICLES / image)
    assert len(got) == len(expected)
    unmatched = list(got)
    for row in expected:
        box = [float(row[k]) for k in ("x1", "y1", "x2", "y2")]
        match = next(
            d
            for d in unmatched
            if d.label == row["class"]
            and abs(d.score - float(row["score"])) <= SCORE_TOLERANCE
            and max(abs(a - b) for a, b in zip(d.box, box, strict=True)) <= BOX_TOLERANCE
        )
        unmatched.remove(match)


@pytest.mark.parametrize(
    ("image", "vehicle_type"),
    [
        ("bicycle_truck_dog.jpg", "bicycle"),  # the bicycle is the largest vehicle in view
        ("coco_000000001532_highway_cars.jpg", "car"),
        ("coco_000000001584_bus.jpg", "truck"),
        ("coco_000000007816_motorcycle.jpg", "motorcycle"),
        ("coco_000000009769_pickup_truck.jpg", "van"),  # COCO truck, long and low: a pickup
        ("skimage_motorcycle_left.png", "motorcycle"),
    ],
)
def test_the_vehicle_type_and_its_default_capacity(image, vehicle_type):
    result = detect_vehicle(VEHICLES / image, capacities=VEHICLE_CAPACITIES)
    assert result.vehicle_type == vehicle_type
    kilograms, litres = VEHICLE_DEFAULT_CAPACITY[vehicle_type]  # the fleet's table, the one copy
    assert result.capacity == {"kg": kilograms, "litres": litres}
    assert result.confidence >= 0.5


def test_box_geometry_tells_van_from_car_and_truck():
    def of(label, width, height):
        return vehicle_type_of(Detection(label, 0.9, (0.0, 0.0, float(width), float(height))))

    assert of("car", 200, 90) == "car"
    assert of("car", 100, 95) == "van"
    assert of("truck", 200, 100) == "van"
    assert of("truck", 100, 90) == "truck"
    assert of("bus", 100, 100) == "truck"


def test_a_photo_without_a_vehicle():
    result = detect_vehicle(FACES / "biden_b.jpg")
    assert result.vehicle_type is None and result.capacity is None
    assert result.reason == "no vehicle in the photo"


def test_detect_vehicle_prints_the_json_contract():
    out = StringIO()
    call_command("detect_vehicle", str(VEHICLES / "coco_000000001584_bus.jpg"), "--json", stdout=out)
    printed = json.loads(out.getvalue())
    assert list(printed) == ["vehicle_type", "confidence", "detections", "capacity"]
    assert printed["vehicle_type"] == "truck" and printed["capacity"] == {"kg": 3500, "litres": 20000}
    assert printed["detections"][0] == {"class": "bus", "score": 0.95, "box": [131.7, 84.5, 526.6, 536.2]}


def test_detect_vehicle_on_an_unreadable_file_exits_non_zero_with_one_line():
    finished = run_command("detect_vehicle", str(VEHICLES / "README.md"), "--json")
    assert finished.returncode != 0 and finished.stdout == ""
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().splitlines()[-1].startswith("CommandError: not a readable image")
