import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import twilio from "twilio";

/**
 * Twilio's X-Twilio-Signature: HMAC-SHA1 over the full URL Twilio called (our PUBLIC_BASE_URL +
 * path + query) followed by every POST parameter sorted by name, with the auth token. The `twilio`
 * package's own validation handles its port variants (with and without :443/:80).
 */
export function twilioSignatureValid(authToken: string, signature: string | undefined, url: string, params: Record<string, string | string[]>): boolean {
  if (!signature) return false;
  return twilio.validateRequest(authToken, signature, url, params as Record<string, string>);
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
  if (!given || !/^[0-9a-fA-F]+$/.test(given)) return false;
  const expected = Buffer.from(vonageSignature(params, secret, method), "hex");
  const actual = Buffer.from(given, "hex");
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
