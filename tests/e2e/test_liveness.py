"""The applicant's live selfie in a real browser: headless Chromium with a fake camera that
plays a .y4m video of a face following the challenge (frames from demo/liveness_frames.py),
against the production start. static/onboarding/liveness.js asks for the challenge, films it
and uploads the frames; the server stores them and the liveness engine judges them.

The video is written once the challenge is known (the page asks for it before it opens the
camera; Chromium reads the file when the camera opens), timed as liveness.js takes its frames:
each pose is held from halfway between two frames to halfway to the next, so a jitter of a
few hundred milliseconds cannot move a frame into the wrong pose."""

import itertools
import json
import os
from pathlib import Path

import cv2
import pytest

from tests.deploy.server import manage
from tests.e2e.test_browser import CHROMIUM

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Chromium is not installed (make test installs it; CI fails without it)",
)
FACE = Path(__file__).resolve().parents[1] / "fixtures" / "faces" / "obama_a.jpg"
FPS = 10
# liveness.js: SETTLE, then per action REACT, frame, HOLD, frame, RETURN, frame (milliseconds)
SETTLE, REACT, HOLD, RETURN = 800, 1000, 300, 800
SEED = """
from identity.models import Organisation
from onboarding import services
org = Organisation.objects.create(slug="live", name="Liveness Org")
print(services.policy_for(org).signup_token)
"""
JUDGE = """
import json
from onboarding.models import Application, DocumentKind
from onboarding.pipeline import liveness_step
application = Application.objects.get(driver__user__username="live-applicant")
frames = application.documents.filter(kind=DocumentKind.LIVENESS_FRAME).order_by("sequence")
result = liveness_step(application, list(frames))
print(json.dumps({"challenge": application.liveness_challenge, "frames": frames.count(),
                  "jpeg": sum(f.file.open("rb").read(2) == b"\\xff\\xd8" for f in frames),
                  "codes": result.codes, "details": result.details}))
"""


def frame_times(actions: int) -> list[int]:
    """When liveness.js takes its frames (ms after the video starts)."""
    times, now = [SETTLE], SETTLE
    for _ in range(actions):
        times += [now + REACT, now + REACT + HOLD, now + REACT + HOLD + RETURN]
        now += REACT + HOLD + RETURN
    return times


def write_y4m(path: Path, challenge: list[str]) -> None:
    """A 4:2:0 YUV4MPEG2 video: neutral, then each action held around its two frames and a
    neutral face around the frame after it, at FPS frames a second; a neutral tail."""
    from demo import liveness_frames as frames

    base = frames.neutral(FACE)
    base = base[: base.shape[0] // 2 * 2, : base.shape[1] // 2 * 2]
    poses = {
        "neutral": base,
        "blink": frames.blinking(base),
        "turn_left": frames.turned(base, 0.8),
        "turn_right": frames.turned(base, -0.8),
    }
    times = frame_times(len(challenge))
    shown = ["neutral"] + [pose for action in challenge for pose in (action, action, "neutral")]
    edges = [(a + b) / 2 for a, b in itertools.pairwise(times)] + [times[-1] + 1500]
    height, width = base.shape[:2]
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(int(edges[-1] * FPS / 1000)):
            at = index * 1000 / FPS
            pose = shown[next(i for i, edge in enumerate(edges) if at < edge)]
            video.write(b"FRAME\n" + cv2.cvtColor(poses[pose], cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def site(production):
    token = manage(production.env, "shell", "-c", SEED).stdout.strip().splitlines()[-1]
    return production.base, token, production.env, production.tmp_path


def test_the_liveness_step_films_the_challenge_and_the_server_judges_its_frames(site):
    from playwright.sync_api import sync_playwright

    base, token, env, tmp_path = site
    video = tmp_path / "camera.y4m"
    write_y4m(video, [])  # a still face until the challenge is known: read, it would fail the check
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            context = browser.new_context(viewport={"width": 420, "height": 860})
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/onboarding/join/{token}/")
            for name, value in {
                "username": "live-applicant",
                "password": "A-long-pass-phrase-42",
                "name": "Barack Virtanen",
                "phone": "+358401234999",
                "email": "live@example.com",
            }.items():
                page.fill(f"input[name={name}]", value)
            page.select_option("select[name=vehicle_type]", "bicycle")
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url("**/onboarding/apply/")
            page.goto(f"{base}/onboarding/apply/liveness/")

            challenges: list[list[str]] = []

            def film_the_challenge(route):
                response = route.fetch()
                assert response.status == 200, response.text()
                challenges.append(response.json()["liveness_challenge"])
                write_y4m(video, challenges[-1])  # before the page opens the camera
                route.fulfill(response=response)

            page.route("**/api/v1/onboarding/application/liveness", film_the_challenge)
            page.click("#start")
            page.wait_for_url("**/onboarding/apply/", timeout=30_000)
        finally:
            browser.close()
    assert problems == []
    judged = json.loads(manage(env, "shell", "-c", JUDGE).stdout.strip().splitlines()[-1])
    assert judged["challenge"] == challenges[-1] and len(challenges) == 1
    assert judged["frames"] == judged["jpeg"] == 1 + 3 * len(judged["challenge"])
    assert judged["details"]["observed"] == judged["challenge"], judged["details"]
    assert judged["codes"] == [] and judged["details"]["passed"] is True
