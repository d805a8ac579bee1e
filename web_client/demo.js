// The demo page: start/stop, languages, live captions with translation, states, levels.
import { connect, takePageToken } from "/sdk/interpreter.js";
import { locale, t, translatePage } from "/i18n.js";

const $ = (id) => document.getElementById(id);
const sourceSelect = $("source-lang");
const targetSelect = $("target-lang");
const startButton = $("start");
const stopButton = $("stop");
const stateBadge = $("state");
const playoutBadge = $("playout");
const captionList = $("captions");
const errorBox = $("error");
const roomInput = $("room");
const nameInput = $("name");

let session = null;
let meters = [];
let languages = { speech: ["en"], translation: {} };
const captionRows = new Map(); // utterance_id -> {row, revision}
const languageNames = new Intl.DisplayNames([locale], { type: "language" });
const nameOf = (code) => `${languageNames.of(code) || code} (${code})`;

// Two badges: what happens to my speech, and whether interpretation plays to me.
function setState(state) {
  stateBadge.textContent = t(`state.${state}`);
  stateBadge.className = `state state-${state}`;
}

function setPlayout(state) {
  playoutBadge.hidden = state !== "speaking";
  playoutBadge.textContent = state === "speaking" ? t("speaking") : "";
  if (state !== "speaking") $("now-speaking").hidden = true;
}

// Interims thinned or paused while more people speak than the server carries at once.
function setRecognition(state) {
  const badge = $("recognition");
  badge.hidden = state === "live";
  badge.textContent = state === "live" ? "" : t(`recognition.${state}`);
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
    row.innerHTML =
      '<time></time><span class="body"><span class="speaker"></span><span class="text">' +
      '<span class="stable"></span><span class="unstable"></span></span>' +
      '<span class="original"></span></span>';
    row.dataset.utterance = caption.utterance_id;
    captionList.append(row);
    entry = { row };
    captionRows.set(caption.utterance_id, entry);
  }
  entry.revision = caption.revision;
  const { row } = entry;
  const translated = caption.translation;
  const text = translated ? translated.text : caption.text;
  // The stable prefix is known for the original only; a translation is shown whole.
  const stable = caption.status === "final" || translated ? text.length : caption.stable_chars || 0;
  row.classList.toggle("interim", caption.status === "interim");
  row.classList.toggle("final", caption.status === "final");
  row.querySelector("time").textContent = formatOffset(caption.start_ms);
  row.querySelector(".speaker").textContent = caption.speaker_id === session?.participantId ? "" : caption.speaker;
  row.querySelector(".stable").textContent = text.slice(0, stable);
  row.querySelector(".unstable").textContent = text.slice(stable);
  row.querySelector(".original").textContent = translated ? caption.text : "";
  row.lang = translated ? translated.lang : caption.lang;
  if (caption.status === "final" && !caption.text) row.remove();
  row.scrollIntoView({ block: "nearest" });
}

function showParticipants() {
  const names = [...session.participants.values()]
    .map((p) => `${p.name} (${p.speak ? `${p.source_lang} → ` : `${t("listens_in")} `}${p.target_lang})`);
  $("participants").textContent = names.join(", ") || t("nobody_yet");
}

// The room token given in the page's address: `/?room=standup#token=...`.
const pageToken = takePageToken();
const pageParams = new URLSearchParams(window.location.search);
if (pageParams.get("room")) roomInput.value = pageParams.get("room");

function updateViewerLink() {
  const query = new URLSearchParams({ room: roomInput.value, lang: targetSelect.value });
  if (pageParams.get("ui")) query.set("ui", locale); // the overlay speaks as the page does
  $("viewer-link").href = `/viewer.html?${query}`;
}

function markSpoken(speech) {
  captionRows.get(speech.utterance_id)?.row.classList.add("spoken");
  // What the voice is saying now (a chunk of the sentence, in simultaneous mode).
  const line = $("now-speaking");
  line.hidden = !speech.text;
  line.textContent = `♪ ${speech.text}`;
  line.dataset.utterance = speech.utterance_id;
  line.dataset.chunk = String(speech.chunk);
}

function levelMeter(stream, bar) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    bar.style.width = `${Math.min(100, Math.round(rms * 400))}%`;
    bar.dataset.rms = rms.toFixed(4);
    frame = requestAnimationFrame(draw);
  };
  draw();
  return () => {
    cancelAnimationFrame(frame);
    context.close();
    bar.style.width = "0";
  };
}

function fillTargets() {
  const source = sourceSelect.value;
  const previous = targetSelect.value;
  targetSelect.replaceChildren(new Option(t("original", { language: nameOf(source) }), source));
  const targets = Object.keys(languages.translation[source] || {});
  for (const target of targets.sort((a, b) => nameOf(a).localeCompare(nameOf(b)))) {
    targetSelect.add(new Option(nameOf(target), target, false, target === previous));
  }
}

function stopped(reason) {
  setRecognition("live");
  meters.forEach((stop) => stop());
  meters = [];
  session = null;
  startButton.disabled = false;
  stopButton.disabled = true;
  sourceSelect.disabled = false;
  roomInput.disabled = nameInput.disabled = false;
  setState("off");
  if (reason && reason !== "closed by client") showError(t("disconnected", { reason }));
}

async function start() {
  showError("");
  startButton.disabled = true;
  sourceSelect.disabled = true;
  roomInput.disabled = nameInput.disabled = true;
  setState("connecting");
  try {
    session = await connect({
      room: roomInput.value.trim() || "demo",
      name: nameInput.value.trim() || t("you"),
      sourceLang: sourceSelect.value,
      targetLang: targetSelect.value,
      interpretation: $("interpretation").value,
      token: pageToken, // a room token in the page's address (#token=), unless --dev
      locale, // the SDK's messages in the page's language
    });
  } catch (err) {
    stopped();
    showError(t("could_not_start", { message: err.message }));
    return;
  }
  stopButton.disabled = false;
  document.body.dataset.session = session.id; // for support and tests
  window.interpreterSession = session; // for the browser console (and tests)
  setState(session.speakerState);
  setPlayout(session.playoutState);
  setRecognition(session.recognitionState);
  session.on("caption", renderCaption);
  session.on("speech", markSpoken);
  session.on("participant", showParticipants);
  session.on("speaker_state", setState);
  session.on("playout_state", setPlayout);
  session.on("recognition", setRecognition);
  session.on("error", (e) => showError(`${e.message} (${e.code})`));
  session.on("engine", (e) => {
    // A fallback engine serves while a provider is out; say so until it is back.
    if (e.status === "restored") showError("");
  });
  session.on("reconnecting", () => showError(t("connection_lost")));
  session.on("reconnected", () => showError(""));
  session.on("close", stopped);
  if (!$("tts").checked) session.setTts(false);
  if (session.stream) meters.push(levelMeter(session.stream, $("level")));
  const watchOutput = (stream) => meters.push(levelMeter(stream, $("out-level")));
  if (session.remoteStream) watchOutput(session.remoteStream);
  else session.on("audio", watchOutput);
  session.setVolume($("volume").value);
  session.setMuted($("mute").checked);
}

async function loadLanguages() {
  try {
    const response = await fetch("/api/languages");
    if (response.ok) languages = await response.json();
  } catch {
    // keep English only
  }
  const named = languages.speech.map((code) => [code, nameOf(code)]);
  named.sort((a, b) => a[1].localeCompare(b[1]));
  for (const [code, name] of named) sourceSelect.add(new Option(name, code, false, code === "en"));
  fillTargets();
}

translatePage();
if (nameInput.value === "You") nameInput.value = t("you");
startButton.addEventListener("click", start);
stopButton.addEventListener("click", () => session?.close());
sourceSelect.addEventListener("change", fillTargets);
roomInput.addEventListener("input", updateViewerLink);
targetSelect.addEventListener("change", () => {
  updateViewerLink();
  showError("");
  session?.setLanguage(targetSelect.value); // live: the next caption is in it
});
$("tts").addEventListener("change", (e) => session?.setTts(e.target.checked));
$("interpretation").addEventListener("change", (e) => session?.setInterpretation(e.target.value));
$("volume").addEventListener("input", (e) => session?.setVolume(e.target.value));
$("mute").addEventListener("change", (e) => session?.setMuted(e.target.checked));
loadLanguages();
