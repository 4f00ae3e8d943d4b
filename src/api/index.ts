import type { AppDeps, HonoEnv } from "../env";
import { bearerAuth } from "./auth";
import { createCheckRoutes } from "./check";
import { apiRouter } from "./openapi";
import { createBrandRoutes } from "./brands";
import { createConsentRoutes } from "./consents";

/** The provider API under /api/v1 (bearer API key). */
export function createApiRoutes(deps: AppDeps) {
  return apiRouter()
    .use("*", bearerAuth(deps.config.HUB_ADMIN_KEY))
    .route("/brands", createBrandRoutes(deps))
    .route("/consents", createConsentRoutes(deps))
    .route("/check", createCheckRoutes(deps));
}
