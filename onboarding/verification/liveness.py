"""Active liveness: the applicant blinks and turns their head left and right, in an order drawn
at random for each attempt, and the frames must show exactly that.

Per frame, dlib's 68 facial landmarks (``face_recognition.face_landmarks``) give
* the eye aspect ratio, EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|), averaged over both eyes
  (Soukupova & Cech 2016): an open eye is about 0.2-0.35, a closed one much less;
* the yaw: where the nose tip sits between the two ends of the jaw line, minus one half
  (0 facing the camera; positive when the nose moves to the image's right).
The sequence's own median yaw, and the median EAR of the frames facing the camera, are its
neutral pose (most frames are neutral), so a narrow-eyed face or a slightly tilted camera
does not count as an action. A frame is a blink
when its EAR is under ``BLINK_RATIO`` of the neutral EAR, a turn when its yaw moves more
than ``YAW_THRESHOLD`` from the neutral yaw. The subject's left is the image's right in an
unmirrored front-camera frame (pass ``mirrored=True`` for a mirrored preview).

It fails, with a reason for each problem, on: a frame without a face; frames that are all
the same picture (a still photo, a repeated frame); an action missing; actions in another
order than asked; the first and last frames showing different people.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import face_recognition
import numpy as np

from onboarding.verification.faces import DEFAULT_TOLERANCE, WORKING_SIDE, face_distance
from onboarding.verification.images import ImageSource, load_rgb, resize_longest

ACTIONS = ("blink", "turn_left", "turn_right")
BLINK_RATIO = 0.75
YAW_THRESHOLD = 0.06
STILL_DIFFERENCE = 1.0  # mean absolute grey-level change (0-255) below which two frames are one


def new_challenge(rng: random.Random | None = None) -> list[str]:
    """The three actions in a fresh random order (unpredictable unless ``rng`` is given)."""
    order = list(ACTIONS)
    (rng or secrets.SystemRandom()).shuffle(order)
    return order


@dataclass(frozen=True)
class FrameMeasure:
    face: bool
    ear: float | None = None
    yaw: float | None = None
    state: str = "none"  # neutral, blink, turn_left, turn_right; "none" without a face


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    reasons: list[str]
    challenge: list[str]
    observed: list[str]
    frames: list[FrameMeasure]

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "challenge": list(self.challenge),
            "observed": list(self.observed),
        }


def _eye_aspect_ratio(points: Sequence[tuple[int, int]]) -> float:
    p = np.asarray(points, dtype=float)
    vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(vertical / (2 * np.linalg.norm(p[0] - p[3])))


def _measure(rgb: np.ndarray) -> tuple[FrameMeasure, tuple | None]:
    locations = face_recognition.face_locations(rgb, number_of_times_to_upsample=0)
    if not locations:
        locations = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    if not locations:
        return FrameMeasure(face=False), None
    box = max(locations, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    landmarks = face_recognition.face_landmarks(rgb, [box])[0]
    ear = (_eye_aspect_ratio(landmarks["left_eye"]) + _eye_aspect_ratio(landmarks["right_eye"])) / 2
    jaw = np.asarray(landmarks["chin"], dtype=float)
    nose_tip = np.asarray(landmarks["nose_bridge"], dtype=float)[-1]
    yaw = float((nose_tip[0] - jaw[0, 0]) / max(jaw[16, 0] - jaw[0, 0], 1e-6) - 0.5)
    return FrameMeasure(face=True, ear=ear, yaw=yaw), box


def check_liveness(
    frames: Sequence[ImageSource], challenge: Sequence[str], *, mirrored: bool = False
) -> LivenessResult:
    """Judge a frame sequence against the challenge (a permutation of ``ACTIONS``)."""
    challenge = list(challenge)
    if sorted(challenge) != sorted(ACTIONS):
        raise ValueError(f"a challenge is the actions {', '.join(ACTIONS)} in some order")
    images = [resize_longest(load_rgb(frame), WORKING_SIDE)[0] for frame in frames]
    measured = [_measure(image) for image in images]
    reasons = [f"no face in frame {i + 1}" for i, (m, _) in enumerate(measured) if not m.face]
    if len(images) < 2:
        reasons.append("at least two frames are needed")
    elif _all_the_same(images):
        reasons.append(f"all {len(images)} frames are the same picture (a still photo or a repeated frame)")
    faces = [m for m, _ in measured if m.face]
    if not faces:
        return LivenessResult(False, reasons, challenge, [], [m for m, _ in measured])
    neutral_yaw = float(np.median([m.yaw for m in faces]))
    # a turned head narrows the eyes' width and so raises the EAR: the open-eye level comes
    # from the frames that face the camera
    facing = [m.ear for m in faces if abs(m.yaw - neutral_yaw) <= YAW_THRESHOLD]
    neutral_ear = float(np.median(facing or [m.ear for m in faces]))
    judged = [_state(m, neutral_ear, neutral_yaw, mirrored) for m, _ in measured]
    actions = _collapse([s.state for s in judged if s.state != "none"])
    reasons += [f"no {action.replace('_', ' ')} was seen" for action in challenge if action not in actions]
    if actions != challenge and all(action in actions for action in challenge):
        reasons.append(
            f"the actions came as {', '.join(actions)}; the challenge asked for {', '.join(challenge)}"
        )
    reasons += _identity_reasons(images, measured)
    return LivenessResult(not reasons, reasons, challenge, actions, judged)


def _state(m: FrameMeasure, neutral_ear: float, neutral_yaw: float, mirrored: bool) -> FrameMeasure:
    if not m.face:
        return m
    turn = (m.yaw - neutral_yaw) * (-1 if mirrored else 1)
    if m.ear < BLINK_RATIO * neutral_ear:
        state = "blink"
    elif turn > YAW_THRESHOLD:
        state = "turn_left"
    elif turn < -YAW_THRESHOLD:
        state = "turn_right"
    else:
        state = "neutral"
    return FrameMeasure(True, m.ear, m.yaw, state)


def _collapse(states: list[str]) -> list[str]:
    """Actions in the order they happened: runs of one state count once, neutral not at all."""
    runs = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    return [s for s in runs if s != "neutral"]


def _all_the_same(images: list[np.ndarray]) -> bool:
    first = images[0].astype(np.int16)
    return all(
        image.shape == first.shape and float(np.abs(image.astype(np.int16) - first).mean()) < STILL_DIFFERENCE
        for image in images[1:]
    )


def _identity_reasons(
    images: list[np.ndarray], measured: list[tuple[FrameMeasure, tuple | None]]
) -> list[str]:
    """The first and last frames with a face must show the same person."""
    with_face = [(image, box) for image, (_, box) in zip(images, measured, strict=True) if box is not None]
    if len(with_face) < 2:
        return []
    (first, first_box), (last, last_box) = with_face[0], with_face[-1]
    a = face_recognition.face_encodings(first, [first_box], model="large")[0]
    b = face_recognition.face_encodings(last, [last_box], model="large")[0]
    if face_distance(a, b) > DEFAULT_TOLERANCE:
        return ["the first and last frames show different people"]
    return []
