// The live selfie challenge: ask the API for a random order of actions, show each one, take
// frames from the camera into a canvas and upload them as JPEGs (kind LIVENESS_FRAME), in order.
(function () {
  "use strict";
  const root = document.getElementById("liveness");
  if (!root) return;
  const video = document.getElementById("camera");
  const canvas = document.getElementById("frame");
  const instruction = document.getElementById("instruction");
  const start = document.getElementById("start");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const SAY = { blink: "Blink slowly", turn_left: "Turn your head to your left", turn_right: "Turn your head to your right" };
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

  async function snap() {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    const form = new FormData();
    form.append("kind", "LIVENESS_FRAME");
    form.append("file", blob, "frame.jpg");
    await post(root.dataset.uploadUrl, form);
  }

  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
      await wait(800);
      const application = await post(root.dataset.challengeUrl, new FormData());
      instruction.textContent = "Look at the camera";
      await wait(700);
      await snap();
      for (const action of application.liveness_challenge) {
        instruction.textContent = SAY[action] || action;
        await wait(900);
        await snap();
        await snap();
        instruction.textContent = "Look at the camera";
        await wait(700);
        await snap();
      }
      instruction.textContent = "Done. Thank you!";
      video.srcObject.getTracks().forEach((track) => track.stop());
      window.location.assign(root.dataset.doneUrl);
    } catch (error) {
      instruction.textContent = "Something went wrong: " + error.message;
      start.disabled = false;
    }
  });
})();
