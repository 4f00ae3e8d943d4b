import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import { createApp } from "./app";
import { nameClashes } from "./brands";
import { answerClientErrors } from "./client-errors";
import { assertServerRoles, ConfigError, loadConfig } from "./config";
import { withTimeout } from "./async";
import { createRuntime } from "./runtime";

/** How long a stopping server lets requests in flight finish (webhooks take milliseconds, an IVR step at most IVR_APPLY_WAIT_MS). */
const SHUTDOWN_REQUESTS_MS = 10_000;

/**
 * Node cuts a request whose body has not arrived whole within `requestTimeout`, 300 s by default: an
 * import upload streams into the ledger at the ledger's pace (1 000 000 rows ≈ 30 s here; the 2 GiB
 * cap, ~35 000 000 rows, ~15–20 min), so a request may take up to an hour. A connection that sends
 * and receives nothing for two minutes is closed; headers keep Node's own 60 s.
 */
const REQUEST_TIMEOUT_MS = 3_600_000;
const IDLE_SOCKET_MS = 120_000;

async function main() {
  let config;
  try {
    config = loadConfig();
    assertServerRoles(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  let runtime;
  try {
    runtime = await createRuntime(config);
  } catch (err) {
    // A file the configuration names that cannot be used (HOLIDAYS_PATH, LEDGER_KEY_PATH…): one line, no stack.
    console.error(`hub: cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  const { log } = runtime.deps;
  if (config.RUN_WORKERS) {
    runtime.startBackground();
    // A workers-only process has no port to probe: this line says it is up.
    if (!config.RUN_WEB) log.info({ web: false, queuePrefix: config.QUEUE_PREFIX }, "hub workers running");
  }
  const server = config.RUN_WEB
    ? serve({ fetch: createApp(runtime.deps).fetch, port: config.PORT, serverOptions: { requestTimeout: REQUEST_TIMEOUT_MS } }, (info) =>
        log.info({ port: info.port, publicBaseUrl: config.PUBLIC_BASE_URL, workers: config.RUN_WORKERS }, "hub listening"),
      )
    : null;
  server?.setTimeout(IDLE_SOCKET_MS);
  if (server) answerClientErrors(server as Server);
  // A port in use (another hub, another service): one line naming it, not a stack trace.
  server?.on("error", (err: NodeJS.ErrnoException) => {
    console.error(`hub: cannot serve on port ${config.PORT}: ${err.code === "EADDRINUSE" ? "the port is in use (PORT)" : err.message}`);
    process.exit(1);
  });
  if (!config.HUB_ADMIN_KEY && config.RUN_WEB) log.warn({}, "HUB_ADMIN_KEY is not set: the provider API (/api/v1) answers 401");
  if (!config.IYS_API_BASE_URL && config.RUN_WORKERS) {
    log.warn({}, "IYS_API_BASE_URL is not set: no movement is reported to İYS; each must reach İYS within 3 business days, by other means or by a start with it set (which sends those still within their 3 business days; the dashboard counts them)");
  }
  if (config.RUN_WEB && !config.VONAGE_SIGNATURE_SECRET) {
    log.warn(
      {},
      config.NODE_ENV === "production"
        ? "VONAGE_SIGNATURE_SECRET is not set: /sms/vonage answers 503 (set it and enable signed webhooks in Vonage)"
        : "VONAGE_SIGNATURE_SECRET is not set: /sms/vonage accepts unsigned requests (set it and enable signed webhooks in Vonage; required with NODE_ENV=production)",
    );
  }

  // Stored before a change of the folding rules: PATCH one brand's short names.
  for (const clash of nameClashes(runtime.deps.db)) {
    log.warn(clash, "brands of one number answer to the same name: a refusal by that name refuses all of them, a consent none");
  }
  if (!config.CALLBACK_ALLOW_PRIVATE) {
    // Registered before https was required: every delivery to them is refused until the URL is changed.
    const plain = runtime.deps.db.$client.prepare(`SELECT id, kind FROM endpoints WHERE status = 'active' AND url LIKE 'http:%'`).all() as { id: string; kind: string }[];
    if (plain.length > 0) {
      log.warn({ endpoints: plain.map((e) => `${e.kind} ${e.id}`) }, "callback endpoints with http URLs: deliveries to them are refused (https only); change their URLs (PATCH) or set CALLBACK_ALLOW_PRIVATE on a closed network");
    }
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    if (server) {
      // No new connections; requests in flight (a webhook whose body is still arriving, an IVR step
      // waiting for its commit) are answered before the database closes, within a bound.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const http = server as { closeIdleConnections?: () => void; closeAllConnections?: () => void };
      http.closeIdleConnections?.();
      await withTimeout(closed, SHUTDOWN_REQUESTS_MS, "finishing requests").catch(() => {
        log.warn({}, `requests still open after ${SHUTDOWN_REQUESTS_MS} ms were cut`);
        http.closeAllConnections?.();
      });
    }
    await runtime.close();
    log.info({ signal }, "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

void main();
