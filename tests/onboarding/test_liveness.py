"""Active liveness on frame sequences built from fixture faces (tests/onboarding/frames.py)."""

import random

import numpy as np
import pytest

from demo.liveness_frames import neutral, sequence
from onboarding.verification.liveness import ACTIONS, check_liveness, new_challenge
from tests.onboarding.conftest import FACES

ASTRONAUT = FACES / "astronaut_eileen_collins.png"
OBAMA = FACES / "obama_a.jpg"


@pytest.fixture(scope="module")
def frames():
    challenge = ["turn_right", "blink", "turn_left"]
    return challenge, sequence(ASTRONAUT, challenge)


def test_a_challenge_is_the_three_actions_in_a_random_order():
    seen = {tuple(new_challenge(random.Random(seed))) for seed in range(30)}
    assert all(sorted(order) == sorted(ACTIONS) for order in seen)
    assert len(seen) > 1
    assert sorted(new_challenge()) == sorted(ACTIONS)


def test_the_asked_actions_in_the_asked_order_pass(frames):
    challenge, made = frames
    result = check_liveness(made, challenge)
    assert len(made) == 9
    assert result.passed, result.reasons
    assert result.observed == challenge
    assert [f.state for f in result.frames][:3] == ["neutral", "turn_right", "turn_right"]


@pytest.mark.parametrize(
    "challenge", [["blink", "turn_left", "turn_right"], ["turn_left", "turn_right", "blink"]]
)
def test_another_face_and_order_pass(challenge):
    result = check_liveness(sequence(OBAMA, challenge), challenge)
    assert result.passed, result.reasons


def test_the_wrong_order_fails(frames):
    _, made = frames
    result = check_liveness(made, ["blink", "turn_left", "turn_right"])
    assert not result.passed
    assert result.reasons == [
        "the actions came as turn_right, blink, turn_left; the challenge asked for blink, turn_left, turn_right"
    ]


def test_a_still_photo_fails():
    result = check_liveness([neutral(ASTRONAUT)] * 9, new_challenge())
    assert not result.passed
    assert result.reasons[0] == "all 9 frames are the same picture (a still photo or a repeated frame)"
    assert {"no blink was seen", "no turn left was seen", "no turn right was seen"} <= set(result.reasons)


def test_a_missing_action_fails(frames):
    challenge, made = frames
    without_blink = [
        f for f, s in zip(made, check_liveness(made, challenge).frames, strict=True) if s.state != "blink"
    ]
    result = check_liveness(without_blink, challenge)
    assert not result.passed and result.reasons == ["no blink was seen"]


def test_a_mirrored_preview_is_judged_with_mirrored_true(frames):
    challenge, made = frames
    flipped = [np.ascontiguousarray(frame[:, ::-1]) for frame in made]
    assert not check_liveness(flipped, challenge).passed
    assert check_liveness(flipped, challenge, mirrored=True).passed


def test_someone_else_at_the_end_and_a_frame_without_a_face_fail(frames):
    challenge, made = frames
    result = check_liveness([*made[:-1], neutral(OBAMA)], challenge)
    assert "the first and last frames show different people" in result.reasons
    blank = np.full_like(made[0], 200)
    assert "no face in frame 2" in check_liveness([made[0], blank, *made[1:]], challenge).reasons


def test_a_challenge_must_be_the_three_actions():
    with pytest.raises(ValueError, match="a challenge is the actions"):
        check_liveness([], ["blink"])
