"""The verification checks one applicant goes through, on the CPU: MRZ read from the ID photo,
selfie vs ID face compare, liveness on nine frames, vehicle detection.

Figures, not timed assertions. `test_print_applicant_figures` (run with `-s`) prints the
median over a few applicants of each step and of the whole (target <= 5 s on 2 cores).
The liveness frames are made once, before timing (tests/onboarding/frames.py).
"""

import statistics
import time

import pytest

from demo.liveness_frames import sequence
from onboarding.verification.faces import compare_faces
from onboarding.verification.liveness import check_liveness
from onboarding.verification.ocr import read_mrz
from onboarding.verification.vehicles import detect_vehicle
from tests.onboarding.conftest import FACES, MRZ, VEHICLES

CHALLENGE = ["blink", "turn_left", "turn_right"]


@pytest.fixture(scope="module")
def applicant():
    return {
        "id_document": MRZ / "images/passport-td3.jpg",
        "id_photo": FACES / "obama_a.jpg",
        "selfie": FACES / "obama_b.jpg",
        "frames": sequence(FACES / "astronaut_eileen_collins.png", CHALLENGE),
        "vehicle": VEHICLES / "coco_000000009769_pickup_truck.jpg",
    }


def steps(a):
    return {
        "read_mrz": lambda: read_mrz(a["id_document"]),
        "compare_faces": lambda: compare_faces(a["id_photo"], a["selfie"]),
        "liveness (9 frames)": lambda: check_liveness(a["frames"], CHALLENGE),
        "detect_vehicle": lambda: detect_vehicle(a["vehicle"]),
    }


def check_applicant(a):
    return {name: step() for name, step in steps(a).items()}


def test_bench_applicant_checks(benchmark, applicant):
    results = benchmark(check_applicant, applicant)
    assert results["read_mrz"].valid and results["compare_faces"].match
    assert results["liveness (9 frames)"].passed and results["detect_vehicle"].vehicle_type == "van"


def test_print_applicant_figures(applicant):
    check_applicant(applicant)  # warm: models load once per process
    timings: dict[str, list[float]] = {name: [] for name in [*steps(applicant), "total"]}
    for _ in range(3):
        total = 0.0
        for name, step in steps(applicant).items():
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            timings[name].append(elapsed)
            total += elapsed
        timings["total"].append(total)
    print()
    for name, values in timings.items():
        print(f"{name}: median {statistics.median(values):.2f} s (min {min(values):.2f} s)")
    assert len(timings["total"]) == 3
