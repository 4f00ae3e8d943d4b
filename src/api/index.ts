import type { AppDeps } from "../env";
import { bearerAuth, keyGuessGuard } from "./auth";
import { createBrandRoutes } from "./brands";
import { createCheckRoutes } from "./check";
import { createConsentRoutes } from "./consents";
import { createImportRoutes } from "./imports";
import { createLedgerPublicRoutes, createLedgerRoutes } from "./ledger";
import { apiRouter, withRecentExampleDates } from "./openapi";
import { createLinkApiRoutes } from "./links";
import { createKeyRoutes } from "./keys";
import { createNumberRoutes } from "./numbers";
import { createDeliveryRoutes, createPartnerReportRoutes, createPartnerRoutes, createSubscriptionRoutes, registerCallbackWebhooks } from "./callbacks";
import { createReportRoutes } from "./reports";

/** The paths under /api/v1 anyone may read (GET). */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/api/v1/openapi.json", "/api/v1/ledger/public-key"]);

/** The provider API under /api/v1 (bearer API key), described at /api/v1/openapi.json. */
export function createApiRoutes(deps: AppDeps) {
  const api = apiRouter();
  api.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "HUB_ADMIN_KEY, or a provider key from /api/v1/keys (acts only on its brands)",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "partnerKey", {
    type: "http",
    scheme: "bearer",
    description: "a partner's own key, answered once when the partner was registered",
  });
  registerCallbackWebhooks(api.openAPIRegistry);
  // Public: registered before the key check, which they never reach. Built at its first request
  // (every route is registered by then) and kept: building it took 20–90 ms a request, on a public path.
  // Only the examples' consent date is made anew each time (withRecentExampleDates).
  let document: string | undefined;
  api.get("/openapi.json", (c) => {
    document ??= JSON.stringify(
      api.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "İYS consent hub API",
          version: "1",
          description: "Consents, the pre-send check, rejection links, callbacks and ledger proofs. Errors: `{ error: { code, message, requestId, field? } }`.",
        },
        servers: [{ url: `${deps.config.PUBLIC_BASE_URL}/api/v1` }],
      }),
    );
    return c.body(withRecentExampleDates(document, deps.clock.now().getTime()), 200, { "content-type": "application/json" });
  });
  api.route("/ledger", createLedgerPublicRoutes(deps));
  // A partner authenticates with its own key (and never reaches the rest).
  api.route("/partners", createPartnerReportRoutes(deps));

  const auth = bearerAuth(deps.config.HUB_ADMIN_KEY, deps.db, keyGuessGuard(deps));
  return api
    // A public path asked with another method needs no key to be told so: it goes on to the 405 naming GET.
    .use("*", (c, next) => (PUBLIC_PATHS.has(c.req.path) ? next() : auth(c, next)))
    .route("/brands", createBrandRoutes(deps))
    .route("/consents", createConsentRoutes(deps))
    .route("/check", createCheckRoutes(deps))
    .route("/ledger", createLedgerRoutes(deps))
    .route("/links", createLinkApiRoutes(deps))
    .route("/brands", createPartnerRoutes(deps))
    .route("/numbers", createNumberRoutes(deps))
    .route("/subscriptions", createSubscriptionRoutes(deps))
    .route("/deliveries", createDeliveryRoutes(deps))
    .route("/imports", createImportRoutes(deps))
    .route("/reports", createReportRoutes(deps))
    .route("/keys", createKeyRoutes(deps));
}
