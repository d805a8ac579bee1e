// live-interpreter SDK: an ES module, no build step. Full reference: /sdk/ (sdk/index.html).
//
//   import { connect } from "/sdk/interpreter.js";
//   const session = await connect({ server, room, name, sourceLang, targetLang, stream });
//   session.on("caption", (c) => ...);     // {utterance_id, revision, status, speaker, speaker_id,
//                                          //  text (original), translation: {lang, text} | null}
//   session.on("participant", (p) => ...); // {event: present|joined|left|changed, participant}
//   session.on("speaker_state", (s) => ...); // my speech: "idle" | "listening" | "translating"
//   session.on("playout_state", (s) => ...); // what I hear: "idle" | "speaking"
//   session.on("state", (s) => ...);       // deprecated: the last change of either, in one value
//   session.on("speech", (s) => ...);      // a spoken-translation clip starts playing:
//                                          //  {utterance_id, chunk, text, source, duration_ms, cut_ms...}
//   session.on("error", (e) => ...);       // {code, message}
//   session.on("reconnecting", (reason) => ...); // the connection dropped: resuming the session
//   session.on("reconnected", () => ...);         // same participant, captions go on
//   session.on("close", (reason) => ...);
//   session.attachAudio(element); session.setLanguage("pt"); session.setVolume(0.8);
//   session.setMuted(true); session.setTts(false); session.setMonitor(true); session.leave();
//   session.setInterpretation("consecutive"); // or "simultaneous" (hear it as it is said)
//   session.reconnect(); // a new connection for the same session (after a network change)

const PING_INTERVAL_MS = 1000;
const ICE_GATHER_WAIT_MS = 1000;
// A dropped connection is resumed (same session, same participant) within the server's
// grace period (30 s by default): tries after these waits, then the session is over.
const RESUME_WAITS_MS = [300, 1000, 2000, 3000, 5000, 5000, 5000, 5000];

// What the SDK tells a user, in the languages of its user interface: its own errors,
// and the server's errors a user most often meets (any other keeps the server's words).
const MESSAGES = {
  en: {
    network: "cannot reach the server at {server}: {detail}",
    no_microphone: "this browser cannot capture audio (is the page served over HTTPS?)",
    microphone_denied: "the microphone could not be opened: {detail}",
    autoplay_blocked: "the browser blocked audio playback: {detail}",
    resume_failed: "{detail}; could not resume",
  },
  vi: {
    network: "không kết nối được máy chủ {server}: {detail}",
    no_microphone: "trình duyệt này không thu được âm thanh (trang có được phục vụ qua HTTPS không?)",
    microphone_denied: "không mở được micrô: {detail}",
    autoplay_blocked: "trình duyệt đã chặn phát âm thanh: {detail}",
    resume_failed: "{detail}; không khôi phục được phiên",
    unsupported_language: "máy chủ này không hỗ trợ ngôn ngữ đã chọn",
    unsupported_language_pair: "máy chủ này không dịch được giữa hai ngôn ngữ đã chọn",
    room_full: "phòng đã đầy",
    capacity: "máy chủ đang quá tải, hãy thử lại sau ít phút",
    too_many_sessions: "máy chủ đang có quá nhiều phiên, hãy thử lại sau",
    rate_limited: "quá nhiều yêu cầu, hãy thử lại sau giây lát",
    token_missing: "cần mã truy cập phòng (token)",
    token_invalid: "mã truy cập phòng không hợp lệ",
    token_expired: "mã truy cập phòng đã hết hạn",
    token_wrong_room: "mã truy cập này dành cho phòng khác",
  },
};
export const UI_LOCALES = Object.freeze(Object.keys(MESSAGES));

/**
 * The language of the user interface: `preferred` if the SDK speaks it (a page's
 * `?ui=vi`), else the browser's first language it speaks, else English.
 * @param {string} [preferred]
 * @returns {"en" | "vi"}
 */
export function uiLocale(preferred) {
  const wanted = [preferred, ...(navigator.languages || [navigator.language])];
  for (const tag of wanted) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (UI_LOCALES.includes(base)) return base;
  }
  return "en";
}

function say(locale, code, fallback, params = {}) {
  const template = MESSAGES[locale]?.[code] ?? MESSAGES.en[code] ?? fallback;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export class InterpreterError extends Error {
  constructor(code, message, status) {
    super(message);
    this.name = "InterpreterError";
    this.code = code;
    this.status = status;
  }
}

async function api(server, method, path, body, { token, locale = "en", ...options } = {}) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`; // the room token
  let response;
  try {
    response = await fetch(`${server}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      ...options,
    });
  } catch (err) {
    throw new InterpreterError("network", say(locale, "network", "", { server, detail: err.message }));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // fall through: a non-JSON answer is reported below
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: "http_" + response.status, message: response.statusText };
    throw new InterpreterError(error.code, say(locale, error.code, error.message), response.status);
  }
  return data;
}

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

class Session {
  constructor(server, info, token, locale = "en") {
    this.server = server;
    this.token = token;
    this.locale = locale; // of the messages it gives the user: "en" or "vi"
    this.id = info.session_id;
    this.participantId = info.participant_id;
    this.iceServers = info.ice_servers || [];
    this.speakerState = "idle"; // my speech being recognised: idle, listening, translating
    this.playoutState = "idle"; // interpretation playing to me: idle, speaking
    this.recognitionState = "live"; // my interims: live, thinned or paused (server busy)
    this.state = "idle"; // deprecated: the last change of either
    this.closed = false;
    this.stream = null;
    this.remoteStream = null; // the interpreted audio, once it arrives
    this.audio = null; // the element that plays it
    this.participants = new Map(); // participant id -> {id, name, source_lang, target_lang, speak}
    this._ownsStream = false;
    this._handlers = new Map();
    this._lateCandidates = [];
    this._answered = false;
    this._unsent = [];
    this._options = null; // what _negotiate was given, to negotiate again on resume
    this._resuming = false;
    this._revisions = new Map(); // utterance id -> last revision shown: nothing twice
  }

  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  _emit(event, payload) {
    for (const handler of this._handlers.get(event) || []) {
      try {
        handler(payload);
      } catch (err) {
        console.error(`live-interpreter: ${event} handler failed`, err);
      }
    }
  }

  _send(message) {
    if (this.closed) return;
    if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify(message));
    else this._unsent.push(message); // said as soon as the channel opens
  }

  /** Read (and hear) the following captions in `lang`; no renegotiation. */
  setLanguage(lang) {
    this._send({ type: "set_language", target: lang });
  }

  /** Turn the spoken translation on or off (the server stops synthesising it). */
  setTts(enabled) {
    this._send({ type: "set_tts", enabled: Boolean(enabled) });
  }

  /** Hear the interpretation of one's own speech (on by default when alone in the room). */
  setMonitor(enabled) {
    this._send({ type: "set_monitor", enabled: Boolean(enabled) });
  }

  /** Hear spoken translation "simultaneous" (chunk by chunk, while the speaker goes on)
   *  or "consecutive" (each sentence once it is finished); from the next sentence. */
  setInterpretation(mode) {
    this._send({ type: "set_interpretation", mode: String(mode) });
  }

  /** Volume of the interpreted audio, 0 to 1. */
  setVolume(volume) {
    if (this.audio) this.audio.volume = Math.min(1, Math.max(0, Number(volume)));
  }

  setMuted(muted) {
    if (this.audio) this.audio.muted = Boolean(muted);
  }

  /** Play the interpreted audio in `element` (an <audio> or <video> of the app's choice). */
  attachAudio(element) {
    if (this.audio && this.audio !== element) this.audio.srcObject = null;
    this.audio = element;
    if (!this.remoteStream) return; // attached when the track arrives
    element.autoplay = true;
    element.srcObject = this.remoteStream;
    element.play().catch((err) =>
      this._emit("error", {
        code: "autoplay_blocked",
        message: say(this.locale, "autoplay_blocked", "", { detail: err.message }),
      }),
    );
  }

  _onAudioTrack(event) {
    this.remoteStream = event.streams[0] || new MediaStream([event.track]);
    this.attachAudio(this.audio || new Audio());
    this._emit("audio", this.remoteStream);
  }

  _onCaption(caption) {
    const shown = this._revisions.get(caption.utterance_id);
    if (shown !== undefined && caption.revision <= shown) return; // already shown
    this._revisions.set(caption.utterance_id, caption.revision);
    this._emit("caption", caption);
  }

  _onParticipant(message) {
    const { event, participant } = message;
    if (event === "left") this.participants.delete(participant.id);
    else this.participants.set(participant.id, participant);
    this._emit("participant", message);
  }

  async _negotiate(options) {
    const { stream, speak, relayOnly } = options;
    this._options = options;
    this._answered = false;
    const pc = (this.pc = new RTCPeerConnection({
      iceServers: this.iceServers,
      iceTransportPolicy: relayOnly ? "relay" : "all",
    }));
    const current = () => pc === this.pc && !this.closed; // events of a replaced connection are old news
    if (speak) {
      for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" }); // to hear the interpretation
    }
    pc.ontrack = (event) => {
      if (current() && event.track.kind === "audio") this._onAudioTrack(event);
    };
    const channel = (this.channel = pc.createDataChannel("captions"));
    channel.onmessage = (event) => current() && this._onMessage(event.data);
    channel.onopen = () => {
      if (!current()) return;
      this._unsent.splice(0).forEach((message) => this._send(message));
      clearInterval(this._pinger);
      this._pinger = setInterval(() => this._send({ type: "ping" }), PING_INTERVAL_MS);
    };
    channel.onclose = () => current() && this._lost("channel closed");
    pc.onicecandidate = (event) => {
      if (!current() || !event.candidate) return;
      if (this._answered) this._trickle([event.candidate]);
      else this._lateCandidates.push(event.candidate);
    };
    pc.onconnectionstatechange = () => {
      if (current() && ["failed", "closed"].includes(pc.connectionState)) {
        this._lost(`connection ${pc.connectionState}`);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    // Most candidates arrive within milliseconds: send them in the offer, trickle the rest.
    await waitForIceGathering(pc, ICE_GATHER_WAIT_MS);
    this._lateCandidates = [];
    const answer = await api(this.server, "POST", `/api/sessions/${this.id}/offer`, {
      sdp: pc.localDescription.sdp,
      type: "offer",
    }, { token: this.token, locale: this.locale });
    await pc.setRemoteDescription(answer);
    this._answered = true;
  }

  /** Drop this connection and go on with the session over a new one (after the
   * network changed, say). Emits "reconnecting", then "reconnected". */
  reconnect() {
    this._lost("reconnect requested");
  }

  /** The connection went without anyone closing it: resume the session. */
  _lost(reason) {
    if (this.closed || this._resuming) return;
    this._resuming = true;
    clearInterval(this._pinger);
    const old = this.pc;
    this.pc = null; // its late events are ignored from here on
    old.close();
    this._emit("reconnecting", reason);
    this._resume(reason);
  }

  async _resume(reason) {
    for (const wait of RESUME_WAITS_MS) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.closed) return;
      try {
        const info = await api(this.server, "POST", "/api/sessions", { resume: this.id }, { token: this.token, locale: this.locale });
        this.iceServers = info.ice_servers || this.iceServers;
        this.participants.clear(); // the server tells who is there again
        await this._negotiate(this._options);
        this._resuming = false;
        this._emit("reconnected");
        return;
      } catch (err) {
        if (this.pc) this.pc.close();
        this.pc = null;
        if (err.code === "unknown_session") break; // ended, or past the grace period
      }
    }
    this._resuming = false;
    this._finish(say(this.locale, "resume_failed", "", { detail: reason }));
  }

  _trickle(candidates) {
    const body = { candidates: candidates.map((c) => c.toJSON()) };
    api(this.server, "PATCH", `/api/sessions/${this.id}/ice`, body, { token: this.token, locale: this.locale }).catch((err) =>
      this._emit("error", { code: err.code, message: err.message }),
    );
  }

  _onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (message.type === "caption") this._onCaption(message);
    else if (message.type === "participant") this._onParticipant(message);
    else if (message.type === "speaker_state") {
      this.speakerState = message.state;
      this._emit("speaker_state", message.state);
    } else if (message.type === "playout_state") {
      this.playoutState = message.state;
      this._emit("playout_state", message.state);
    } else if (message.type === "recognition") {
      this.recognitionState = message.state;
      this._emit("recognition", message.state);
    } else if (message.type === "state") {
      this.state = message.state; // deprecated; servers send it for one more release
      this._emit("state", message.state);
    } else if (message.type === "speech") this._emit("speech", message);
    else if (message.type === "engine") this._emit("engine", message);
    else if (message.type === "error") {
      this._emit("error", { code: message.code, message: say(this.locale, message.code, message.message) });
    }
  }

  _finish(reason) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this._pinger);
    window.removeEventListener("pagehide", this._onPageHide);
    if (this.pc) this.pc.close();
    if (this.audio) this.audio.srcObject = null;
    if (this._ownsStream && this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this._emit("close", reason);
  }

  close() {
    if (this.closed) return;
    this._send({ type: "bye" });
    api(this.server, "DELETE", `/api/sessions/${this.id}`, undefined, { keepalive: true, token: this.token, locale: this.locale }).catch(
      () => {},
    );
    this._finish("closed by client");
  }

  /** Leave the room (the same as close()). */
  leave() {
    this.close();
  }
}

/**
 * Join a room and start interpreting: what this participant says is captioned for
 * everyone in the room, and they read (and hear) everyone else in `targetLang`.
 * @param {object} options
 * @param {string} [options.server]      server origin, default this page's origin
 * @param {string} [options.room]        room name
 * @param {string} [options.token]       a room token from your backend (`live-interpreter
 *                                       token ROOM`, or minted with the server's secret);
 *                                       not needed by a server run with `serve --dev`
 * @param {string} [options.name]        the participant's display name
 * @param {string} [options.sourceLang]  the language spoken into the mic
 * @param {string} [options.targetLang]  the language to read captions in
 * @param {MediaStream} [options.stream] an existing stream to send (the app's own
 *                                       call audio) instead of opening the mic
 * @param {boolean} [options.speak]      send audio (default true); false: listen only
 * @param {boolean} [options.relayOnly]  force TURN relay
 * @param {boolean} [options.monitor]    hear one's own speech interpreted (default: when alone)
 * @param {string} [options.interpretation] "simultaneous" or "consecutive" (default: the
 *                                       server's, LIVE_INTERPRETER_INTERPRETATION)
 * @param {HTMLAudioElement} [options.audioElement] where to play the interpreted audio
 * @param {string} [options.locale]      the language of the SDK's messages to the user:
 *                                       "en" or "vi" (default: the browser's, see uiLocale)
 */
export async function connect(options = {}) {
  const server = (options.server || window.location.origin).replace(/\/$/, "");
  const speak = options.speak !== false;
  const sourceLang = options.sourceLang || "en";
  const locale = uiLocale(options.locale);
  const info = await api(server, "POST", "/api/sessions", {
    room: options.room || "default",
    name: options.name || "Guest",
    source_lang: sourceLang,
    target_lang: options.targetLang || sourceLang,
    speak,
    ...(options.monitor === undefined ? {} : { monitor: Boolean(options.monitor) }),
    ...(options.interpretation ? { interpretation: String(options.interpretation) } : {}),
  }, { token: options.token, locale });
  const session = new Session(server, info, options.token, locale);
  if (options.audioElement) session.audio = options.audioElement;
  try {
    if (speak) {
      session.stream = options.stream;
      if (!session.stream) {
        if (!navigator.mediaDevices?.getUserMedia) {
          throw new InterpreterError("no_microphone", say(locale, "no_microphone", ""));
        }
        try {
          session.stream = await navigator.mediaDevices.getUserMedia({
            audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
          });
        } catch (err) {
          throw new InterpreterError("microphone_denied", say(locale, "microphone_denied", "", { detail: err.message }));
        }
        session._ownsStream = true;
      }
    }
    await session._negotiate({
      stream: session.stream,
      speak,
      relayOnly: options.relayOnly,
    });
  } catch (err) {
    session.close();
    throw err;
  }
  // A closing tab: tell the server now instead of letting it time out.
  session._onPageHide = () => session.close();
  window.addEventListener("pagehide", session._onPageHide);
  return session;
}

/**
 * A room token given in the page's address, taken out of it: from the fragment
 * (`#token=…`: browsers send a fragment to no server and in no `Referer`) or, as
 * older links do, from the query. The address bar, and so history and bookmarks,
 * keep the rest of the address only.
 * @returns {string | undefined}
 */
export function takePageToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const query = new URLSearchParams(window.location.search);
  const token = fragment.get("token") || query.get("token") || undefined;
  if (fragment.has("token") || query.has("token")) {
    fragment.delete("token");
    query.delete("token");
    const search = query.toString() ? `?${query}` : "";
    const hash = fragment.toString() ? `#${fragment}` : "";
    window.history.replaceState(null, "", `${window.location.pathname}${search}${hash}`);
  }
  return token;
}
