import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "hub_admin";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant-time comparison of a presented key with the admin key (both hashed first: equal lengths). */
export function adminKeyMatches(presented: string, adminKey: string | undefined): boolean {
  if (!adminKey) return false;
  return timingSafeEqual(digest(presented), digest(adminKey));
}

/**
 * Stateless operator sessions: `v1.<expiry ms>.<nonce>.<HMAC>`. The HMAC key comes from the hub
 * secret ("admin-session") and also covers a hash of the admin key, so rotating HUB_ADMIN_KEY ends
 * every session. The admin key itself is never in the cookie.
 */
export class SessionTokens {
  constructor(
    private readonly key: Buffer,
    private readonly adminKey: string | undefined,
  ) {}

  private mac(body: string): Buffer {
    return createHmac("sha256", this.key)
      .update(body)
      .update("\0")
      .update(digest(this.adminKey ?? ""))
      .digest();
  }

  issue(now: number, ttlMs: number): string {
    const body = `v1.${now + ttlMs}.${randomBytes(12).toString("base64url")}`;
    return `${body}.${this.mac(body).toString("base64url")}`;
  }

  /** The session's expiry when the token is genuine and not expired, else null. */
  verify(token: string | undefined, now: number): number | null {
    if (!token || !this.adminKey) return null;
    const m = /^(v1\.(\d{1,15})\.[A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return null;
    const expected = this.mac(m[1]!);
    const given = Buffer.from(m[3]!, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const exp = Number(m[2]);
    return exp > now ? exp : null;
  }
}
