import { negates, REFUSAL_WORDS } from "../../src/domain/negation";
import { foldTurkish } from "../../src/domain/turkish";
import type { IvrChoice } from "./state";

/**
 * What a caller's key press or utterance means at each step. Pure: the routes feed it Twilio's
 * `Digits` and `SpeechResult`.
 *
 * Spoken words (folded with the Turkish rules, so "HAYIR", "hayır" and "hayir" are one word):
 * - main menu: a refusal word ("ret", "reddet", "reddediyorum", "hayır", "iptal", "istemiyorum",
 *   "istemem", "gelmesin", "göndermeyin", "aramayın";
 *   English "refuse", "no", "stop") refuses both calls and SMS, unless the utterance also names one
 *   channel ("aramalar"/"calls" → calls only, "mesaj"/"sms"/"text" → SMS only); a consent word
 *   ("onay", "onaylıyorum", "evet", "kabul"; English "yes", "consent", "accept") consents to both;
 *   "tekrar"/"repeat" repeats, and so does asking for a moment ("bir dakika", "bekle", "wait": "dur"
 *   said with them is "wait", not a refusal); "english"/"ingilizce" switches to English, "türkçe"/"turkish" to
 *   Turkish; a lone digit word ("bir", "iki", … / "one", "two", …) counts as that key. A consent
 *   that names one channel consents to that one ("evet, mesaj gelsin"); a refusal stressed with
 *   "asla", "hiç", "yok" still refuses ("bir daha asla aramayın").
 * - confirmation: "evet"/"onay"/"onaylıyorum"/"yes" confirms; "hayır"/"vazgeç"/"iptal"/"no" cancels.
 * - a negation ("değil", "yok", a "-mıyor" verb, "not", "don't"…) never reads as consent: in the menu
 *   the utterance is not understood (asked again), at the confirmation a negated yes cancels. Consent must be
 *   explicit; "onay vermiyorum" is not one. The refusal words that are negations themselves
 *   ("istemiyorum") still refuse, and so does a negated "want" or way of reaching the caller ("I don't
 *   want calls", "do not text me"); a negated refusal ("don't stop") is not understood.
 */

export type Input = { digits: string; speech: string };

/** `lang`: the language named (spoken); a key press names none and switches to the other one. */
export type MenuInput =
  | { kind: "choice"; choice: IvrChoice }
  | { kind: "repeat" }
  | { kind: "language"; lang?: "tr" | "en" }
  | { kind: "empty" }
  | { kind: "invalid" };

export type ConfirmInput = { kind: "yes" } | { kind: "no" } | { kind: "empty" } | { kind: "invalid" };

const DIGIT_WORDS: Record<string, string> = {
  sifir: "0", bir: "1", iki: "2", uc: "3", dort: "4", bes: "5", alti: "6", yedi: "7", sekiz: "8", dokuz: "9",
  zero: "0", one: "1", two: "2", three: "3", four: "4", five: "5", six: "6", seven: "7", eight: "8", nine: "9",
};

const REFUSE = REFUSAL_WORDS;
const CONSENT = new Set(["onay", "onayliyorum", "onayla", "evet", "kabul", "yes", "consent", "accept", "agree"]);
const REPEAT = new Set(["tekrar", "tekrarla", "repeat", "again"]);
const LANGUAGE: Record<string, "tr" | "en"> = { english: "en", ingilizce: "en", turkce: "tr", turkish: "tr" };
const CANCEL = new Set(["hayir", "vazgec", "vazgectim", "iptal", "no", "cancel", "yanlis", "wrong"]);
/** What a negation makes a refusal of (English: Turkish says it with a refusal word, "istemiyorum", "aramayın"). */
const UNWANTED = new Set(["want", "wanna", "call", "calls", "calling", "text", "texts", "texting", "send", "sending", "message", "messages", "contact", "rahatsiz", "disturb"]);
/** Negations that stress a refusal rather than negate it (Turkish negative concord: "bir daha asla aramayın", "hiç istemiyorum", "yok, istemiyorum"). */
const EMPHATIC = new Set(["asla", "hic", "yok"]);
/** Refusal words that are a bare no, said before what is not wanted ("No, I don't want calls"). */
const BARE_NO = new Set(["no", "hayir"]);
/** Asking for a moment ("bir dakika", "bir saniye", "bekle", "wait"): "dur" with them is "wait", not "stop". */
const WAIT = new Set(["dakika", "saniye", "bekle", "bekleyin", "wait", "moment", "hold"]);
/** Refusal words that also mean "wait" ("dur bir dakika"). */
const HALT = new Set(["dur"]);
const CONFIRM = new Set(["evet", "onay", "onayla", "onayliyorum", "tamam", "yes", "confirm", "ok", "okay"]);

const tokens = (folded: string) => folded.replace(/[^a-z0-9 ]/g, " ").split(/ +/).filter(Boolean);
// Apostrophes joined before folding ("don't" → "dont", a negation; "no'lu" → "nolu", not "no"):
// the words keywords are looked for in.
const words = (speech: string): string[] => tokens(foldTurkish(speech.replace(/['’‘ʼ]/g, "")));
// As the SMS grammar and brand names fold them, a Turkish suffix after an apostrophe dropped
// ("SMS'leri" → "sms", "McDonald's" → "mcdonald"): the words channel and brand names are looked for in.
const nameWords = (speech: string): string[] => tokens(foldTurkish(speech));

/** A word that negates what is said ("değil", "not"…, a negative Turkish verb: "vermiyorum", "onaylamadım"); refusal words excepted. */
function negated(w: string[]): boolean {
  return negationsOf(w).length > 0;
}

/** The words of `w` that negate, refusal words excepted. */
const negationsOf = (w: string[]) => w.filter((x) => !REFUSE.has(x) && negates(x));

/** A refusal only stressed by its negations ("hiç istemiyorum", "asla aramayın"), not negated by them. */
const stressedOnly = (refusals: string[], negations: string[]) => refusals.length > 0 && negations.every((x) => EMPHATIC.has(x));

/** A word that grants ("onaylıyorum", "kabul", "izin", "gelsin", "olabilir"; a bare yes, "evet", is no grant of its own). */
const consents = (x: string) => x.startsWith("onay") || x.startsWith("kabul") || GRANTS.has(x);
const GRANTS = new Set(["izin", "gelsin", "gelebilir", "olabilir", "olur", "consent", "accept", "agree", "allow"]);

/** The channels an utterance names ("aramalar", "aranmak", "calls"; "mesaj", "SMS'leri", "text"). */
function channelsNamed(speech: string, w: string[]): { calls: boolean; sms: boolean } {
  const named = [...w, ...nameWords(speech)];
  return {
    calls: named.some((x) => x.startsWith("arama") || x.startsWith("aran") || x.startsWith("call")),
    sms: named.some((x) => x.startsWith("mesaj") || x === "sms" || x.startsWith("text") || x.startsWith("message")),
  };
}

/** The language an utterance names, if any. */
function languageOf(w: string[]): "tr" | "en" | undefined {
  for (const x of w) if (LANGUAGE[x]) return LANGUAGE[x];
  return undefined;
}

/** The key pressed, or a lone spoken digit word. */
function keyOf(input: Input): string {
  if (input.digits) return input.digits;
  const w = words(input.speech);
  return w.length === 1 ? (DIGIT_WORDS[w[0]!] ?? (/^\d$/.test(w[0]!) ? w[0]! : "")) : "";
}

const isEmpty = (input: Input) => input.digits.trim() === "" && input.speech.trim() === "";

export function parseMenu(input: Input): MenuInput {
  if (isEmpty(input)) return { kind: "empty" };
  const key = keyOf(input);
  if (key) {
    switch (key) {
      case "1": return { kind: "choice", choice: "refuse-calls" };
      case "2": return { kind: "choice", choice: "refuse-sms" };
      case "3": return { kind: "choice", choice: "refuse-both" };
      case "4": return { kind: "choice", choice: "consent-both" };
      case "0": return { kind: "repeat" };
      case "9": return { kind: "language" };
      default: return { kind: "invalid" };
    }
  }
  const w = words(input.speech);
  const has = (set: ReadonlySet<string>) => w.some((x) => set.has(x));
  // A negation never consents; with "want" or a way of reaching the caller it refuses ("I don't want
  // calls", "do not text me", "rahatsız etmeyin"): the confirmation step reads it back. Negating a
  // refusal ("don't stop", "I do not refuse") is not understood; stressing one is no negation of it
  // ("asla aramayın", "hiç istemiyorum"), nor is a bare no before what is not wanted ("No, I don't want calls").
  const negations = negationsOf(w);
  const refusals = w.filter((x) => REFUSE.has(x));
  // "Bir dakika dur", "bekle": the caller wants a moment, and hears the menu again.
  if (has(WAIT) && refusals.every((x) => HALT.has(x))) return { kind: "repeat" };
  const stressed = stressedOnly(refusals, negations);
  const bareNo = refusals.length > 0 && refusals.every((x) => BARE_NO.has(x)) && has(UNWANTED);
  const refusing = refusals.length > 0 || (negations.length > 0 && has(UNWANTED));
  if (negations.length > 0 && !stressed && !bareNo && (refusals.length > 0 || !refusing)) return { kind: "invalid" };
  const { calls, sms } = channelsNamed(input.speech, w);
  // A refusal of one channel said with a consent to the other ("aramalara izin veriyorum ama SMS
  // (asla) istemiyorum", "I agree to calls but don't text me"): which channel is which is not read,
  // and refusing both refused what was wanted. Naming no channel or one, it is a refusal ("onayımı
  // iptal etmek istiyorum", "mesaj gelsin istemiyorum").
  if (refusing && calls && sms && w.some(consents)) return { kind: "invalid" };
  if (refusing) {
    if (calls && !sms) return { kind: "choice", choice: "refuse-calls" };
    if (sms && !calls) return { kind: "choice", choice: "refuse-sms" };
    return { kind: "choice", choice: "refuse-both" };
  }
  // A consent that names one channel is a consent to that one ("evet, mesaj gelsin": not calls too).
  if (has(CONSENT)) return { kind: "choice", choice: calls && !sms ? "consent-calls" : sms && !calls ? "consent-sms" : "consent-both" };
  if (has(REPEAT)) return { kind: "repeat" };
  const lang = languageOf(w);
  if (lang) return { kind: "language", lang };
  return { kind: "invalid" };
}

/**
 * `confirming`: what the caller is asked to confirm. Confirming a consent, a refusing word cancels
 * too ("evet istemiyorum", "tamam ama aramayın": not an explicit consent); confirming a refusal it
 * agrees ("evet, istemiyorum").
 */
export function parseConfirm(input: Input, confirming: "refusal" | "consent"): ConfirmInput {
  if (isEmpty(input)) return { kind: "empty" };
  const key = keyOf(input);
  if (key === "1") return { kind: "yes" };
  if (key === "2") return { kind: "no" };
  if (key) return { kind: "invalid" };
  const w = words(input.speech);
  const yes = w.some((x) => CONFIRM.has(x) || x.startsWith("onay") || x.startsWith("kabul"));
  if (confirming === "refusal") {
    // Confirming a refusal, a refusal said again agrees ("reddediyorum", "hiç istemiyorum", "evet,
    // iptal edin"); "iptal" alone, or any other cancel word, cancels ("hayır", "vazgeç").
    const refusals = w.filter((x) => REFUSE.has(x) && !CANCEL.has(x));
    const cancels = w.filter((x) => CANCEL.has(x));
    const negations = negationsOf(w);
    const stressed = stressedOnly(refusals, negations);
    if (cancels.some((x) => x !== "iptal")) return { kind: "no" };
    // A negated want or way of reaching the caller agrees as in the menu ("evet, rahatsız etmeyin", "yes, don't call me").
    if (negations.length > 0 && !stressed && !w.some((x) => UNWANTED.has(x))) return yes ? { kind: "no" } : { kind: "invalid" };
    if (cancels.length > 0) return yes || refusals.length > 0 ? { kind: "yes" } : { kind: "no" };
    return yes || refusals.length > 0 || negations.length > 0 ? { kind: "yes" } : { kind: "invalid" };
  }
  // "hayır" wins over "evet" in "hayır, evet değil": a cancel is the safe reading. So is a negated
  // yes ("tamam değil", "onaylamıyorum"); other negations ("bilmiyorum") are asked again.
  if (w.some((x) => CANCEL.has(x))) return { kind: "no" };
  if (negated(w) || w.some((x) => REFUSE.has(x))) return yes ? { kind: "no" } : { kind: "invalid" };
  if (yes) return { kind: "yes" };
  return { kind: "invalid" };
}

export interface BrandOption {
  id: number;
  /** Folded names the brand answers to (short names, code, İYS brand number). */
  names: string[];
  brandCode: string | null;
  spokenName: string;
}

export type BrandInput = { kind: "brand"; id: number } | { kind: "language"; lang?: "tr" | "en" } | { kind: "empty" } | { kind: "invalid" };

/** A list position (1…n), the brand's İYS number keyed in, or its name spoken. 9 switches language when the list is shorter. */
export function parseBrand(input: Input, options: BrandOption[]): BrandInput {
  if (isEmpty(input)) return { kind: "empty" };
  const digits = input.digits.replace(/[#*]/g, "");
  // Only * or #: a key press that names nothing (not an utterance to read).
  if (input.digits && !digits) return { kind: "invalid" };
  if (digits) {
    const byCode = options.find((o) => o.brandCode === digits);
    if (byCode) return { kind: "brand", id: byCode.id };
    const n = Number(digits);
    // Two digits for a list of ten or more (keyed, then # or the gather's timeout).
    if (/^\d{1,2}$/.test(digits) && n >= 1 && n <= options.length) return { kind: "brand", id: options[n - 1]!.id };
    if (digits === "9" && options.length < 9) return { kind: "language" };
    return { kind: "invalid" };
  }
  const folded = ` ${nameWords(input.speech).join(" ")} `;
  const spokenKey = keyOf({ digits: "", speech: input.speech });
  if (spokenKey) return parseBrand({ digits: spokenKey, speech: "" }, options);
  const hits = options.filter((o) => [...o.names, foldTurkish(o.spokenName)].some((name) => name && folded.includes(` ${name} `)));
  if (hits.length === 1) return { kind: "brand", id: hits[0]!.id };
  const lang = languageOf(words(input.speech));
  if (lang) return { kind: "language", lang };
  return { kind: "invalid" };
}
