// The demo page: start/stop, language picker, live captions, state and mic level.
import { connect } from "/sdk/interpreter.js";

const $ = (id) => document.getElementById(id);
const sourceSelect = $("source-lang");
const startButton = $("start");
const stopButton = $("stop");
const stateBadge = $("state");
const captionList = $("captions");
const errorBox = $("error");
const level = $("level");

let session = null;
let meterStop = null;
const captionRows = new Map(); // utterance_id -> {row, revision}
const languageNames = new Intl.DisplayNames([navigator.language || "en"], { type: "language" });

function setState(state) {
  stateBadge.textContent = state;
  stateBadge.className = `state state-${state}`;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function formatOffset(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function renderCaption(caption) {
  let entry = captionRows.get(caption.utterance_id);
  if (entry && caption.revision <= entry.revision) return; // late or duplicate
  if (!entry) {
    captionList.querySelector(".placeholder")?.remove();
    const row = document.createElement("p");
    row.className = "caption";
    row.innerHTML = '<time></time><span class="text"><span class="stable"></span><span class="unstable"></span></span>';
    row.dataset.utterance = caption.utterance_id;
    captionList.append(row);
    entry = { row };
    captionRows.set(caption.utterance_id, entry);
  }
  entry.revision = caption.revision;
  const { row } = entry;
  const text = caption.translation ? caption.translation.text : caption.text;
  const stable = caption.status === "final" ? text.length : caption.stable_chars || 0;
  row.classList.toggle("interim", caption.status === "interim");
  row.classList.toggle("final", caption.status === "final");
  row.querySelector("time").textContent = formatOffset(caption.start_ms);
  row.querySelector(".stable").textContent = text.slice(0, stable);
  row.querySelector(".unstable").textContent = text.slice(stable);
  if (caption.status === "final" && !text) row.remove();
  row.scrollIntoView({ block: "nearest" });
}

function startMeter(stream) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    level.style.width = `${Math.min(100, Math.round(rms * 400))}%`;
    frame = requestAnimationFrame(draw);
  };
  draw();
  return () => {
    cancelAnimationFrame(frame);
    context.close();
    level.style.width = "0";
  };
}

function stopped(reason) {
  meterStop?.();
  meterStop = null;
  session = null;
  startButton.disabled = false;
  stopButton.disabled = true;
  sourceSelect.disabled = false;
  setState("off");
  if (reason && reason !== "closed by client") showError(`Disconnected: ${reason}.`);
}

async function start() {
  showError("");
  startButton.disabled = true;
  sourceSelect.disabled = true;
  setState("connecting");
  try {
    session = await connect({ room: "demo", name: "You", sourceLang: sourceSelect.value });
  } catch (err) {
    stopped();
    showError(`Could not start: ${err.message}`);
    return;
  }
  stopButton.disabled = false;
  document.body.dataset.session = session.id; // for support and tests
  setState(session.state);
  session.on("caption", renderCaption);
  session.on("state", setState);
  session.on("error", (e) => showError(`${e.message} (${e.code})`));
  session.on("close", stopped);
  if (session.stream) meterStop = startMeter(session.stream);
}

async function loadLanguages() {
  let codes = ["en"];
  try {
    const response = await fetch("/api/languages");
    if (response.ok) codes = (await response.json()).speech;
  } catch {
    // keep English only
  }
  const named = codes.map((code) => [code, languageNames.of(code) || code]);
  named.sort((a, b) => a[1].localeCompare(b[1]));
  for (const [code, name] of named) sourceSelect.add(new Option(`${name} (${code})`, code, false, code === "en"));
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", () => session?.close());
loadLanguages();
