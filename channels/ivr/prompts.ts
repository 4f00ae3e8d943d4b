import twilio from "twilio";
import type { IvrChoice, IvrStep } from "./state";
import { choiceActions } from "./interpret";

const { VoiceResponse } = twilio.twiml;
type Lang = "tr" | "en";

/** Real Amazon Polly voices Twilio offers for each language. */
export const VOICES = {
  tr: { language: "tr-TR", voice: "Polly.Filiz" },
  en: { language: "en-US", voice: "Polly.Joanna" },
} as const;

const HINTS: Record<Lang, Partial<Record<IvrStep, string>>> = {
  tr: { menu: "ret, reddet, onay, evet, hayır, tekrar, arama, mesaj, İngilizce", confirm: "evet, onay, hayır, vazgeç" },
  en: { menu: "refuse, no, yes, consent, repeat, calls, text messages, Turkish", confirm: "yes, confirm, no, cancel" },
};

/** What the caller hears for each choice, before (`will`) and after (`done`) it is recorded. */
const CHOICE_TEXT: Record<Lang, Record<IvrChoice, { will: string; done: string }>> = {
  tr: {
    "refuse-calls": { will: "ticari aramalar reddedilecek", done: "ticari aramalar reddedildi" },
    "refuse-sms": { will: "ticari SMS mesajları reddedilecek", done: "ticari SMS mesajları reddedildi" },
    "refuse-both": { will: "ticari aramalar ve SMS mesajları reddedilecek", done: "ticari aramalar ve SMS mesajları reddedildi" },
    "consent-both": { will: "ticari aramalara ve SMS mesajlarına izin verilecek", done: "ticari aramalara ve SMS mesajlarına izin verildi" },
    "consent-calls": { will: "yalnızca ticari aramalara izin verilecek", done: "ticari aramalara izin verildi" },
    "consent-sms": { will: "yalnızca ticari SMS mesajlarına izin verilecek", done: "ticari SMS mesajlarına izin verildi" },
  },
  en: {
    "refuse-calls": { will: "commercial calls will be refused", done: "commercial calls are refused" },
    "refuse-sms": { will: "commercial text messages will be refused", done: "commercial text messages are refused" },
    "refuse-both": { will: "commercial calls and text messages will be refused", done: "commercial calls and text messages are refused" },
    "consent-both": { will: "you will consent to commercial calls and text messages", done: "you have consented to commercial calls and text messages" },
    "consent-calls": { will: "you will consent to commercial calls only", done: "you have consented to commercial calls" },
    "consent-sms": { will: "you will consent to commercial text messages only", done: "you have consented to commercial text messages" },
  },
};

/** A choice of both channels of which only one took effect (a fixed line: no SMS). */
const ONE_CHANNEL_CONSENT: Record<Lang, Record<"ARAMA" | "MESAJ", string>> = {
  tr: { ARAMA: "yalnızca ticari aramalara izin verildi", MESAJ: "yalnızca ticari SMS mesajlarına izin verildi" },
  en: { ARAMA: "you have consented to commercial calls only", MESAJ: "you have consented to commercial text messages only" },
};

function doneText(lang: Lang, choice: IvrChoice, types?: readonly ("ARAMA" | "MESAJ")[]): string {
  const chosen = choiceActions(choice);
  const only = types?.length === 1 && chosen.types.length > 1 ? types[0]! : null;
  if (!only) return CHOICE_TEXT[lang][choice].done;
  if (chosen.status === "RET") return CHOICE_TEXT[lang][only === "ARAMA" ? "refuse-calls" : "refuse-sms"].done;
  return ONE_CHANNEL_CONSENT[lang][only];
}

export type Retry = "none" | "empty" | "invalid" | "consent-withheld";
export type Outcome = "recorded" | "unchanged" | "rejected" | "pending";

export interface PromptContext {
  /** PUBLIC_BASE_URL; action URLs are absolute under it. */
  baseUrl: string;
  timeoutSeconds: number;
}

const RETRY_TEXT: Record<Lang, Record<Exclude<Retry, "none">, string>> = {
  tr: {
    empty: "Sizi duyamadık.",
    invalid: "Geçersiz seçim.",
    "consent-withheld": "Numaranız görünmediği için izin verilemez; yalnızca ret talebi alınabilir.",
  },
  en: {
    empty: "We did not hear you.",
    invalid: "That is not a valid choice.",
    "consent-withheld": "Your number is withheld, so consent cannot be given; only a refusal can be taken.",
  },
};

function actionUrl(ctx: PromptContext, step: IvrStep, token: string): string {
  return `${ctx.baseUrl}/voice/twilio/${step}?s=${encodeURIComponent(token)}`;
}

function reply(): InstanceType<typeof VoiceResponse> {
  return new VoiceResponse();
}

type Twiml = InstanceType<typeof VoiceResponse>;
type Gather = ReturnType<Twiml["gather"]>;

function say(into: Twiml | Gather, lang: Lang, text: string): void {
  into.say(VOICES[lang], text);
}

function gather(r: Twiml, ctx: PromptContext, lang: Lang, step: IvrStep, token: string, opts: { numDigits?: number; hints?: string; dtmfOnly?: boolean }): Gather {
  return r.gather({
    input: opts.dtmfOnly ? ["dtmf"] : ["dtmf", "speech"],
    language: VOICES[lang].language,
    action: actionUrl(ctx, step, token),
    method: "POST",
    timeout: ctx.timeoutSeconds,
    ...(opts.dtmfOnly ? {} : { speechTimeout: "auto" }),
    ...(opts.numDigits ? { numDigits: opts.numDigits } : { finishOnKey: "#" }),
    ...(opts.hints ? { hints: opts.hints } : {}),
    actionOnEmptyResult: true,
  });
}

function retryPrefix(g: Gather, lang: Lang, retry: Retry) {
  if (retry !== "none") say(g, lang, RETRY_TEXT[lang][retry]);
}

export function brandMenu(ctx: PromptContext, lang: Lang, token: string, brands: { spokenName: string }[], retry: Retry): string {
  const r = reply();
  const hints = brands.map((b) => b.spokenName).join(", ");
  const g = gather(r, ctx, lang, "brand", token, { hints });
  retryPrefix(g, lang, retry);
  if (lang === "tr") {
    say(g, lang, "Ticari ileti izin hattına hoş geldiniz. Hangi marka için arıyorsunuz?");
    say(g, lang, `${brands.map((b, i) => `${b.spokenName} için ${i + 1}`).join(", ")} tuşlayın${brands.length >= 10 ? ", iki haneli numaralardan sonra kare tuşuna basın" : ""}. Markanın İYS numarasını tuşlayıp kare tuşuna da basabilir ya da marka adını söyleyebilirsiniz.`);
    if (brands.length < 9) say(g, "en", "For English, press 9.");
  } else {
    say(g, lang, "Welcome to the commercial message consent line. Which brand are you calling about?");
    say(g, lang, `${brands.map((b, i) => `For ${b.spokenName}, press ${i + 1}`).join(". ")}${brands.length >= 10 ? ". After a two-digit number, press the hash key" : ""}. You may also key in the brand's IYS number followed by the hash key, or say the brand's name.`);
    if (brands.length < 9) say(g, "tr", "Türkçe için 9'a basın.");
  }
  return r.toString();
}

export function mainMenu(ctx: PromptContext, lang: Lang, token: string, brand: string, opts: { greet: boolean; allowConsent: boolean; retry: Retry }): string {
  const r = reply();
  const g = gather(r, ctx, lang, "menu", token, { numDigits: 1, hints: HINTS[lang].menu });
  retryPrefix(g, lang, opts.retry);
  if (lang === "tr") {
    if (opts.greet) say(g, lang, `${brand} ticari ileti izin hattına hoş geldiniz.`);
    // After a 4 from a withheld number the retry has just said so.
    if (!opts.allowConsent && opts.retry !== "consent-withheld") say(g, lang, "Numaranız görünmediği için yalnızca ret talebi alınabilir.");
    const items = [
      "Ticari aramaları reddetmek için 1",
      "SMS mesajlarını reddetmek için 2",
      "ikisini birden reddetmek için 3",
      ...(opts.allowConsent ? ["aramalara ve SMS mesajlarına izin vermek için 4"] : []),
      "menüyü tekrar dinlemek için 0",
    ];
    say(g, lang, `${items.join(", ")} tuşlayın ya da söyleyin.`);
    say(g, "en", "For English, press 9.");
  } else {
    if (opts.greet) say(g, lang, `Welcome to the ${brand} commercial message consent line.`);
    if (!opts.allowConsent && opts.retry !== "consent-withheld") say(g, lang, "Your number is withheld, so only a refusal can be taken.");
    const items = [
      "To refuse commercial calls, press 1",
      "to refuse text messages, press 2",
      "to refuse both, press 3",
      ...(opts.allowConsent ? ["to consent to calls and text messages, press 4"] : []),
      "to hear this menu again, press 0",
    ];
    say(g, lang, `${items.join(", ")}.`);
    say(g, "tr", "Türkçe için 9'a basın.");
  }
  return r.toString();
}

export function numberPrompt(ctx: PromptContext, lang: Lang, token: string, retry: Retry): string {
  const r = reply();
  const g = gather(r, ctx, lang, "number", token, { dtmfOnly: true });
  retryPrefix(g, lang, retry);
  say(
    g,
    lang,
    lang === "tr"
      ? "Numaranız görünmüyor. Ret talebinin kaydedileceği telefon numarasını alan koduyla tuşlayıp kare tuşuna basın."
      : "Your number is withheld. Key in the phone number the refusal is for, with its area code, followed by the hash key.",
  );
  return r.toString();
}

/** Digits read one by one, so a keyed-in number is heard back as keyed. */
function spokenDigits(e164: string): string {
  return `0${e164.replace(/^\+90/, "")}`.split("").join(" ");
}

export function confirmPrompt(ctx: PromptContext, lang: Lang, token: string, brand: string, choice: IvrChoice, keyed: string | undefined, retry: Retry): string {
  const r = reply();
  const g = gather(r, ctx, lang, "confirm", token, { numDigits: 1, hints: HINTS[lang].confirm });
  retryPrefix(g, lang, retry);
  const what = CHOICE_TEXT[lang][choice].will;
  if (lang === "tr") {
    say(g, lang, `${brand} için ${keyed ? `${spokenDigits(keyed)} numarasına ` : ""}${what}. Onaylamak için 1, vazgeçmek için 2 tuşlayın.`);
  } else {
    say(g, lang, `For ${brand}${keyed ? `, for the number ${spokenDigits(keyed)}` : ""}, ${what}. To confirm, press 1. To cancel, press 2.`);
  }
  return r.toString();
}

const GOODBYE: Record<Lang, string> = { tr: "İyi günler dileriz.", en: "Goodbye." };

function ending(lang: Lang, text: string): string {
  const r = reply();
  say(r, lang, `${text} ${GOODBYE[lang]}`);
  r.hangup();
  return r.toString();
}

/** `types`: the channels that took effect, when not all of the choice's did. */
export function finalPrompt(lang: Lang, brand: string, choice: IvrChoice, outcome: Outcome, types?: readonly ("ARAMA" | "MESAJ")[]): string {
  const done = doneText(lang, choice, types);
  if (lang === "tr") {
    const text = {
      recorded: `Talebiniz kaydedildi: ${brand} için ${done}.`,
      unchanged: `Talebiniz kaydedildi: ${brand} için bu tercih zaten geçerliydi.`,
      rejected: "Talebiniz işlenemedi. Lütfen müşteri hizmetlerimizle görüşün.",
      pending: "Talebiniz alındı, en kısa sürede uygulanacak.",
    }[outcome];
    return ending(lang, text);
  }
  const text = {
    recorded: `Your request has been recorded: for ${brand}, ${done}.`,
    unchanged: `Your request has been recorded: for ${brand}, this was already in effect.`,
    rejected: "Your request could not be processed. Please contact customer services.",
    pending: "Your request has been received and will be applied shortly.",
  }[outcome];
  return ending(lang, text);
}

export function cancelledPrompt(lang: Lang): string {
  return ending(lang, lang === "tr" ? "İşleminiz iptal edildi, hiçbir değişiklik yapılmadı." : "Cancelled; nothing was changed.");
}

export function tooManyAttemptsPrompt(lang: Lang): string {
  return ending(lang, lang === "tr" ? "Seçiminizi alamadık. Dilediğiniz zaman yeniden arayabilirsiniz." : "We could not get your choice. You are welcome to call again.");
}

/** Turkish, then English: no language was chosen yet. */
export function unavailablePrompt(): string {
  const r = reply();
  say(r, "tr", `Bu numara şu anda hizmet vermiyor. ${GOODBYE.tr}`);
  say(r, "en", `This number is not in service at the moment. ${GOODBYE.en}`);
  r.hangup();
  return r.toString();
}
