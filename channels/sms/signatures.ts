import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import twilio from "twilio";

/**
 * Twilio's X-Twilio-Signature: HMAC-SHA1 over the full URL Twilio called (our PUBLIC_BASE_URL +
 * path + query) followed by every POST parameter sorted by name, with the auth token. The common
 * case is checked with one HMAC over the URL as given; only a mismatch goes to the `twilio`
 * package's own validation, which also tries the URL's port and encoding variants (with and
 * without :443/:80, normalised, legacy query string) — so what it accepts is still accepted.
 */
export function twilioSignatureValid(authToken: string, signature: string | undefined, url: string, params: Record<string, string | string[]>): boolean {
  if (!signature) return false;
  if (signatureMatches(signature, twilioSignature(authToken, url, params))) return true;
  return twilio.validateRequest(authToken, signature, url, params as Record<string, string>);
}

/** The signature as `twilio.getExpectedTwilioSignature` computes it (repeated names: distinct values, sorted). */
function twilioSignature(authToken: string, url: string, params: Record<string, string | string[]>): string {
  let data = url;
  for (const key of Object.keys(params).sort()) {
    const value = params[key]!;
    if (Array.isArray(value)) for (const v of [...new Set(value)].sort()) data += key + v;
    else data += key + value;
  }
  return createHmac("sha1", hmacKey(authToken)).update(data, "utf8").digest("base64");
}

const hmacKeys = new Map<string, KeyObject>();
/** The token as a KeyObject, made once: createHmac with a string key builds one on every call. */
function hmacKey(token: string): KeyObject {
  let key = hmacKeys.get(token);
  if (!key) {
    if (hmacKeys.size > 16) hmacKeys.clear();
    hmacKeys.set(token, (key = createSecretKey(Buffer.from(token, "utf8"))));
  }
  return key;
}

function signatureMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const vonageSignatureMethods = ["md5hash", "md5", "sha1", "sha256", "sha512"] as const;
export type VonageSignatureMethod = (typeof vonageSignatureMethods)[number];

/**
 * Vonage's signed webhooks (`sig`): every other parameter sorted by name as `&key=value` with `&`
 * and `=` in values replaced by `_`; `md5hash` appends the secret and takes MD5, the others are an
 * HMAC with the secret. Compared in constant time.
 */
export function vonageSignature(params: Record<string, string>, secret: string, method: VonageSignatureMethod): string {
  let signed = "";
  for (const key of Object.keys(params).sort()) {
    if (key === "sig") continue;
    signed += `&${key}=${params[key]!.replace(/[&=]/g, "_")}`;
  }
  if (method === "md5hash") return createHash("md5").update(signed + secret).digest("hex");
  return createHmac(method, secret).update(signed).digest("hex");
}

export function vonageSignatureValid(params: Record<string, string>, secret: string, method: VonageSignatureMethod): boolean {
  const given = params.sig;
  const hex = vonageSignature(params, secret, method);
  // The exact length first: Buffer.from(…, "hex") would drop a trailing odd digit.
  if (!given || given.length !== hex.length || !/^[0-9a-fA-F]+$/.test(given)) return false;
  const expected = Buffer.from(hex, "hex");
  const actual = Buffer.from(given, "hex");
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
