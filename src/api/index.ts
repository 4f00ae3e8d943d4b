import { Hono } from "hono";
import type { AppDeps, HonoEnv } from "../env";
import { bearerAuth } from "./auth";
import { createBrandRoutes } from "./brands";
import { createConsentRoutes } from "./consents";
import { createLinkApiRoutes } from "./links";

/** The provider API under /api/v1 (bearer API key). */
export function createApiRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>()
    .use("*", bearerAuth(deps.config.HUB_ADMIN_KEY))
    .route("/brands", createBrandRoutes(deps))
    .route("/consents", createConsentRoutes(deps))
    .route("/links", createLinkApiRoutes(deps));
}
