import type { Context } from "hono";
import { matchedRoutes } from "hono/route";

/**
 * The route pattern that answered (`/r/:token`, `/voice/twilio/:step`), for logs and metric labels:
 * a raw path can carry a link token or a phone number. Called after `next()` in the outermost
 * middleware; "unmatched" when only middleware ran (404).
 */
export function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  // Middleware registered with use() has method ALL; the route the path matched (even when a
  // middleware answered first, e.g. a 401) is the last one with a real method.
  const answered = routes[c.req.routeIndex];
  if (answered && answered.method !== "ALL") return answered.path;
  const route = [...routes].reverse().find((r) => r.method !== "ALL");
  if (route) return route.path;
  return answered && !/^\/?\*$/.test(answered.path) ? answered.path : "unmatched";
}

/**
 * A raw path for a log line with every long or digit-heavy segment (tokens, numbers) replaced. A
 * path whose digits add up to a phone number's across segments ("/x/0532/111/22/33") is replaced
 * whole, and so is an e-mail address however often its @ was percent-encoded (%40, %2540…).
 */
export function redactPath(path: string): string {
  const redacted = path
    .split("/")
    // Digits counted across separators: "0532-123-45-67" and "0532 123 45 67" are numbers too.
    .map((seg) => (seg.length > 24 || seg.replace(/\D/g, "").length >= 5 || /%(?:25)*40|@/i.test(seg) ? ":redacted" : seg))
    .join("/");
  return redacted.replace(/\D/g, "").length >= 7 ? "/:redacted" : redacted;
}
