import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import { serveStatic } from "@hono/node-server/serve-static";
import type { Queue } from "bullmq";
import { Hono } from "hono";
import type { Logger } from "../log";

/** Where @bull-board/ui keeps its page template and static assets, or null when they are not installed. */
export function bullBoardUiPath(): string | null {
  try {
    const base = dirname(createRequire(import.meta.url).resolve("@bull-board/ui/package.json"));
    return existsSync(join(base, "dist", "index.ejs")) && existsSync(join(base, "dist", "static")) ? base : null;
  } catch {
    return null;
  }
}

/**
 * The bull-board UI and API for every queue, mounted at `basePath` (auth is the caller's). When the
 * UI assets are missing (a pruned install, a bundle) the board answers 503 saying so; the rest of
 * the app is unaffected.
 */
export function createQueueBoard(queues: Queue[], basePath: string, log: Logger, uiBasePath = bullBoardUiPath()): Hono {
  if (!uiBasePath) {
    log.error({}, "bull-board UI assets (@bull-board/ui/dist) not found: /admin/queues answers 503");
    const unavailable = new Hono();
    unavailable.all("*", (c) =>
      c.text("The queue board is unavailable: the @bull-board/ui assets are not installed (npm install @bull-board/ui). The dashboard at /admin still works.", 503),
    );
    return unavailable;
  }
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiBasePath, uiConfig: { boardTitle: "İYS hub queues" } },
  });
  const board = new Hono();
  // Jobs come from the hub alone: ids that make them idempotent, data without personal data, and a
  // row in SQLite the sweeper enqueues again. A job added or edited by hand has none of that.
  for (const path of REFUSED) {
    // Every method: bull-board's own (POST add, PATCH update-data) and any a later version may use.
    board.all(path, (c) =>
      c.json({ error: `${basePath}${path} is turned off on this hub: jobs come from the hub itself (retry, promote and clean them here; fix data at its source)` }, 403),
    );
  }
  for (const path of HELD) {
    board.all(path, (c) =>
      c.json({ error: `${basePath}${path} is turned off on this hub: a queue paused, emptied, slowed or a job held back leaves refusals unapplied and unconfirmed past their deadline (resuming a queue, retrying, promoting and removing jobs and cleaning finished ones are allowed)` }, 403),
    );
  }
  // Cleaning takes finished jobs away; waiting, delayed or prioritised ones are work still to do.
  board.all("/api/queues/:queueName/clean/:queueStatus", async (c, next) => {
    if (["completed", "failed"].includes(c.req.param("queueStatus"))) return next();
    return c.json({ error: `cleaning ${c.req.param("queueStatus")} jobs is turned off on this hub: only completed and failed jobs may be cleaned (the others are work still to do)` }, 403);
  });
  // The rate limit may be read, not set.
  board.on(["POST", "PUT", "PATCH", "DELETE"], "/api/queues/:queueName/rate-limit", (c) =>
    c.json({ error: `setting a queue's rate limit is turned off on this hub: a refusal must not wait behind it` }, 403),
  );
  board.route("/", serverAdapter.registerPlugin() as unknown as Hono);
  return board;
}

/** bull-board actions that would put jobs in the queues the hub did not make. */
const REFUSED = ["/api/queues/:queueName/add", "/api/queues/:queueName/:jobId/update-data"] as const;

/**
 * bull-board actions that stop or slow the hub's work: a paused consent queue leaves every RET
 * received meanwhile unapplied (the pre-send check applies what it asks about, nothing else does),
 * and nothing on the hub's own pages would say so.
 */
const HELD = [
  "/api/queues/pause",
  "/api/queues/:queueName/pause",
  "/api/queues/:queueName/empty",
  "/api/queues/:queueName/obliterate",
  "/api/queues/:queueName/concurrency",
  "/api/queues/:queueName/:jobId/delay",
  "/api/queues/:queueName/:jobId/priority",
] as const;
