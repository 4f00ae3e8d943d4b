import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { stmt, type Db } from "../../db/index";
import { ApiError } from "../errors";
import type { HonoEnv } from "../env";

/**
 * Who is calling the provider API: the operator (HUB_ADMIN_KEY, every brand and the admin areas),
 * or a provider key from /api/v1/keys, which acts only on its brands.
 */
export type Caller = { kind: "admin" } | { kind: "key"; keyId: string; name: string; brands: string[] | "*" };

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export const keyHash = (key: string) => digest(key).toString("hex");

/** `hub_` + 32 random bytes, base64url: shown once, only its SHA-256 is stored. */
export function newProviderKey(): string {
  return `hub_${randomBytes(32).toString("base64url")}`;
}

interface KeyRow {
  id: string;
  name: string;
  brands: string;
}

/** An active (not revoked) provider key, by the SHA-256 of the key given. */
function activeKey(db: Db, key: string): Caller | null {
  const row = stmt<[string], KeyRow>(db, `SELECT id, name, brands FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`).get(keyHash(key));
  return row ? { kind: "key", keyId: row.id, name: row.name, brands: JSON.parse(row.brands) as string[] | "*" } : null;
}

/**
 * `Authorization: Bearer <key>`: HUB_ADMIN_KEY (compared in constant time) or an active provider
 * key (looked up by its hash). Sets `caller`. Without HUB_ADMIN_KEY the API is off altogether.
 */
export function bearerAuth(adminKey: string | undefined, db: Db) {
  const expected = adminKey ? digest(adminKey) : null;
  return createMiddleware<HonoEnv>(async function requireApiKey(c, next) {
    if (!expected) throw new ApiError("unauthorized", "the provider API is disabled: set HUB_ADMIN_KEY");
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw new ApiError("unauthorized", "missing Authorization: Bearer <API key>");
    const given = match[1]!.trim();
    if (timingSafeEqual(digest(given), expected)) {
      c.set("caller", { kind: "admin" });
    } else {
      const caller = activeKey(db, given);
      if (!caller) throw new ApiError("unauthorized", "invalid API key");
      c.set("caller", caller);
    }
    await next();
  });
}

/** 403 unless the caller may act on this brand (codes compare case-insensitively, like brand lookups). */
export function assertBrandAccess(c: Context<HonoEnv>, brandCode: string, field = "brand"): void {
  if (!canAccessBrand(c.get("caller"), brandCode)) {
    throw new ApiError("forbidden", `this API key may not act on brand ${brandCode.toUpperCase()}`, { field });
  }
}

export function canAccessBrand(caller: Caller | undefined, brandCode: string): boolean {
  if (!caller) return false;
  if (caller.kind === "admin" || caller.brands === "*") return true;
  return caller.brands.includes(brandCode.trim().toUpperCase());
}

/** Admin-only areas (API keys, brand creation, subscriptions, deliveries): 403 for a provider key. */
export const requireAdmin = createMiddleware<HonoEnv>(async function requireAdmin(c, next) {
  if (c.get("caller")?.kind !== "admin") throw new ApiError("forbidden", "this area needs the admin key (HUB_ADMIN_KEY)");
  await next();
});
