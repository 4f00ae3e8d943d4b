import { Hono } from "hono";
import { adminKeyMatches } from "../admin/session";
import type { Config } from "../config";
import type { HonoEnv } from "../env";
import { ApiError } from "../errors";
import type { Metrics } from "./index";
import type { KeyGuessGuard } from "../api/auth";

/**
 * `GET /metrics` in the Prometheus text format. Scrapers authenticate with
 * `Authorization: Bearer <METRICS_TOKEN>` (or the admin key), so the admin key need not live in
 * the Prometheus configuration.
 */
export function createMetricsRoutes(config: Pick<Config, "HUB_ADMIN_KEY" | "METRICS_TOKEN">, metrics: Metrics, guard: KeyGuessGuard) {
  return new Hono<HonoEnv>().get("/", async (c) => {
    const m = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "");
    const presented = m?.[1]?.trim();
    if (!config.HUB_ADMIN_KEY && !config.METRICS_TOKEN) throw new ApiError("unauthorized", "metrics are disabled: set METRICS_TOKEN or HUB_ADMIN_KEY");
    if (!presented) throw new ApiError("unauthorized", "missing Authorization: Bearer <METRICS_TOKEN or admin key>");
    // The admin key may be presented here too: its guesses count like the API's.
    guard.admit(c);
    if (!adminKeyMatches(presented, config.METRICS_TOKEN) && !adminKeyMatches(presented, config.HUB_ADMIN_KEY)) {
      await guard.failed(c, presented);
      throw new ApiError("unauthorized", "invalid metrics token");
    }
    const { contentType, body } = await metrics.exposition();
    return c.body(body, 200, { "content-type": contentType, "cache-control": "no-store" });
  });
}
