// Types of the live-interpreter SDK (interpreter.js) and of every message the server
// sends on the data channel (and on a WebSocket's text frames). Checked in the test
// suite with `tsc --noEmit --strict` on an example that uses every call and event.

export type SpeakerState = "idle" | "listening" | "translating";
export type PlayoutState = "idle" | "speaking";
/** Deprecated: the last change of either state, in one value. */
export type LegacyState = SpeakerState | PlayoutState;
export type Interpretation = "simultaneous" | "consecutive";

export interface Translation {
  lang: string;
  text: string;
}

export interface CaptionMessage {
  type: "caption";
  /** `<participant id>-<n>`: with `revision`, orders and dedupes captions. */
  utterance_id: string;
  revision: number;
  status: "interim" | "final";
  /** The speaker's display name. */
  speaker: string;
  speaker_id: string;
  /** The language spoken (`text` is in it). */
  lang: string;
  text: string;
  /** Offsets on the room's clock (0: the room's first audio). */
  start_ms: number;
  end_ms: number;
  /** Interims: this many leading characters will not change. */
  stable_chars: number;
  /** In the language this participant reads; null when it is the spoken one. */
  translation: Translation | null;
}

export interface ParticipantInfo {
  id: string;
  name: string;
  source_lang: string;
  target_lang: string;
  speak: boolean;
}

export interface ParticipantMessage {
  type: "participant";
  event: "present" | "joined" | "left" | "changed";
  participant: ParticipantInfo;
}

export interface SpeakerStateMessage {
  type: "speaker_state";
  state: SpeakerState;
}

export interface PlayoutStateMessage {
  type: "playout_state";
  state: PlayoutState;
}

/** How often my interims come: thinned or paused while more people speak at once than
 * the server's recogniser carries (my finals always come), live again once it does. */
export type RecognitionState = "live" | "thinned" | "paused";

export interface RecognitionMessage {
  type: "recognition";
  state: RecognitionState;
}

export interface StateMessage {
  type: "state";
  state: LegacyState;
}

export interface SpeechMessage {
  type: "speech";
  utterance_id: string;
  lang: string;
  /** Room time when the clip starts playing. */
  start_ms: number;
  duration_ms: number;
  speaker_id: string;
  /** False: more audio follows, and the message comes again complete. */
  complete: boolean;
  /** Which clip of its utterance, from 1 (simultaneous interpretation: several). */
  chunk: number;
  last: boolean;
  /** What it says, in `lang`. */
  text: string;
  /** The words of the original it translates. */
  source: string;
  /** Left out at its end: it started too far behind the speaker. */
  cut_ms: number;
}

export interface EngineMessage {
  type: "engine";
  kind: "stt" | "translate" | "tts";
  provider: string;
  status: "degraded" | "restored";
}

export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
}

export interface PongMessage {
  type: "pong";
}

/** Everything the server sends. */
export type ServerMessage =
  | CaptionMessage
  | ParticipantMessage
  | SpeakerStateMessage
  | PlayoutStateMessage
  | StateMessage
  | RecognitionMessage
  | SpeechMessage
  | EngineMessage
  | ErrorMessage
  | PongMessage;

/** Everything a client may send (the SDK sends them for you). */
export type ClientMessage =
  | { type: "set_language"; target: string }
  | { type: "set_tts"; enabled: boolean }
  | { type: "set_monitor"; enabled: boolean }
  | { type: "set_interpretation"; mode: Interpretation }
  | { type: "ping" }
  | { type: "bye" };

export interface SessionError {
  code: string;
  message: string;
}

/** What each event hands its handlers. */
export interface SessionEvents {
  caption: CaptionMessage;
  participant: ParticipantMessage;
  speaker_state: SpeakerState;
  playout_state: PlayoutState;
  /** Deprecated: the last change of either state. */
  state: LegacyState;
  recognition: RecognitionState;
  speech: SpeechMessage;
  engine: EngineMessage;
  error: SessionError;
  audio: MediaStream;
  reconnecting: string;
  reconnected: void;
  close: string;
}

export declare class InterpreterError extends Error {
  constructor(code: string, message: string, status?: number);
  readonly name: "InterpreterError";
  /** `network`, `no_microphone`, `microphone_denied`, or the server's error code. */
  code: string;
  /** The HTTP status, for an error the server answered. */
  status: number | undefined;
}

export interface ConnectOptions {
  /** The server's origin; default this page's. */
  server?: string;
  room?: string;
  /** A room token from your backend; not needed by a server run with `serve --dev`. */
  token?: string;
  name?: string;
  /** The language spoken into the mic (default "en"). */
  sourceLang?: string;
  /** The language to read (and hear) in (default: sourceLang). */
  targetLang?: string;
  /** A stream to send (the app's own call audio) instead of opening the mic. */
  stream?: MediaStream;
  /** Send audio (default true); false: listen only. */
  speak?: boolean;
  /** Use TURN relays only. */
  relayOnly?: boolean;
  /** Hear one's own speech interpreted (default: when alone in the room). */
  monitor?: boolean;
  /** Default: the server's (LIVE_INTERPRETER_INTERPRETATION). */
  interpretation?: Interpretation;
  /** Where to play the interpreted audio. */
  audioElement?: HTMLAudioElement;
  /** The language of the SDK's messages to the user (default: uiLocale()). */
  locale?: UiLocale;
}

export interface Session {
  readonly server: string;
  /** The language of the messages it gives the user. */
  readonly locale: UiLocale;
  readonly id: string;
  readonly participantId: string;
  readonly speakerState: SpeakerState;
  readonly playoutState: PlayoutState;
  /** How often my interims come now ("live" unless the server is busy). */
  readonly recognitionState: RecognitionState;
  /** Deprecated: the last change of either state. */
  readonly state: LegacyState;
  readonly closed: boolean;
  /** The stream sent (the mic, or the one given). */
  readonly stream: MediaStream | null;
  /** The interpreted audio, once it arrives. */
  readonly remoteStream: MediaStream | null;
  /** The element playing it. */
  readonly audio: HTMLMediaElement | null;
  /** Who is in the room, by participant id. */
  readonly participants: ReadonlyMap<string, ParticipantInfo>;

  /** Returns a function that removes the handler. */
  on<E extends keyof SessionEvents>(event: E, handler: (payload: SessionEvents[E]) => void):
    () => void;
  off<E extends keyof SessionEvents>(event: E, handler: (payload: SessionEvents[E]) => void):
    void;
  /** Read (and hear) the following captions in `lang`. */
  setLanguage(lang: string): void;
  /** Turn the spoken translation on or off. */
  setTts(enabled: boolean): void;
  /** Hear the interpretation of one's own speech. */
  setMonitor(enabled: boolean): void;
  /** From the next sentence. */
  setInterpretation(mode: Interpretation): void;
  /** 0 to 1. */
  setVolume(volume: number): void;
  setMuted(muted: boolean): void;
  /** Play the interpreted audio in an element of the app's choice. */
  attachAudio(element: HTMLMediaElement): void;
  /** A new connection for the same session (after a network change). */
  reconnect(): void;
  close(): void;
  /** The same as close(). */
  leave(): void;
}

/** Join a room and start interpreting. Rejects with an InterpreterError. */
export declare function connect(options?: ConnectOptions): Promise<Session>;

/** The languages the SDK speaks to users in. */
export type UiLocale = "en" | "vi";
export declare const UI_LOCALES: readonly UiLocale[];

/** `preferred` (a page's `?ui=`) if the SDK speaks it, else the browser's first
 * language it speaks, else "en". */
export declare function uiLocale(preferred?: string | null): UiLocale;

/** A room token given in the page's address (`#token=…`), taken out of it. */
export declare function takePageToken(): string | undefined;
