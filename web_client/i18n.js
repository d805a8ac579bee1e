// The demo page's and the overlay's words in the languages of their user interface:
// `?ui=vi|en` chooses, else the browser's languages (the SDK's uiLocale). Elements say
// what they show with data-i18n (their text), data-i18n-label (aria-label) and
// data-i18n-title (title).
import { uiLocale } from "/sdk/interpreter.js";

const TEXTS = {
  en: {
    title: "live-interpreter",
    tagline: "Speak; read and hear your words in another language, live.",
    room: "Room",
    name: "Name",
    you: "You",
    i_speak: "I speak",
    translate_to: "Translate to",
    spoken_language: "Spoken language",
    caption_language: "Caption language",
    your_name: "Your name",
    start: "Start",
    stop: "Stop",
    your_speech: "Your speech",
    interpretation_playing: "Interpretation playing to you",
    mic: "mic",
    microphone_level: "Microphone level",
    speak_translation: "speak the translation",
    how_spoken: "How the translation is spoken",
    simultaneous: "as it is said",
    consecutive: "after each sentence",
    voice: "voice",
    interpretation_level: "Interpretation level",
    volume: "volume",
    mute: "mute",
    in_the_room: "In the room:",
    nobody_yet: "nobody yet",
    caption_overlay: "caption overlay",
    placeholder: "Press Start and speak. Captions appear here.",
    original: "{language}: original",
    listens_in: "listens in",
    "state.off": "off",
    "state.connecting": "connecting…",
    "state.idle": "idle",
    "state.listening": "listening…",
    "state.translating": "translating…",
    speaking: "speaking…",
    "recognition.thinned": "busy: fewer live words",
    "recognition.paused": "busy: captions after each sentence",
    recognition_busy: "The server is busy: your captions come after each sentence",
    disconnected: "Disconnected: {reason}.",
    could_not_start: "Could not start: {message}",
    connection_lost: "Connection lost: reconnecting…",
    viewer_connecting: "connecting…",
    viewer_cannot_join: "cannot join: {message}; retrying…",
    viewer_click_to_hear: "click to hear the interpretation",
    viewer_reconnecting: "reconnecting…",
  },
  vi: {
    title: "live-interpreter: phiên dịch trực tiếp",
    tagline: "Hãy nói; đọc và nghe lời bạn bằng một ngôn ngữ khác, ngay lập tức.",
    room: "Phòng",
    name: "Tên",
    you: "Bạn",
    i_speak: "Tôi nói",
    translate_to: "Dịch sang",
    spoken_language: "Ngôn ngữ nói",
    caption_language: "Ngôn ngữ phụ đề",
    your_name: "Tên của bạn",
    start: "Bắt đầu",
    stop: "Dừng",
    your_speech: "Lời nói của bạn",
    interpretation_playing: "Bản dịch đang được đọc cho bạn",
    mic: "micrô",
    microphone_level: "Mức âm micrô",
    speak_translation: "đọc to bản dịch",
    how_spoken: "Cách đọc bản dịch",
    simultaneous: "ngay khi đang nói",
    consecutive: "sau mỗi câu",
    voice: "giọng đọc",
    interpretation_level: "Mức âm bản dịch",
    volume: "âm lượng",
    mute: "tắt tiếng",
    in_the_room: "Trong phòng:",
    nobody_yet: "chưa có ai",
    caption_overlay: "lớp phụ đề",
    placeholder: "Nhấn Bắt đầu và nói. Phụ đề sẽ hiện ở đây.",
    original: "{language}: nguyên văn",
    listens_in: "nghe bằng",
    "state.off": "tắt",
    "state.connecting": "đang kết nối…",
    "state.idle": "chờ",
    "state.listening": "đang nghe…",
    "state.translating": "đang dịch…",
    speaking: "đang đọc…",
    "recognition.thinned": "máy chủ bận: ít chữ trực tiếp hơn",
    "recognition.paused": "máy chủ bận: phụ đề sau mỗi câu",
    recognition_busy: "Máy chủ bận: phụ đề của bạn đến sau mỗi câu",
    disconnected: "Mất kết nối: {reason}.",
    could_not_start: "Không bắt đầu được: {message}",
    connection_lost: "Mất kết nối: đang kết nối lại…",
    viewer_connecting: "đang kết nối…",
    viewer_cannot_join: "không vào được phòng: {message}; đang thử lại…",
    viewer_click_to_hear: "nhấn để nghe bản dịch",
    viewer_reconnecting: "đang kết nối lại…",
  },
};

export const locale = uiLocale(new URLSearchParams(window.location.search).get("ui"));

export function t(key, params = {}) {
  const template = TEXTS[locale][key] ?? TEXTS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Put the page's words in the interface's language. */
export function translatePage(root = document) {
  document.documentElement.lang = locale;
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
  for (const element of root.querySelectorAll("[data-i18n-title]")) element.title = t(element.dataset.i18nTitle);
}
