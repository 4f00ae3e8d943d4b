import { createHmac, timingSafeEqual } from "node:crypto";

/** A signing key of rejection links; `kid` travels inside the token so keys can rotate. */
export interface LinkKey {
  kid: number;
  secret: Buffer;
}

export interface LinkKeyring {
  /** Signs new links. */
  current: LinkKey;
  /** Every key that still verifies (the current one included). */
  byKid: Map<number, LinkKey>;
}

/** Random part of a link: 8 bytes, stored in the `links` row; not a counter, so links cannot be enumerated. */
export const LINK_ID_BYTES = 8;
/** 96 bits of HMAC-SHA256: forging one link takes ~2^96 guesses, and every guess costs a request. */
const TAG_BYTES = 12;
const TOKEN_BYTES = 1 + LINK_ID_BYTES + TAG_BYTES;
/** base64url of 21 bytes, no padding. */
export const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 8) / 6);
const TOKEN_SHAPE = new RegExp(`^[A-Za-z0-9_-]{${TOKEN_LENGTH}}$`);

/**
 * `LINK_KEYS` (`kid:secret,kid:secret…`, the first signs) or, when unset, one key derived from the
 * hub secret with kid 1, which also verifies beside LINK_KEYS unless kid 1 is listed there.
 * Duplicated kids are a configuration error.
 */
export function linkKeyring(linkKeys: string | undefined, derive: (purpose: string) => Buffer): LinkKeyring {
  const keys: LinkKey[] = linkKeys
    ? linkKeys.split(",").map((pair) => {
        const trimmed = pair.trim();
        const colon = trimmed.indexOf(":");
        const kid = Number(trimmed.slice(0, colon));
        if (!Number.isInteger(kid) || kid < 1 || kid > 255) throw new Error(`LINK_KEYS: key id ${trimmed.slice(0, colon)} must be 1–255`);
        return { kid, secret: Buffer.from(trimmed.slice(colon + 1), "utf8") };
      })
    : [{ kid: 1, secret: derive("link-key") }];
  const byKid = new Map<number, LinkKey>();
  for (const k of keys) {
    if (byKid.has(k.kid)) throw new Error(`LINK_KEYS: key id ${k.kid} is listed twice`);
    byKid.set(k.kid, k);
  }
  // The derived key (kid 1) signed every link mailed before LINK_KEYS was set, and cannot be written
  // into LINK_KEYS: it keeps verifying unless LINK_KEYS gives kid 1 a key of its own (which retires it).
  if (!byKid.has(1)) byKid.set(1, { kid: 1, secret: derive("link-key") });
  return { current: keys[0]!, byKid };
}

function tag(key: LinkKey, linkId: Buffer): Buffer {
  return createHmac("sha256", key.secret).update(Buffer.from([key.kid])).update(linkId).digest().subarray(0, TAG_BYTES);
}

/**
 * `[kid][link id][HMAC tag]`, base64url: 28 characters, so `/r/<token>` is 31. jose is the hub's
 * signing library, but even the smallest JWS (header, payload, signature) is several times longer
 * than a path of 40 characters; a truncated HMAC over a fixed binary layout is the compact form of
 * the same guarantee.
 */
export function signLinkToken(ring: LinkKeyring, linkId: Buffer): string {
  if (linkId.length !== LINK_ID_BYTES) throw new Error(`a link id is ${LINK_ID_BYTES} bytes`);
  const key = ring.current;
  return Buffer.concat([Buffer.from([key.kid]), linkId, tag(key, linkId)]).toString("base64url");
}

/** The link id of a genuine token, or null (malformed, unknown kid, bad tag); the tag is compared in constant time. */
export function verifyLinkToken(ring: LinkKeyring, token: string): Buffer | null {
  if (!TOKEN_SHAPE.test(token)) return null;
  const raw = Buffer.from(token, "base64url");
  // Non-canonical spellings of the same bytes (stray low bits in the last character) are not the token we issued.
  if (raw.length !== TOKEN_BYTES || raw.toString("base64url") !== token) return null;
  const key = ring.byKid.get(raw[0]!);
  if (!key) return null;
  const linkId = raw.subarray(1, 1 + LINK_ID_BYTES);
  const expected = tag(key, linkId);
  return timingSafeEqual(expected, raw.subarray(1 + LINK_ID_BYTES)) ? Buffer.from(linkId) : null;
}
