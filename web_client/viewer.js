// The caption overlay: joins a room listen-only and shows its latest captions large.
import { connect, takePageToken } from "/sdk/interpreter.js";
import { locale, t } from "/i18n.js";

const token = takePageToken(); // a listener's room token, from `#token=`
const params = new URLSearchParams(window.location.search);
const room = params.get("room") || "demo";
const lang = params.get("lang") || "en";
const lines = Math.max(1, Number(params.get("lines") || 3));
const withAudio = params.get("audio") === "1";
const RECONNECT_MS = 2000;

const list = document.getElementById("captions");
const status = document.getElementById("status");
document.body.classList.toggle("transparent", params.get("transparent") === "1");
document.body.classList.toggle("no-original", params.get("original") === "0");
const rows = new Map(); // utterance_id -> {row, revision}

function show(caption) {
  let entry = rows.get(caption.utterance_id);
  if (entry && caption.revision <= entry.revision) return; // late or duplicate
  if (caption.status === "final" && !caption.text) {
    entry?.row.remove(); // closed without words (e.g. the speaker left mid-sentence)
    rows.delete(caption.utterance_id);
    return;
  }
  if (!entry) {
    const row = document.createElement("p");
    row.className = "caption";
    row.dataset.utterance = caption.utterance_id;
    row.innerHTML = '<span class="speaker"></span><span class="text"></span><span class="original"></span>';
    list.append(row);
    entry = { row };
    rows.set(caption.utterance_id, entry);
    while (rows.size > lines) {
      const [oldest] = rows.keys();
      rows.get(oldest).row.remove();
      rows.delete(oldest);
    }
  }
  entry.revision = caption.revision;
  const { row } = entry;
  const translated = caption.translation;
  row.classList.toggle("interim", caption.status === "interim");
  row.querySelector(".speaker").textContent = caption.speaker;
  row.querySelector(".text").textContent = translated ? translated.text : caption.text;
  row.querySelector(".text").lang = translated ? translated.lang : caption.lang;
  row.querySelector(".original").textContent = translated ? caption.text : "";
}

// With audio on, the caption being voiced is marked while its clip plays.
function markVoiced(utteranceId) {
  for (const { row } of rows.values()) {
    row.classList.toggle("voiced", row.dataset.utterance === utteranceId);
  }
}

async function join() {
  let session;
  try {
    session = await connect({
      room,
      name: params.get("name") || "Viewer",
      targetLang: lang,
      speak: false,
      token,
      locale,
    });
  } catch (err) {
    status.textContent = t("viewer_cannot_join", { message: err.message });
    setTimeout(join, RECONNECT_MS);
    return;
  }
  status.textContent = "";
  document.body.dataset.session = session.id; // for support and tests
  session.on("caption", show);
  session.on("speech", (clip) => {
    markVoiced(clip.utterance_id);
    if (!clip.complete) return; // announced again once complete: counted then
    document.body.dataset.clips = String(Number(document.body.dataset.clips || 0) + 1);
  });
  session.on("playout_state", (state) => {
    document.body.dataset.playout = state; // for tests
    if (state === "idle") markVoiced(null);
  });
  session.on("error", (e) => {
    if (e.code === "autoplay_blocked") status.textContent = t("viewer_click_to_hear");
  });
  session.on("reconnecting", () => (status.textContent = t("viewer_reconnecting")));
  session.on("reconnected", () => (status.textContent = ""));
  session.on("close", () => {  // could not resume in time: join afresh
    status.textContent = t("viewer_reconnecting");
    setTimeout(join, RECONNECT_MS);
  });
  if (!withAudio) session.setTts(false); // the server then synthesises nothing for us
  else document.addEventListener("click", () => session.audio?.play(), { once: true });
}

document.documentElement.lang = locale;
status.textContent = t("viewer_connecting");
join();
