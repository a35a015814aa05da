// What the keepers' depot pages share (depot/pages.py renders the JSON block #depot-config): the
// config and words, and the scan field. The field takes typing, a USB wedge scanner (it types the
// code and Enter, which submits the form) and the tablet's camera, which reads a label's QR code
// in the browser with jsQR (node_modules/jsqr, served at /vendor/jsqr/, loaded on first use).
// A code goes to GET /api/v1/depot/scan with the kinds the step wants; scans are answered in the
// order they were made, so a fast scanner's codes join the list in order. Everything from the data
// becomes text (../dom.js), never HTML.

import { request, Unreachable } from "../api.js";

export const config = JSON.parse(document.getElementById("depot-config").textContent);
export const W = config.words;

/** "{name} …" with each {key} replaced by its value. */
export function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
    (key in values ? String(values[key]) : whole));
}

/** A number as the API writes quantities: whole ones without decimals. */
export function quantity(value) {
  const n = Number(value);
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000);
}

const timeFormat = new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {
  timeZone: config.timezone || undefined, month: "numeric", day: "numeric", weekday: "short",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

/** A time on the depot's clock: "12/6 周六 08:00". */
export function when(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "—";
}

/** Why an item cannot go out, in words, with the date or holder that explains it. */
export function reasonText(reason, item) {
  const words = W.reasons[reason] || reason;
  if (!item) return words;
  if (reason === "inspection_overdue" && item.inspection_due) {
    return fill(W.reasonOn, { reason: words, date: item.inspection_due });
  }
  if (reason === "expired" && item.expires) {
    return fill(W.reasonOn, { reason: words, date: item.expires });
  }
  if (reason === "out" && item.holder && item.holder.to) {
    const to = item.holder.to;
    return `${words} · ${fill(W.holderOf, { kind: W.kinds[to.kind] || to.kind, code: to.code })}`;
  }
  return words;
}

/** Brings the top of the page (the result of a confirm) into view. */
export function top() {
  window.scrollTo({ top: 0, behavior: "smooth" });
}

/** Shows a message in an element (null hides it); `tone` is ok, error or info. */
export function say(element, message, tone = "info") {
  element.hidden = !message;
  element.textContent = message || "";
  element.dataset.tone = tone;
}

/**
 * The scan field (#scan-form, depot/templates/depot/_scan.html). `onCode(answer)` receives the
 * scan endpoint's answer for each code; `want()` says which kinds the step takes now. A code
 * that names nothing, or something of the wrong kind, is said under the field.
 */
export function scanField({ want, onFound }) {
  const form = document.getElementById("scan-form");
  const input = document.getElementById("scan-code");
  const status = document.getElementById("scan-status");
  let queue = Promise.resolve();

  async function look(code) {
    say(status, fill(W.scanning, { code }), "info");
    const params = new URLSearchParams({ code, want: want().join(",") });
    let answer;
    try {
      answer = await request("GET", `${config.urls.scan}?${params}`, { timeout: 15000 });
    } catch (error) {
      if (!(error instanceof Unreachable) && error.name !== "TimeoutError") throw error;
      say(status, W.unreachable, "error");
      return;
    }
    if (!answer.ok) {
      status.dataset.error = answer.body.error || "";
      say(status, answer.body.message || `HTTP ${answer.status}`, "error");
      return;
    }
    status.dataset.error = "";
    say(status, null);
    const problem = onFound(answer.body);
    if (problem) say(status, problem, "error");
  }

  /** Look a code up after the ones before it. */
  function submit(raw) {
    const code = String(raw || "").trim();
    if (!code) return queue;
    queue = queue.then(() => look(code)).catch((error) => {
      say(status, String(error && error.message ? error.message : error), "error");
    });
    return queue;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = input.value;
    input.value = "";
    submit(code);
    input.focus();
  });
  camera((code) => submit(code));
  // Focus without scrolling: the page shows its answer at the top (see `top`).
  return { submit, focus: () => input.focus({ preventScroll: true }), idle: () => queue };
}

// --- the camera ------------------------------------------------------------------------------

let reader = null;

/** jsQR, loaded once as a classic script (it sets window.jsQR). */
function loadReader() {
  if (window.jsQR) return Promise.resolve(window.jsQR);
  if (!reader) {
    reader = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = config.urls.reader;
      script.addEventListener("load", () => (window.jsQR ? resolve(window.jsQR)
        : reject(new Error("jsQR"))));
      script.addEventListener("error", () => reject(new Error("jsQR")));
      document.head.append(script);
    }).catch((error) => {
      reader = null;
      throw error;
    });
  }
  return reader;
}

/** What went wrong with the camera, in words a keeper can act on. */
function cameraProblem(error) {
  const words = W.camera;
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return words.denied;
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError":
      return words.missing;
    case "NotReadableError":
    case "AbortError":
      return words.busy;
    default:
      return fill(words.failed, { why: (error && (error.name || error.message)) || "?" });
  }
}

function camera(onCode) {
  const button = document.getElementById("scan-camera");
  const box = document.getElementById("camera");
  const video = document.getElementById("camera-video");
  const note = document.getElementById("camera-note");
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let stream = null;
  let frame = 0;

  function show(open, message, tone = "info") {
    box.hidden = !open && !message;
    video.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? W.camera.close : W.camera.open;
    say(note, message, tone);
    box.dataset.state = open ? "open" : message ? tone : "closed";
  }

  function stop(message, tone) {
    cancelAnimationFrame(frame);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    show(false, message, tone);
  }

  function tick(decode) {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth) {
      // A frame of at most 640 px across is enough for a label held in front of the lens.
      const scale = Math.min(1, 640 / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = decode(image.data, canvas.width, canvas.height,
        { inversionAttempts: "attemptBoth" });
      if (found && found.data) {
        stop(fill(W.camera.read, { code: found.data }), "ok");
        onCode(found.data);
        return;
      }
    }
    frame = requestAnimationFrame(() => tick(decode));
  }

  async function start() {
    if (!window.isSecureContext || !navigator.mediaDevices
        || !navigator.mediaDevices.getUserMedia) {
      show(false, window.isSecureContext ? W.camera.missing : W.camera.insecure, "error");
      return;
    }
    show(true, W.camera.starting);
    let decode;
    try {
      decode = await loadReader();
    } catch {
      stop(W.camera.noReader, "error");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" } }, audio: false });
    } catch (error) {
      stop(cameraProblem(error), "error");
      return;
    }
    video.srcObject = stream;
    try {
      await video.play();
    } catch (error) {
      stop(cameraProblem(error), "error");
      return;
    }
    show(true, W.camera.aim);
    tick(decode);
  }

  let starting = false;
  button.addEventListener("click", async () => {
    if (starting) return;
    if (stream) {
      stop();
      return;
    }
    starting = true;
    try {
      await start();
    } finally {
      starting = false;
    }
  });
  // Let go of the camera when the keeper leaves the page or the tablet sleeps.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden && stream) stop();
  });
  window.addEventListener("pagehide", () => stream && stop());
}
