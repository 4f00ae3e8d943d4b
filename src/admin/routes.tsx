import type { Queue } from "bullmq";
import { Hono, type Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppDeps, HonoEnv } from "../env";
import { keyGuessGuard } from "../api/auth";
import { ApiError } from "../errors";
import { clientIp, RateLimiter } from "../rate-limit";
import type { Metrics } from "../metrics/index";
import { loadDashboard, reportsToIysNow } from "./data";
import { ADMIN_CSP, DashboardPage, LoginPage } from "./pages";
import { createQueueBoard } from "./queues";
import { SESSION_COOKIE, SessionTokens, adminKeyMatches } from "./session";

/** bull-board's own page loads its scripts and styles from /admin/queues/static and inlines a few styles. */
const BOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";

/** Login form posts per client IP per window (successful ones included). */
const LOGIN_ATTEMPTS = 10;
const LOGIN_WINDOW_MS = 15 * 60_000;

const bearer = (c: Context) => /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim();

/**
 * The operator area: `/admin` (dashboard), `/admin/login`, `/admin/logout`, `/admin/queues`
 * (bull-board). Authenticated by the admin key, either per request (`Authorization: Bearer`) or
 * through a signed, expiring session cookie obtained by posting the key to /admin/login.
 */
export function createAdminRoutes(deps: AppDeps, metrics: Metrics, queues: Record<string, Queue>) {
  const { config } = deps;
  const tokens = new SessionTokens(deps.secrets.derive("admin-session"), config.HUB_ADMIN_KEY);
  const publicOrigin = new URL(config.PUBLIC_BASE_URL).origin;
  const secure = publicOrigin.startsWith("https:");
  const now = () => deps.clock.now().getTime();
  const limiter = new RateLimiter(deps.redis, config.QUEUE_PREFIX);
  const app = new Hono<HonoEnv>();

  app.use("*", async function adminHeaders(c, next) {
    await next();
    c.header("Cache-Control", "no-store");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("X-Frame-Options", "DENY");
    c.header("Referrer-Policy", "same-origin");
    c.header("Content-Security-Policy", c.req.path.startsWith("/admin/queues") ? BOARD_CSP : ADMIN_CSP);
  });

  // CSRF: the session cookie is SameSite=Strict, and every state-changing request that relies on
  // it must come from our own origin (Origin, or Referer when a browser leaves Origin out).
  app.use("*", async function sameOrigin(c, next) {
    if (c.req.method === "GET" || c.req.method === "HEAD" || bearer(c)) return next();
    const origin = c.req.header("origin") ?? (c.req.header("referer") ? safeOrigin(c.req.header("referer")!) : undefined);
    if (origin !== publicOrigin) {
      deps.log.warn({ requestId: c.get("requestId"), origin: origin ?? null }, "admin request refused: cross-origin or no Origin");
      throw new ApiError(
        "forbidden",
        `cross-origin request refused: expected Origin ${publicOrigin} (open the dashboard at ${publicOrigin}/admin, or set PUBLIC_BASE_URL to the origin you use)`,
      );
    }
    return next();
  });

  const guard = keyGuessGuard(deps);
  const authenticated = async (c: Context) => {
    const key = bearer(c);
    if (key === undefined) return tokens.verify(getCookie(c, SESSION_COOKIE), now()) !== null;
    // Wrong bearer keys count as on the API (the same counter): the login form has its own limit.
    guard.admit(c);
    if (adminKeyMatches(key, config.HUB_ADMIN_KEY)) return true;
    await guard.failed(c, key);
    return false;
  };

  app.get("/login", async (c) => ((await authenticated(c)) ? c.redirect("/admin", 303) : c.html(<LoginPage />)));

  app.post("/login", async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const key = typeof form.key === "string" ? form.key : "";
    if (!config.HUB_ADMIN_KEY) return c.html(<LoginPage error="The admin key is not configured (HUB_ADMIN_KEY) / Yönetici anahtarı tanımlı değil." />, 401);
    // Guessing the key through the form: a few attempts per client per window (fails open without Redis).
    const client = deps.secrets.pseudonym("rate-limit", clientIp(c, config.LINK_CLIENT_IP_HEADER));
    const { limited } = await limiter.hit("admin-login", client, LOGIN_ATTEMPTS, LOGIN_WINDOW_MS, now());
    if (limited) {
      deps.log.warn({ requestId: c.get("requestId") }, "admin login rate-limited");
      return c.html(<LoginPage error="Too many attempts; try again in 15 minutes / Çok fazla deneme; 15 dakika sonra tekrar deneyin." />, 429, { "Retry-After": "900" });
    }
    if (!adminKeyMatches(key, config.HUB_ADMIN_KEY)) {
      deps.log.warn({ requestId: c.get("requestId") }, "admin login failed");
      return c.html(<LoginPage error="Wrong key / Anahtar hatalı." />, 401);
    }
    const ttlMs = config.ADMIN_SESSION_MINUTES * 60_000;
    setCookie(c, SESSION_COOKIE, tokens.issue(now(), ttlMs), { httpOnly: true, secure, sameSite: "Strict", path: "/admin", maxAge: ttlMs / 1000 });
    deps.log.info({ requestId: c.get("requestId") }, "admin login");
    return c.redirect("/admin", 303);
  });

  app.post("/logout", (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/admin", secure, httpOnly: true, sameSite: "Strict" });
    return c.redirect("/admin/login", 303);
  });

  app.use("*", async function requireAdmin(c, next) {
    if (await authenticated(c)) return next();
    // A browser is sent to the login form; anything else gets the API's 401.
    if (c.req.method === "GET" && !bearer(c) && (c.req.header("accept") ?? "").includes("text/html")) return c.redirect("/admin/login", 303);
    throw new ApiError("unauthorized", bearer(c) ? "invalid admin key" : "log in at /admin/login or send Authorization: Bearer <admin key>");
  });

  app.get("/", async (c) => {
    const d = await loadDashboard({ db: deps.db, calendar: deps.calendar, metrics, now: now(), iysConfigured: reportsToIysNow(deps.db, Boolean(deps.config.IYS_API_BASE_URL)) });
    return c.html(<DashboardPage d={d} />);
  });

  const board = createQueueBoard(Object.values(queues), "/admin/queues", deps.log);
  // The board's page sets <base href="/admin/queues/">: that address, typed or bookmarked, is the board too.
  app.get("/queues/", (c) => c.redirect("/admin/queues", 301));
  app.route("/queues", board);

  return app;
}

function safeOrigin(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
