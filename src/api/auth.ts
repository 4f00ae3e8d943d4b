import { timingSafeEqual, createHash } from "node:crypto";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";
import type { HonoEnv } from "../env";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** `Authorization: Bearer <HUB_ADMIN_KEY>`; compared in constant time. */
export function bearerAuth(adminKey: string | undefined) {
  const expected = adminKey ? digest(adminKey) : null;
  return createMiddleware<HonoEnv>(async function requireApiKey(c, next) {
    if (!expected) throw new ApiError("unauthorized", "the provider API is disabled: set HUB_ADMIN_KEY");
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw new ApiError("unauthorized", "missing Authorization: Bearer <API key>");
    if (!timingSafeEqual(digest(match[1]!.trim()), expected)) throw new ApiError("unauthorized", "invalid API key");
    await next();
  });
}
