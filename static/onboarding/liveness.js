// The live selfie challenge: ask the API for a random order of actions, start the camera, show
// each action and take frames at fixed moments after it is shown (into canvases, as JPEGs),
// then upload them in order (kind LIVENESS_FRAME). Frames are taken on the clock, not after each
// upload: a slow connection must not move a frame out of the action it should show.
(function () {
  "use strict";
  const root = document.getElementById("liveness");
  if (!root) return;
  const video = document.getElementById("camera");
  const instruction = document.getElementById("instruction");
  const start = document.getElementById("start");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const SAY = { blink: "Blink slowly", turn_left: "Turn your head to your left", turn_right: "Turn your head to your right" };
  // Milliseconds: settle before the first frame; from an instruction to its frames; between an
  // action's two frames; back to facing the camera before the neutral frame.
  const SETTLE = 800, REACT = 1000, HOLD = 300, RETURN = 800;
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function post(url, body) {
    const response = await fetch(url, { method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": csrf } });
    const answer = await response.json();
    if (!response.ok) {
      const fields = (answer.error && answer.error.fields) || {};
      throw new Error(Object.values(fields).flat().join(" ") || (answer.error && answer.error.message) || response.statusText);
    }
    return answer;
  }

  // The current video frame as a JPEG (a promise): the picture is taken now, encoded later.
  function snap() {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.95));
  }

  async function upload(frames) {
    for (const [i, frame] of frames.entries()) {
      instruction.textContent = `Sending ${i + 1} of ${frames.length}…`;
      const form = new FormData();
      form.append("kind", "LIVENESS_FRAME");
      form.append("file", await frame, `frame-${i + 1}.jpg`);
      await post(root.dataset.uploadUrl, form);
    }
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    let stream = null;
    try {
      const application = await post(root.dataset.challengeUrl); // no body: the API takes JSON, not a form
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
      video.srcObject = stream;
      await video.play();
      instruction.textContent = "Look at the camera";
      await wait(SETTLE);
      const frames = [snap()];
      for (const action of application.liveness_challenge) {
        instruction.textContent = SAY[action] || action;
        await wait(REACT);
        frames.push(snap());
        await wait(HOLD);
        frames.push(snap());
        instruction.textContent = "Look at the camera";
        await wait(RETURN);
        frames.push(snap());
      }
      stream.getTracks().forEach((track) => track.stop());
      stream = null;
      await upload(frames);
      instruction.textContent = "Done. Thank you!";
      window.location.assign(root.dataset.doneUrl);
    } catch (error) {
      instruction.textContent = "Something went wrong: " + error.message;
      start.disabled = false;
    } finally {
      if (stream) stream.getTracks().forEach((track) => track.stop());
    }
  });
})();
