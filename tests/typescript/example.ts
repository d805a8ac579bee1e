// Uses every call and event of the SDK as a meeting app written in TypeScript would;
// `tsc --noEmit --strict` must accept it (tests/test_sdk_types.py), and reject misuse.
import {
  connect,
  InterpreterError,
  takePageToken,
  UI_LOCALES,
  uiLocale,
  type CaptionMessage,
  type ClientMessage,
  type ServerMessage,
  type Session,
} from "../../web_client/sdk/interpreter.js";

function describe(message: ServerMessage): string {
  switch (message.type) {
    case "caption":
      return `${message.speaker}: ${message.translation?.text ?? message.text}`;
    case "participant":
      return `${message.participant.name} ${message.event}`;
    case "speaker_state":
    case "playout_state":
    case "state":
    case "recognition":
      return message.state;
    case "speech":
      return `${message.utterance_id} #${message.chunk}: ${message.text} (${message.source})`;
    case "engine":
      return `${message.kind} ${message.provider} ${message.status}`;
    case "error":
      return `${message.code}: ${message.message}`;
    case "pong":
      return "pong";
  }
}

export async function join(element: HTMLAudioElement): Promise<Session> {
  const said: ClientMessage[] = [{ type: "set_interpretation", mode: "consecutive" }];
  let session: Session;
  try {
    session = await connect({
      server: "https://interpreter.example.org",
      room: "standup",
      token: takePageToken(),
      name: "Ana",
      sourceLang: "en",
      targetLang: "pt",
      speak: true,
      relayOnly: false,
      monitor: false,
      interpretation: "simultaneous",
      audioElement: element,
      locale: uiLocale(new URLSearchParams(location.search).get("ui")),
    });
  } catch (err) {
    if (err instanceof InterpreterError) console.log(err.code, err.status, err.message);
    throw err;
  }
  console.log(session.locale, UI_LOCALES.includes(session.locale));
  const shown: CaptionMessage[] = [];
  const stop = session.on("caption", (caption) => {
    shown.push(caption);
    console.log(describe(caption), caption.stable_chars, caption.start_ms, caption.end_ms);
  });
  session.on("participant", (p) => console.log(describe(p), session.participants.size));
  session.on("speaker_state", (state) => console.log(state === "translating"));
  session.on("playout_state", (state) => console.log(state === "speaking"));
  session.on("state", (state) => console.log(state));
  session.on("recognition", (state) => console.log(state === "paused", session.recognitionState));
  session.on("speech", (speech) => console.log(describe(speech), speech.cut_ms, speech.last));
  session.on("engine", (engine) => console.log(describe(engine)));
  session.on("error", (error) => console.log(error.code, error.message));
  session.on("audio", (stream) => console.log(stream.getAudioTracks().length));
  session.on("reconnecting", (reason) => console.log(reason.length));
  session.on("reconnected", () => console.log(session.id, session.participantId));
  session.on("close", (reason) => console.log(reason, session.closed));
  stop();
  const handler = (state: "idle" | "speaking") => console.log(state);
  session.on("playout_state", handler);
  session.off("playout_state", handler);
  session.setLanguage("es");
  session.setTts(true);
  session.setMonitor(true);
  session.setInterpretation(said[0].type === "set_interpretation" ? said[0].mode : "simultaneous");
  session.setVolume(0.8);
  session.setMuted(false);
  session.attachAudio(element);
  session.reconnect();
  console.log(session.speakerState, session.playoutState, session.state, session.stream,
              session.remoteStream, session.audio, session.server);
  session.leave();
  session.close();
  return session;
}
