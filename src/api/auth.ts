import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { stmt, type Db } from "../../db/index";
import { ApiError } from "../errors";
import type { AppDeps, HonoEnv } from "../env";
import { withTimeout } from "../async";
import { clientIp } from "../rate-limit";

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

/** Distinct wrong bearer keys a client may send per window before its keys are no longer looked at. */
export const KEY_FAILURES = 20;
export const KEY_FAILURE_WINDOW_MS = 15 * 60_000;

/**
 * Guessing the admin key (or a provider or partner key) through `Authorization: Bearer`: the
 * distinct wrong keys of a client are counted in Redis (all processes together, fails open), and
 * past KEY_FAILURES in a window its keys are not even compared until the window ends, a right one
 * included (a guesser would know it by the answer). Distinct: a platform polling on with a revoked
 * key sends one wrong key however often, and must not lock out the callers sharing its address (a
 * proxy without LINK_CLIENT_IP_HEADER makes that everyone). The process that saw the limit passed
 * remembers it, so a blocked client costs no Redis call; another process learns it at the client's
 * next new wrong key.
 */
export class KeyGuessGuard {
  private readonly blocked = new Map<string, number>();

  constructor(private readonly deps: Pick<AppDeps, "redis" | "secrets" | "config" | "clock" | "log">) {}

  /** How many distinct wrong keys the client sent this window, this one included; 0 without Redis (fails open). */
  private async distinctFailures(client: string, key: string, now: number): Promise<number> {
    const { redis, config } = this.deps;
    if (redis.status !== "ready") return 0;
    const set = `${config.QUEUE_PREFIX}:rl:bearer-failures:${client}:${Math.floor(now / KEY_FAILURE_WINDOW_MS)}`;
    try {
      const res = await withTimeout(redis.multi().sadd(set, keyHash(key).slice(0, 24)).pexpire(set, KEY_FAILURE_WINDOW_MS * 2).scard(set).exec(), 500, "key guess guard");
      return Number(res?.[2]?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  private client(c: Context): string {
    return this.deps.secrets.pseudonym("rate-limit", clientIp(c, this.deps.config.LINK_CLIENT_IP_HEADER));
  }

  /** A 429 while the client is blocked (before its key is compared); nothing to compute while no client is. */
  admit(c: Context): void {
    if (this.blocked.size === 0) return;
    const client = this.client(c);
    const until = this.blocked.get(client);
    if (until === undefined) return;
    const now = this.deps.clock.now().getTime();
    if (now < until) this.refuse(c, until - now);
    this.blocked.delete(client);
  }

  /** Counts a wrong key; a 429 once the client is over the limit. */
  async failed(c: Context, key: string): Promise<void> {
    const client = this.client(c);
    const now = this.deps.clock.now().getTime();
    if ((await this.distinctFailures(client, key, now)) <= KEY_FAILURES) return;
    const until = (Math.floor(now / KEY_FAILURE_WINDOW_MS) + 1) * KEY_FAILURE_WINDOW_MS;
    if (this.blocked.size > 10_000) this.blocked.clear();
    this.blocked.set(client, until);
    this.deps.log.warn({ requestId: c.get("requestId") }, "bearer key guessing: client blocked until the window ends");
    this.refuse(c, until - now);
  }

  private refuse(c: Context, waitMs: number): never {
    c.header("Retry-After", String(Math.max(1, Math.ceil(waitMs / 1000))));
    throw new ApiError("rate_limited", `more than ${KEY_FAILURES} different wrong API keys from this client in ${KEY_FAILURE_WINDOW_MS / 60_000} minutes: no key is accepted from it until the window ends`);
  }
}

const guards = new WeakMap<object, KeyGuessGuard>();

/** The app's one guard (the API, partner routes and the dashboard count and block together): one per configuration. */
export function keyGuessGuard(deps: Pick<AppDeps, "redis" | "secrets" | "config" | "clock" | "log">): KeyGuessGuard {
  let guard = guards.get(deps.config);
  if (!guard) guards.set(deps.config, (guard = new KeyGuessGuard(deps)));
  return guard;
}

/**
 * `Authorization: Bearer <key>`: HUB_ADMIN_KEY (compared in constant time) or an active provider
 * key (looked up by its hash). Sets `caller`. Without HUB_ADMIN_KEY the API is off altogether.
 * Wrong keys count against the client (KeyGuessGuard).
 */
export function bearerAuth(adminKey: string | undefined, db: Db, guard: KeyGuessGuard) {
  const expected = adminKey ? digest(adminKey) : null;
  return createMiddleware<HonoEnv>(async function requireApiKey(c, next) {
    if (!expected) throw new ApiError("unauthorized", "the provider API is disabled: set HUB_ADMIN_KEY");
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw new ApiError("unauthorized", "missing Authorization: Bearer <API key>");
    guard.admit(c);
    const given = match[1]!.trim();
    if (timingSafeEqual(digest(given), expected)) {
      c.set("caller", { kind: "admin" });
    } else {
      const caller = activeKey(db, given);
      if (!caller) {
        await guard.failed(c, given);
        throw new ApiError("unauthorized", "invalid API key");
      }
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
