"""Synthetic liveness frame sequences made from a still face photo (the demo's applicants and
the liveness tests): a head turn is a smooth horizontal warp that moves the middle of the face
(the nose) sideways while its edges (the jaw) stay; a blink paints over the eyes from the
surrounding skin (OpenCV inpainting) and draws the closed lid's line."""

import cv2
import face_recognition
import numpy as np

from onboarding.verification.faces import WORKING_SIDE
from onboarding.verification.images import load_rgb, resize_longest


def neutral(path) -> np.ndarray:
    return resize_longest(load_rgb(path), WORKING_SIDE)[0]


def _box(image):
    return face_recognition.face_locations(image, number_of_times_to_upsample=0)[0]


def turned(image: np.ndarray, amount: float) -> np.ndarray:
    """Positive ``amount`` moves the nose to the image's right: the subject turns to their left."""
    _, right, _, left = _box(image)
    height, width = image.shape[:2]
    x0, x1 = left - 0.3 * (right - left), right + 0.3 * (right - left)
    xs = np.arange(width, dtype=np.float32)
    u = np.clip((xs - x0) / (x1 - x0), 0, 1)
    source = np.where((xs >= x0) & (xs <= x1), x0 + (x1 - x0) * (u - amount * np.sin(np.pi * u) / np.pi), xs)
    map_x = np.tile(source, (height, 1)).astype(np.float32)
    map_y = np.tile(np.arange(height, dtype=np.float32)[:, None], (1, width))
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def blinking(image: np.ndarray) -> np.ndarray:
    landmarks = face_recognition.face_landmarks(image, [_box(image)])[0]
    mask = np.zeros(image.shape[:2], np.uint8)
    for eye in ("left_eye", "right_eye"):
        cv2.fillPoly(mask, [cv2.convexHull(np.array(landmarks[eye], np.int32))], 255)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8), iterations=2)
    closed = cv2.inpaint(image, mask, 7, cv2.INPAINT_TELEA)
    for eye in ("left_eye", "right_eye"):
        p = np.array(landmarks[eye], np.int32)
        cv2.polylines(closed, [np.array([p[0], p[5], p[4], p[3]], np.int32)], False, (40, 30, 30), 2)
    return closed


def sequence(path, actions, *, jitter: bool = True) -> list[np.ndarray]:
    """Nine frames for three actions: neutral, then each action held for two frames, a neutral
    frame between actions. ``jitter`` shifts each neutral frame by a pixel, as a hand-held
    phone would."""
    base = neutral(path)
    made = {"blink": blinking(base), "turn_left": turned(base, 0.8), "turn_right": turned(base, -0.8)}
    frames = [base]
    for i, action in enumerate(actions):
        if i:
            frames.append(np.roll(base, i, axis=1) if jitter else base)
        frames += [made[action], made[action]]
    return frames
