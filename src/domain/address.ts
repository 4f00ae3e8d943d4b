import { parsePhoneNumberFromString } from "libphonenumber-js/max";

/** mobile: may take SMS; fixed: calls only (fixed lines, and Turkish numbers that are not mobiles: 0850, 444, 0800…); other: a foreign number of unknown kind. */
export type PhoneKind = "mobile" | "fixed" | "other";

export type AddressError = { ok: false; code: "H120" | "H121" | "H122" | "H160"; message: string };

export type AddressResult =
  | { ok: true; kind: "phone"; value: string; phoneKind: PhoneKind }
  | { ok: true; kind: "email"; value: string }
  | AddressError;

export type PhoneResult = Extract<AddressResult, { kind: "phone" }> | AddressError;
export type EmailResult = Extract<AddressResult, { kind: "email" }> | AddressError;

export const addressMessages = {
  H120: "Alıcı (recipient) kabul edilemedi. Geçerli bir eposta adresi giriniz.",
  H121: "Alıcı (recipient) için E164 uluslararası([+][country code][area code][local phone number]) formatına uygun bir telefon numarası girilmelidir. (örn. +905992000000)",
  H122: "Alıcı (recipient) için E164 uluslararası ([+][country code][area code][local phone number]) formatına uygun bir telefon numarası (örn. +905992000000) ya da geçerli bir e-posta adresi girilmelidir.",
  // The write's text (İYS answers H166 with its own wording to a status query only).
  H160: "Alıcı için telefon numaraları 15 karakterden uzun olmamalıdır.",
} as const;

const fail = (code: AddressError["code"]): AddressError => ({ ok: false, code, message: addressMessages[code] });

/**
 * Canonical Turkish mobiles in the main operator ranges (the second alternative of the TR MOBILE
 * pattern in libphonenumber's metadata); anything else goes through the library. address.test.ts
 * checks that the library agrees on every prefix this matches.
 */
const CANONICAL_TR_MOBILE = /^\+905(?:[03-5]\d|1[06]|24|6[24]|7[245]|9[46])\d{7}$/;

// Separators people type or paste between digits: spaces of every kind, hyphens/dashes, dots, brackets, slashes, zero-width marks.
const PHONE_SEPARATORS = /[\s\u00AD\u200B-\u200D\u2060\uFEFF\-\u2010-\u2015.()/]/g;
const PHONE_CANDIDATE = /^\+?\d+$/;
/** İYS takes a number of at most 15 characters, its + included (H160), as it is written to İYS. */
const PHONE_MAX_CHARS = 15;

function phoneKindOf(type: string | undefined, value: string): PhoneKind {
  if (type === "MOBILE") return "mobile";
  if (type === "FIXED_LINE") return "fixed";
  // A Turkish number that is not a mobile (0850 VOIP, 444 UAN, 0800 toll-free, 0900 premium, 0512
  // pager) cannot take SMS either (domain: MESAJ needs a mobile); it may be called, like a fixed line.
  if (value.startsWith("+90")) return "fixed";
  // FIXED_LINE_OR_MOBILE (e.g. North America) is not known to be a fixed line, so it must not be refused MESAJ as one.
  return "other";
}

/** Any phone spelling → E.164 (`+905XXXXXXXXX` for Turkish mobiles); bare national numbers are read as Turkish. */
export function normalizePhone(input: string): PhoneResult {
  return normalize(input, true);
}

/** normalizePhone without its fast paths: every spelling through libphonenumber (what the fast paths are tested against). */
export function normalizePhoneByLibrary(input: string): PhoneResult {
  return normalize(input, false);
}

/**
 * A Turkish number written with the trunk 0 after the country code (+9005…, 009005…, 9005…): the
 * hub reads it as +905…, but İYS keeps what it was given as another, invisible record (not shown to
 * citizens; operators ask for +905… and find nothing).
 */
export function hasTrunkZero(input: string): boolean {
  return withCountryCode(input.replace(PHONE_SEPARATORS, "")).startsWith("+900");
}

/** Separator-free digits with the international forms made `+…` (00…, and 90… / 900… of a Turkish number's length). */
function withCountryCode(s: string): string {
  if (s.startsWith("00")) return `+${s.slice(2)}`;
  if (!s.startsWith("+") && ((s.length === 12 && s.startsWith("90")) || (s.length === 13 && s.startsWith("900")))) return `+${s}`;
  return s;
}

const trMobile = (value: string): PhoneResult => ({ ok: true, kind: "phone", value, phoneKind: "mobile" });

function normalize(input: string, fast: boolean): PhoneResult {
  if (fast && CANONICAL_TR_MOBILE.test(input)) return trMobile(input);

  let s = input.replace(PHONE_SEPARATORS, "");
  if (!PHONE_CANDIDATE.test(s)) return fail("H121");
  s = withCountryCode(s);
  // "+90 0532…" keeps the national trunk 0; İYS would store it as a separate, invisible address.
  if (s.startsWith("+900")) s = `+90${s.slice(4)}`;

  if (s.length > PHONE_MAX_CHARS) return fail("H160");

  if (fast) {
    // The national spellings of the same mobiles (05XX…, 5XX…, once separators are gone), which
    // libphonenumber reads as +90 with the trunk 0 dropped; address.test.ts compares them all.
    const e164 = s.startsWith("+") ? s : s.length === 11 && s.startsWith("05") ? `+90${s.slice(1)}` : s.length === 10 ? `+90${s}` : null;
    if (e164 && CANONICAL_TR_MOBILE.test(e164)) return trMobile(e164);
  }
  const parsed = parsePhoneNumberFromString(s, "TR");
  if (!parsed || !parsed.isValid()) return fail("H121");
  const value = parsed.number;
  if (value.startsWith("+900")) return fail("H121");
  if (value.length > PHONE_MAX_CHARS) return fail("H160");
  return { ok: true, kind: "phone", value, phoneKind: phoneKindOf(parsed.getType(), value) };
}

const EMAIL_MIN = 6;
const EMAIL_MAX = 265;
const PRINTABLE_ASCII = /^[\x21-\x7E]+$/;
// İYS's rules for e-mail addresses (the specification's İzin Türü section): no special characters
// ({[(!'^%&/()=?,”½²³°¶)}] and the like), but + before the @ for a provider's labels. Letters,
// digits, dot, underscore and hyphen, as in every address İYS takes: anything else it answers H120,
// so the hub refuses it too (a check must not allow a consent İYS will never hold).
const LOCAL_PART = /^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*$/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const TOP_LEVEL_LABEL = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

/**
 * Trimmed and lower-cased whole; `+tags` and dots are kept because they name distinct mailboxes.
 * İYS's subset of a dot-atom, not RFC 5322: no special characters but `+ _ -` before the @ (RFC 5322
 * allows apostrophes, braces, `!#$%&=?^~` and more there; İYS does not), no quoted local parts,
 * comments or IP literals.
 */
export function normalizeEmail(input: string): EmailResult {
  const trimmed = input.trim();
  // ASCII only: Turkish letters are refused by İYS, and toLowerCase is locale-independent on ASCII.
  if (!PRINTABLE_ASCII.test(trimmed)) return fail("H120");
  if (trimmed.length < EMAIL_MIN || trimmed.length > EMAIL_MAX) return fail("H120");
  const value = trimmed.toLowerCase();
  const at = value.indexOf("@");
  if (at <= 0 || at !== value.lastIndexOf("@")) return fail("H120");
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!LOCAL_PART.test(local) || domain.length > 253) return fail("H120");
  const labels = domain.split(".");
  if (labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l))) return fail("H120");
  const top = labels[labels.length - 1]!;
  if (!TOP_LEVEL_LABEL.test(top)) return fail("H120");
  // İYS's smallest address is {1 karakter}@{2 karakter}.{2 karakter} (rule 4): a@x.com is refused there.
  if (domain.length - top.length - 1 < 2) return fail("H120");
  return { ok: true, kind: "email", value };
}

const PHONE_LIKE = /^[\s\u00AD\u200B-\u200D\u2060\uFEFF\-\u2010-\u2015.()/+\d]+$/;

/** An e-mail if it contains `@`, a phone if it is made of phone characters, otherwise H122. */
export function normalizeRecipient(input: string): AddressResult {
  if (input.includes("@")) return normalizeEmail(input);
  if (PHONE_LIKE.test(input) && /\d/.test(input)) return normalizePhone(input);
  return fail("H122");
}

// `@` or its percent-encoding (an address quoted from a URL).
const EMAIL_IN_TEXT = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
// A date or time (left as it is, tried first), or a run of at least 7 digits with the spaces,
// dashes, dots and brackets numbers are written with.
const PHONE_IN_TEXT = /\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?|\d{2}:\d{2}:\d{2}|\+?\d(?:[\d\s().-]{5,}\d)/g;

/**
 * Free text (a provider's or an SMTP server's error message, a raw path) with every e-mail address
 * and phone-like number masked as maskAddress does, for what may be logged, stored as an error or
 * shown: providers quote the address they refused ("The 'To' number +905321234567 is not valid",
 * "450 4.2.0 <a@b.com>: Recipient address rejected").
 */
export function redactAddresses(text: string): string {
  return text
    .replace(EMAIL_IN_TEXT, (m) => maskAddress(m.toLowerCase().replace(/%40/g, "@")))
    .replace(PHONE_IN_TEXT, (m) => (!/[:T]|^\d{4}-\d{2}-\d{2}$/.test(m) && (m.match(/\d/g)?.length ?? 0) >= 7 ? maskAddress(m.replace(/[^\d+]/g, "")) : m));
}

/**
 * For logs: `+90532*****67`, `a***@example.com`. A number keeps its last two digits and what comes
 * before its last seven (country and operator code, however it is written: `0532*****67`,
 * `532*****67`), never more than six characters of it: five digits of a subscriber's number are
 * always hidden.
 */
export function maskAddress(value: string): string {
  const at = value.lastIndexOf("@");
  if (at >= 0) return `${value.slice(0, Math.min(at, 1))}***@${value.slice(at + 1)}`;
  if (value.length < 9) return "*".repeat(value.length);
  const keep = Math.min(6, value.length - 7);
  return `${value.slice(0, keep)}${"*".repeat(value.length - keep - 2)}${value.slice(-2)}`;
}
