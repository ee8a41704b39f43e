"""Face matching: is the selfie the person on the ID? (dlib's ResNet face encodings through
``face_recognition``.)

Tolerance (``DEFAULT_TOLERANCE`` = 0.6, the Euclidean distance between 128-d encodings below
which two faces are taken as the same person). Calibrated on tests/fixtures/faces/pairs.csv,
with each image scaled to ``WORKING_SIDE`` px: the four same-person pairs measure 0.36-0.43, the
five different-person pairs 0.79-0.87. Any threshold in that gap separates them; its middle is
0.61, and dlib's published threshold for this model is 0.6 (99.38 % on LFW). 0.6 keeps
~0.17 of margin for harder real pairs (an older ID photo, phone-camera selfies) and ~0.19
before the nearest stranger. Callers needing fewer false accepts pass a lower ``tolerance``.

Faces are found with the HOG detector on the image scaled to ``WORKING_SIDE`` (fast, and at
that size it does not take a round badge or a patch for a face, which it did at larger
scales on the astronaut photo); if it finds none, once more with 2x upsampling for small faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import face_recognition
import numpy as np

from onboarding.verification.images import ImageSource, load_rgb, resize_longest

DEFAULT_TOLERANCE = 0.6
WORKING_SIDE = 640


@dataclass(frozen=True)
class FaceComparison:
    """``match`` only when each image shows exactly one face and their distance is at most the
    tolerance. ``distance`` is None when an image has no face; with several faces it is the
    smallest distance between them (for a reviewer), and ``match`` is False."""

    match: bool
    distance: float | None
    faces: tuple[int, int]
    tolerance: float
    reason: str

    def as_dict(self) -> dict:
        """The JSON contract of ``compare_faces``."""
        return {"match": self.match, "distance": self.distance, "faces": list(self.faces)}


def face_encodings(source: ImageSource) -> list[np.ndarray]:
    """One 128-d encoding per face found in the image (largest face first)."""
    rgb, _ = resize_longest(load_rgb(source), WORKING_SIDE)
    locations = face_recognition.face_locations(rgb, number_of_times_to_upsample=0)
    if not locations:
        locations = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    locations.sort(key=lambda box: (box[2] - box[0]) * (box[1] - box[3]), reverse=True)
    return face_recognition.face_encodings(rgb, locations, model="large")


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two encodings (0 = identical; same person usually < 0.6)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def compare_encodings(
    encodings_a: list[np.ndarray], encodings_b: list[np.ndarray], *, tolerance: float = DEFAULT_TOLERANCE
) -> FaceComparison:
    """Compare already-computed encodings (lets a caller encode the ID photo once)."""
    counts = (len(encodings_a), len(encodings_b))
    if not all(counts):
        which = " and ".join(
            name for name, n in zip(("the first image", "the second image"), counts, strict=True) if not n
        )
        return FaceComparison(False, None, counts, tolerance, f"no face found in {which}")
    distance = min(face_distance(a, b) for a in encodings_a for b in encodings_b)
    if counts != (1, 1):
        return FaceComparison(
            False,
            distance,
            counts,
            tolerance,
            f"one face needed in each image, found {counts[0]} and {counts[1]}",
        )
    if distance <= tolerance:
        return FaceComparison(True, distance, counts, tolerance, f"same person (distance {distance:.2f})")
    return FaceComparison(
        False, distance, counts, tolerance, f"different people (distance {distance:.2f} > {tolerance})"
    )


def compare_faces(a: ImageSource, b: ImageSource, *, tolerance: float = DEFAULT_TOLERANCE) -> FaceComparison:
    """Is the face in ``a`` the face in ``b``? Raises ``UnreadableImage`` for a bad file."""
    return compare_encodings(face_encodings(a), face_encodings(b), tolerance=tolerance)
