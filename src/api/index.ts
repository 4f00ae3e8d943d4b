import { Hono } from "hono";
import type { AppDeps, HonoEnv } from "../env";
import { bearerAuth } from "./auth";
import { createBrandRoutes } from "./brands";
import { createConsentRoutes } from "./consents";
import { createDeliveryRoutes, createPartnerReportRoutes, createPartnerRoutes, createSubscriptionRoutes } from "./callbacks";

/** The provider API under /api/v1 (bearer API key); partner reports carry the partner's own key. */
export function createApiRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>()
    // Before the admin key check: a partner authenticates with its own key (and never reaches the rest).
    .route("/partners", createPartnerReportRoutes(deps))
    .use("*", bearerAuth(deps.config.HUB_ADMIN_KEY))
    .route("/brands", createBrandRoutes(deps))
    .route("/consents", createConsentRoutes(deps))
    .route("/brands", createPartnerRoutes(deps))
    .route("/subscriptions", createSubscriptionRoutes(deps))
    .route("/deliveries", createDeliveryRoutes(deps));
}
