import { withTimeout } from "./async";
import { createSmsRoutes } from "../channels/sms/routes";
import { createIvrRoutes } from "../channels/ivr/routes";
import { createLinkRoutes } from "../channels/link/routes";
import { queuePrefixProblem, redisDatabaseProblem, redisReady } from "./redis";
import { randomUUID } from "node:crypto";
import { statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { TrieRouter } from "hono/router/trie-router";
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { createApiRoutes } from "./api/index";
import { keyGuessGuard } from "./api/auth";
import { createApiDocsRoutes } from "./api-docs";
import type { AppDeps, HonoEnv } from "./env";
import { bodyLimit } from "./body-limit";
import { normalizePhone, redactAddresses } from "./domain/address";
import { ApiError, errorBody } from "./errors";
import { createAdminRoutes } from "./admin/routes";
import { Metrics } from "./metrics/index";
import { redactPath, routeLabel } from "./metrics/route";
import { createMetricsRoutes } from "./metrics/routes";

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** A partner's pre-send check takes as many recipients as the provider's. */
const PARTNER_CHECK = /^\/api\/v1\/partners\/[^/]+\/check$/;
/** Provider webhooks (SMS, voice) are a few hundred bytes; anything bigger is not a webhook. */
const WEBHOOK_MAX_BYTES = 64 * 1024;

/**
 * Whether a request id holds an address: an e-mail's @ (or %40), or a run of 10 to 15 digits (its
 * separators taken out) that is a phone number as written, with a + before it, or with 00 for the
 * + — a mobile, a fixed line, a foreign number. A UUID's or a timestamp's digits are none.
 */
function holdsAddress(id: string): boolean {
  if (/@|%40/i.test(id)) return true;
  return (id.replace(/[._-]/g, "").match(/\d+/g) ?? []).some(
    (r) => r.length >= 10 && r.length <= 15 && (normalizePhone(r).ok || normalizePhone(`+${r}`).ok || (r.startsWith("00") && normalizePhone(`+${r.slice(2)}`).ok)),
  );
}

const PROBE_ROUTES: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

/** Builds the whole HTTP surface; no I/O at import, everything comes through `deps`. */
export function createApp(deps: AppDeps) {
  const app = new Hono<HonoEnv>();
  const metrics = deps.metrics ?? new Metrics().bind({ db: deps.db, queues: deps.queues, calendar: deps.calendar, clock: deps.clock });

  app.use("*", async function requestContext(c, next) {
    const incoming = c.req.header("x-request-id");
    // A caller's own id is kept unless it holds an address (holdsAddress), which would be written on
    // every log line of the request.
    const requestId = incoming && REQUEST_ID.test(incoming) && !holdsAddress(incoming) ? incoming : randomUUID();
    c.set("requestId", requestId);
    const started = performance.now();
    await next();
    // On the response as built: c.header() now would copy a finalized response; before next() it
    // would make every response merge a Headers object (a third of a webhook's response cost).
    try {
      c.res.headers.set("X-Request-Id", requestId);
    } catch {
      c.header("X-Request-Id", requestId); // a response with immutable headers is copied instead
    }
    // The route pattern, never the raw path (it can carry a link token or a phone number).
    const route = routeLabel(c);
    const seconds = (performance.now() - started) / 1000;
    metrics.observeRequest(c.req.method, route, c.res.status, seconds);
    const errorCode = c.get("errorCode");
    const errorField = c.get("errorField");
    const line = {
      requestId,
      method: c.req.method,
      route,
      ...(route === "unmatched" ? { path: redactPath(c.req.path) } : {}),
      status: c.res.status,
      ...(errorCode ? { error: errorCode } : {}),
      ...(errorField ? { field: errorField } : {}),
      ms: Math.round(seconds * 1000),
    };
    // Probes and scrapes come every few seconds: their successes at debug, not a line each at info.
    if (c.res.status < 400 && PROBE_ROUTES.has(route)) deps.log.debug(line, "request");
    else deps.log.info(line, "request");
  });

  const limit = (maxSize: number, what: string) =>
    bodyLimit<HonoEnv>(maxSize, () => {
      throw new ApiError("payload_too_large", `${what} is at most ${maxSize >= 1 << 20 ? `${maxSize / (1 << 20)} MiB` : `${maxSize} bytes`}`);
    });
  const defaultLimit = limit(1 << 20, "the request body");
  // The pre-send check takes up to 100 000 recipients in one call, link issuance 10 000.
  const largeLimit = limit(16 << 20, "the request body");
  const largeBodies = new Set(["/api/v1/check", "/api/v1/links"]);
  const webhookLimit = limit(WEBHOOK_MAX_BYTES, "a webhook body");
  app.use("*", function requestBodyLimit(c, next) {
    const path = c.req.path;
    // Bulk imports stream their CSV into the ledger as it arrives: hono's bodyLimit would buffer a
    // chunked body whole, so the import route checks Content-Length itself (src/api/imports.ts).
    if (path === "/api/v1/imports" && c.req.method === "POST") return next();
    // Link pages answer every problem as a page with their own headers; their POSTs are a few bytes (channels/link).
    if (path.startsWith("/r/")) return next();
    if (path.startsWith("/sms/") || path.startsWith("/voice/")) return webhookLimit(c, next);
    return (largeBodies.has(path) || PARTNER_CHECK.test(path) ? largeLimit : defaultLimit)(c, next);
  });

  // Where to go from the bare origin (the quick start prints it).
  app.get("/", (c) =>
    c.json({ name: "İYS consent hub", docs: "/api/docs", openapi: "/api/v1/openapi.json", health: "/healthz", ready: "/readyz", admin: "/admin" }),
  );
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  // The file the database was opened from: deleted or replaced under a running hub, SQLite keeps
  // writing to the old inode, which nobody will ever read (every later start makes a new ledger).
  const databaseFile = fileIdentity(deps.db.$client.name);
  app.get("/readyz", async (c) => {
    const checks: Record<string, "ok" | string> = {};
    try {
      deps.db.$client.prepare("SELECT 1").get();
      const now = fileIdentity(deps.db.$client.name);
      checks.database =
        databaseFile === null || now === databaseFile
          ? "ok"
          : `the database file at DATABASE_PATH was ${now === null ? "removed" : "replaced"} while the hub runs: what it records now is lost at its stop; stop it and restore the database`;
    } catch (err) {
      checks.database = err instanceof Error ? err.message : "error";
    }
    try {
      await redisReady(deps.redis, 1000);
      // A connection left in database 0 because Redis refuses the one REDIS_URL names is no good
      // either (SELECT for another database, PING for 0); nor is a queue prefix another hub holds.
      checks.redis = (await withTimeout(redisDatabaseProblem(deps.redis), 1000)) ?? "ok";
      if (deps.hubId) {
        const taken = await withTimeout(queuePrefixProblem(deps.redis, deps.config.QUEUE_PREFIX, deps.hubId), 1000);
        if (taken) checks.queuePrefix = taken;
      }
    } catch {
      checks.redis = "unreachable";
    }
    // Redis merely unreachable does not take the hub out of rotation: every webhook, click and API
    // write is made durable in SQLite before it is answered, and queued by the sweeper once Redis is
    // back. A 503 here would have a load balancer turn away the refusals the hub can still take (a
    // provider does not send an inbound SMS again), on every instance at once, since they share Redis.
    // A Redis that answers with the wrong database or another hub's prefix is a configuration error: 503.
    const degraded = checks.redis === "unreachable";
    const ready = Object.values(checks).every((v) => v === "ok" || (degraded && v === "unreachable"));
    return c.json({ status: !ready ? "not ready" : degraded ? "degraded" : "ready", checks }, ready ? 200 : 503);
  });

  app.route("/api/v1", createApiRoutes(deps));
  app.route("/api/docs", createApiDocsRoutes(deps.config.PUBLIC_BASE_URL));
  app.route("/sms", createSmsRoutes(deps));
  app.route("/voice", createIvrRoutes(deps));
  app.route("/r", createLinkRoutes(deps));
  app.route("/admin", createAdminRoutes(deps, metrics, deps.queues ?? {}));
  app.route("/metrics", createMetricsRoutes(deps.config, metrics, keyGuessGuard(deps)));

  // A path the hub serves asked with another method is 405 naming the methods it takes (Allow), not 404.
  let methodsOf: ((path: string) => string[]) | null = null;
  app.notFound((c) => {
    methodsOf ??= routeMethods(app.routes);
    const allowed = methodsOf(c.req.path).filter((m) => m !== c.req.method);
    if (allowed.length > 0) {
      if (allowed.includes("GET")) allowed.push("HEAD");
      c.header("Allow", allowed.join(", "));
      return c.json(errorBody(c, new ApiError("method_not_allowed", `${c.req.method} is not served at ${c.req.path}; use ${allowed.join(", ")}`)), 405);
    }
    return c.json(errorBody(c, new ApiError("not_found", `no route for ${c.req.method} ${c.req.path}`)), 404);
  });

  app.onError(function handleError(err, c) {
    if (err instanceof ApiError) return c.json(errorBody(c, err), err.status);
    if (clientWentAway(c)) {
      // Reading a body the client stopped sending (a dropped connection, Node's request timeout):
      // the client's doing, not ours, and nobody reads this answer; the request line says 400.
      return c.json(errorBody(c, new ApiError("bad_request", "the request body did not arrive whole: the client went away", { field: "(body)" })), 400);
    }
    if (err instanceof HTTPException && err.status < 500) {
      // A 400 from Hono's own validators is about the body itself (malformed JSON).
      const details = err.status === 400 ? { field: "(body)" } : undefined;
      const code = err.status === 413 ? "payload_too_large" : err.status === 415 ? "unsupported_media_type" : "bad_request";
      return c.json(errorBody(c, new ApiError(code, err.message || "bad request", details)), err.status);
    }
    // Masked like a job's error: a message may quote what it failed on (an address, a body).
    const masked = (text: string | undefined) => (text === undefined ? undefined : redactAddresses(text));
    const unavailable = databaseUnavailable(err);
    if (unavailable) {
      // The database cannot take the write now (its lock held past busy_timeout, the disk full, an
      // I/O error): the transaction rolled back. A 503 with Retry-After, which providers retry (every
      // write is idempotent), not a 500 that reads as the hub's bug.
      deps.log.error({ requestId: c.get("requestId"), err: { code: (err as { code?: string }).code, message: masked(err.message) } }, "database unavailable");
      c.header("Retry-After", String(unavailable.retryAfter));
      return c.json(errorBody(c, new ApiError("unavailable", unavailable.message)), 503);
    }
    deps.log.error({ requestId: c.get("requestId"), err: err instanceof Error ? { name: err.name, message: masked(err.message), stack: masked(err.stack) } : masked(String(err)) }, "unhandled error");
    return c.json(errorBody(c, new ApiError("internal_error", "unexpected error; quote the requestId when reporting it")), 500);
  });

  return app;
}

/** Device and inode of a file (null when there is none, or for an in-memory database). */
function fileIdentity(path: string): string | null {
  if (path === ":memory:" || path === "") return null;
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** A SQLite error that says the database cannot be written now, not that the request or the hub is wrong. */
function databaseUnavailable(err: Error): { message: string; retryAfter: number } | null {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return null;
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return { message: "the hub's database is busy (its write lock held past 5 s): the request was not completed; try again (a retry is safe: writes are idempotent)", retryAfter: 5 };
  }
  if (code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR") || code.startsWith("SQLITE_READONLY") || code === "SQLITE_CANTOPEN") {
    return { message: `the hub's database cannot be written (${code === "SQLITE_FULL" ? "its disk is full" : code}): the request was not completed; try again later (a retry is safe: writes are idempotent)`, retryAfter: 60 };
  }
  return null;
}

/** Under @hono/node-server: the request's body stopped before its end and its connection is gone. */
function clientWentAway(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return Boolean(incoming && !incoming.complete && (incoming.destroyed || incoming.readableAborted));
}

export type App = ReturnType<typeof createApp>;

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** The methods the app's routes take at a path (middleware, registered for every method, left out). */
function routeMethods(routes: { method: string; path: string }[]): (path: string) => string[] {
  const router = new TrieRouter<string>();
  for (const r of routes) if (r.method !== "ALL") router.add(r.method, r.path, r.method);
  return (path) => METHODS.filter((m) => router.match(m, path)[0].length > 0);
}
