import { createRoute, z } from "@hono/zod-openapi";
import { stmt } from "../../db/index";
import { callbackEventTypes, endpointStatuses } from "../../db/schema";
import { insertCallbackRows, releaseWaitingRows, replayTarget } from "../../jobs/deliver-callback.handler";
import { brandByCode, brandById } from "../brands";
import { apiKeyHash, callbackSecretsKey, encryptSecret, newApiKey, newWebhookSecret } from "../callbacks/crypto";
import {
  bumpEndpointVersion,
  deleteEndpoint,
  getEndpoint,
  insertEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  updateEndpoint,
  deliveryLog,
  presentDelivery,
  type EndpointRow,
} from "../callbacks/store";
import { checkTarget } from "../callbacks/target";
import type { AppDeps, HonoEnv } from "../env";
import { ApiError } from "../errors";
import { assertBrandAccess, keyGuessGuard, requireAdmin } from "./auth";
import { answerCheck, CheckInput, CheckOutput } from "./check";
import { ConsentInput, Recorded, consentExample, recordConsent } from "./consents";
import { apiRouter, bearerSecurity, conflictResponse, digits, errorResponses, jsonBody, jsonResponse, requireJson } from "./openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";

/** İYS allows a brand at most 3000 partners (bayi / acente). */
export const MAX_PARTNERS_PER_BRAND = 3000;

const Url = z.string().trim().min(1).max(2048);
const Brands = z.union([z.literal("*"), z.array(z.string().trim().min(1)).min(1).max(1000)], {
  error: (issue) => (issue.input === undefined ? "required" : 'a list of brand codes (["MIGROS"]), or "*" for every brand'),
});
const Events = z.array(z.enum(callbackEventTypes)).min(1).max(callbackEventTypes.length);

const SubscriptionInput = z
  .object({
    url: Url.openapi({ example: "https://provider.example.com/hooks/consent" }),
    brands: Brands.default("*").openapi({ description: 'brand codes, or "*" for every brand' }),
    events: Events.default(["consent.changed"]),
    description: z.string().trim().max(500).nullish(),
  })
  // A misspelt "brands" would leave "*" in force: every brand's changes to this URL. Unknown fields are a 400.
  .strict()
  .openapi("SubscriptionRequest", { example: { url: "https://provider.example.com/hooks/consent", brands: ["MIGROS"], events: ["consent.changed"] } });

const SubscriptionPatch = z
  .object({
    url: Url.optional(),
    brands: Brands.optional(),
    events: Events.optional(),
    description: z.string().trim().max(500).nullable().optional(),
    status: z.enum(endpointStatuses).optional(),
  })
  .strict()
  .openapi("SubscriptionPatch", { example: { status: "active" } });

const ReplaySince = z.object({
  since: z.iso.datetime({ offset: true, message: "an ISO 8601 date-time, e.g. 2026-11-25T09:00:00Z" }),
  /** `failed` (default): rows that ended failed, exhausted or skipped; `all`: every delivery since then. */
  only: z.enum(["failed", "all"]).default("failed"),
})
  .strict()
  .openapi("ReplayRequest", { example: { since: "2026-11-25T09:00:00Z", only: "failed" } });

const PartnerInput = z.object({
  retailerCode: z
    .union([z.string(), z.number()], { error: (issue) => (issue.input === undefined ? "required" : "8 digits") })
    .transform((v) => String(v).trim())
    .pipe(z.string().regex(/^\d{8}$/, "8 digits")),
  name: z.string().trim().min(1).max(200),
  url: Url.nullish().openapi({ description: "where the partner receives the brand's changes (optional)" }),
})
  .strict()
  .openapi("PartnerRequest", { example: { retailerCode: "12345678", name: "Bayi Kadıköy", url: "https://bayi.example.com/hooks/iys" } });

const ReplayAccepted = z.object({ replayed: z.number().int(), outboxIds: z.array(z.number().int()) }).openapi("ReplayAccepted");

const PartnerPatch = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    url: Url.nullable().optional().openapi({ description: "a new URL (a partner without one gets an endpoint and its secret), or null to stop deliveries" }),
    status: z.enum(endpointStatuses).optional().openapi({ description: '`"active"` re-enables an endpoint the hub disabled after failing too long' }),
  })
  .strict()
  .openapi("PartnerPatch", { example: { url: "https://bayi.example.com/hooks/iys-v2" } });

const DeliveriesQuery = z.object({
  limit: digits().pipe(z.number().int().min(1).max(1000)).default(100).openapi({ example: "100" }),
  failed: z.enum(["true", "false"]).optional().openapi({ description: "only failed attempts" }),
});

const EndpointOut = z
  .object({
    id: z.string().openapi({ example: "ep_…" }),
    kind: z.enum(["subscription", "partner"]),
    url: z.string(),
    brands: z.union([z.literal("*"), z.array(z.string())]),
    events: z.array(z.enum(callbackEventTypes)),
    description: z.string().nullable(),
    status: z.enum(endpointStatuses),
    failingSince: z.string().nullable(),
    disabledAt: z.string().nullable(),
    disabledReason: z.string().nullable(),
    previousSecretValidUntil: z.string().nullable().openapi({ description: "after a rotation, the old secret also signs until then" }),
    createdAt: z.string(),
  })
  .openapi("Subscription");
const WithSecret = EndpointOut.extend({
  secret: z.string().openapi({ description: "the Standard Webhooks signing secret (`whsec_…`): shown only here" }),
}).openapi("SubscriptionWithSecret");

const DeliveryOut = z
  .object({
    id: z.number().int(),
    outboxId: z.number().int(),
    eventId: z.number().int().nullable(),
    attempt: z.number().int(),
    ok: z.boolean(),
    responseCode: z.number().int().nullable(),
    latencyMs: z.number().nullable(),
    error: z.string().nullable(),
    at: z.string(),
    deliveryStatus: z.string().nullable(),
  })
  .openapi("DeliveryAttempt");
const DeliveryLogOut = z.object({ endpointId: z.string().nullable(), deliveries: z.array(DeliveryOut) }).openapi("DeliveryLog");

const PartnerOut = z
  .object({
    brand: z.string(),
    retailerCode: z.string().openapi({ example: "12345678" }),
    name: z.string(),
    url: z.string().nullable(),
    endpointId: z.string().nullable(),
    endpointStatus: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Partner");
const CreatedPartner = PartnerOut.extend({
  secret: z.string().optional().openapi({ description: "signing secret of its endpoint (when `url` was given): shown only here" }),
  apiKey: z.string().openapi({ description: "the partner's own key for POST /partners/{retailerCode}/consents: shown only here" }),
}).openapi("CreatedPartner");

const ChangedPartner = PartnerOut.extend({
  secret: z.string().optional().openapi({ description: "signing secret of a newly created endpoint (a URL given to a partner that had none): shown only here" }),
}).openapi("ChangedPartner");
const PartnerWithSecret = PartnerOut.extend({
  secret: z.string().openapi({ description: "the new signing secret: shown only here" }),
  previousSecretValidUntil: z.string().nullable().openapi({ description: "the old secret also signs until then" }),
}).openapi("PartnerWithSecret");
const PartnerWithKey = PartnerOut.extend({
  apiKey: z.string().openapi({ description: "the partner's new API key: shown only here; the old one is refused from now on" }),
}).openapi("PartnerWithKey");

const SubscriptionId = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example: "ep_0123456789abcdef" }) });
const BrandParam = z.string().openapi({ param: { name: "brand", in: "path" }, example: "MIGROS" });
const RetailerParam = z.string().openapi({ param: { name: "retailerCode", in: "path" }, example: "12345678" });
const adminOnly = "Admin key only (a provider key gets 403).";

async function requireSafeUrl(deps: AppDeps, url: string): Promise<string> {
  const check = await checkTarget(url, deps.config.CALLBACK_ALLOW_PRIVATE);
  if (!check.ok) throw new ApiError("bad_request", `url: ${check.reason}`, { field: "url" });
  return check.url.toString();
}

function brandIds(deps: AppDeps, brands: string[] | "*"): number[] | "*" {
  if (brands === "*") return "*";
  return [
    ...new Set(
      brands.map((code, i) => {
        const b = brandByCode(deps.db, code);
        if (!b) throw new ApiError("bad_request", `brands[${i}]: brand ${code} not found`, { field: `brands[${i}]` });
        return b.id;
      }),
    ),
  ];
}

function presentEndpoint(deps: AppDeps, e: EndpointRow) {
  const now = deps.clock.now().getTime();
  return {
    id: e.id,
    kind: e.kind,
    url: e.url,
    brands: e.brands === "*" ? ("*" as const) : e.brands.map((id) => brandById(deps.db, id)?.code ?? String(id)),
    events: e.events,
    description: e.description,
    status: e.status,
    failingSince: e.failingSince ? new Date(e.failingSince).toISOString() : null,
    disabledAt: e.disabledAt ? new Date(e.disabledAt).toISOString() : null,
    disabledReason: e.disabledReason,
    previousSecretValidUntil: e.previousSecretExpiresAt && e.previousSecretExpiresAt > now ? new Date(e.previousSecretExpiresAt).toISOString() : null,
    createdAt: new Date(e.createdAt).toISOString(),
  };
}

function subscription(deps: AppDeps, id: string): EndpointRow {
  const e = getEndpoint(deps.db, id);
  if (!e || e.kind !== "subscription") throw new ApiError("not_found", `subscription ${id} not found`);
  return e;
}

const sub = <M extends "get" | "post" | "patch" | "delete">(method: M, path: string) => ({ method, path, security: bearerSecurity, middleware: [requireAdmin] });

const createSubscriptionRoute = createRoute({
  ...sub("post", "/"),
  middleware: [requireAdmin, requireJson],
  summary: "Subscribe an endpoint to consent changes",
  description: `${adminOnly} The URL must be public HTTPS (checked now and at every delivery). Deliveries are signed per Standard Webhooks with the \`secret\` answered here (only here).`,
  request: { body: jsonBody(SubscriptionInput, "the endpoint", { url: "https://provider.example.com/hooks/consent", brands: ["MIGROS"], events: ["consent.changed"] }) },
  responses: { 201: jsonResponse(WithSecret, "Subscribed"), ...errorResponses },
});
const listSubscriptionsRoute = createRoute({
  ...sub("get", "/"),
  summary: "List subscriptions",
  description: adminOnly,
  responses: { 200: jsonResponse(z.object({ subscriptions: z.array(EndpointOut) }).openapi("SubscriptionList"), "The subscriptions"), ...errorResponses },
});
const getSubscriptionRoute = createRoute({
  ...sub("get", "/{id}"),
  summary: "Read a subscription",
  description: adminOnly,
  request: { params: SubscriptionId },
  responses: { 200: jsonResponse(EndpointOut, "The subscription"), ...errorResponses },
});
const patchSubscriptionRoute = createRoute({
  ...sub("patch", "/{id}"),
  middleware: [requireAdmin, requireJson],
  summary: "Change a subscription (URL, brands, events, status)",
  description: `${adminOnly} \`status: "active"\` re-enables an endpoint the hub disabled after failing too long.`,
  request: { params: SubscriptionId, body: jsonBody(SubscriptionPatch, "the fields to change", { status: "active" }) },
  responses: { 200: jsonResponse(EndpointOut, "The subscription as changed"), ...errorResponses },
});
const rotateSecretRoute = createRoute({
  ...sub("post", "/{id}/rotate-secret"),
  summary: "Rotate a subscription's signing secret",
  description: `${adminOnly} No body. The new secret signs from now on; the old one also signs (a second signature) for CALLBACK_SECRET_OVERLAP_HOURS.`,
  request: { params: SubscriptionId },
  responses: { 200: jsonResponse(WithSecret, "The new secret"), ...errorResponses },
});
const deleteSubscriptionRoute = createRoute({
  ...sub("delete", "/{id}"),
  summary: "Delete a subscription",
  description: adminOnly,
  request: { params: SubscriptionId },
  responses: { 204: { description: "Deleted" }, ...errorResponses },
});
const subscriptionDeliveriesRoute = createRoute({
  ...sub("get", "/{id}/deliveries"),
  summary: "A subscription's delivery log",
  description: `${adminOnly} One row per HTTP attempt, newest first.`,
  request: { params: SubscriptionId, query: DeliveriesQuery },
  responses: { 200: jsonResponse(DeliveryLogOut, "The attempts"), ...errorResponses },
});
const replaySinceRoute = createRoute({
  ...sub("post", "/{id}/replay"),
  middleware: [requireAdmin, requireJson],
  summary: "Redeliver a subscription's events since a time",
  description: `${adminOnly} The newest delivery of each event since \`since\` that ended failed (or every one, \`only: "all"\`) is delivered again under the same webhook-id. 409 while the subscription is disabled.`,
  request: { params: SubscriptionId, body: jsonBody(ReplaySince, "from when", { since: "2026-11-25T09:00:00Z", only: "failed" }) },
  responses: {
    202: jsonResponse(ReplayAccepted, "Queued"),
    ...errorResponses,
    409: conflictResponse,
  },
});

/** A new signing secret for an endpoint; the old one keeps signing (a second signature) for the overlap. */
function rotateSecret(deps: AppDeps, e: EndpointRow): string {
  const secret = newWebhookSecret();
  const now = deps.clock.now().getTime();
  const secretEnc = encryptSecret(callbackSecretsKey(deps.config, deps.secrets), secret);
  rotateEndpointSecret(deps.db, e.id, secretEnc, now + deps.config.CALLBACK_SECRET_OVERLAP_HOURS * 3_600_000, now);
  deps.log.info({ endpointId: e.id }, "endpoint secret rotated");
  return secret;
}

/** Queues again the newest delivery of each event since `since` to the endpoint (failed ones, or all). */
async function replaySince(deps: AppDeps, e: EndpointRow, input: z.infer<typeof ReplaySince>) {
  if (e.status !== "active") throw new ApiError("conflict", `endpoint ${e.id} is disabled: enable it (PATCH status "active") before replaying`);
  const statuses = input.only === "all" ? ["done", "failed", "exhausted", "skipped"] : ["failed", "exhausted", "skipped"];
  // The newest row per event: a replay of a replay is still one delivery per event. "Since" is when
  // the hub recorded the change, not when its newest row was made (a replay's): a second replay
  // since a later time sent again every change the first one had replayed.
  const rows = deps.db.$client
    .prepare(
      `SELECT o.event_id AS eventId, o.target FROM outbox o JOIN consent_events e ON e.id = o.event_id
       WHERE o.kind = 'callback' AND o.target = ? AND e.received_at >= ?
         AND o.id = (SELECT max(id) FROM outbox o2 WHERE o2.kind = 'callback' AND o2.target = o.target AND o2.event_id = o.event_id)
         AND o.status IN (${statuses.map(() => "?").join(", ")}) ORDER BY o.event_id LIMIT 100000`,
    )
    .all(e.id, Date.parse(input.since), ...statuses) as { eventId: number; target: string }[];
  const refs = insertCallbackRows(deps.db, rows, deps.clock.now().getTime());
  await deps.jobs.enqueueOutbox(refs);
  return { replayed: refs.length, outboxIds: refs.slice(0, 1000).map((r) => r.id) };
}


/** `/api/v1/subscriptions`: the provider's own callback endpoints (admin key only). */
export function createSubscriptionRoutes(deps: AppDeps) {
  const key = () => callbackSecretsKey(deps.config, deps.secrets);
  const now = () => deps.clock.now().getTime();
  return apiRouter()
    .openapi(createSubscriptionRoute, async (c) => {
      const input = c.req.valid("json");
      const url = await requireSafeUrl(deps, input.url);
      const brands = brandIds(deps, input.brands);
      const secret = newWebhookSecret();
      const e = insertEndpoint(
        deps.db,
        { kind: "subscription", brands, events: input.events, url, description: input.description ?? null, secretEnc: encryptSecret(key(), secret) },
        now(),
      );
      deps.log.info({ endpointId: e.id }, "subscription created");
      return c.json({ ...presentEndpoint(deps, e), secret }, 201);
    })
    .openapi(listSubscriptionsRoute, (c) => c.json({ subscriptions: listEndpoints(deps.db, "subscription").map((e) => presentEndpoint(deps, e)) }, 200))
    .openapi(getSubscriptionRoute, (c) => c.json(presentEndpoint(deps, subscription(deps, c.req.valid("param").id)), 200))
    .openapi(patchSubscriptionRoute, async (c) => {
      const e = subscription(deps, c.req.valid("param").id);
      const input = c.req.valid("json");
      const urlBefore = e.url;
      updateEndpoint(
        deps.db,
        e.id,
        {
          url: input.url === undefined ? undefined : await requireSafeUrl(deps, input.url),
          brands: input.brands === undefined ? undefined : brandIds(deps, input.brands),
          events: input.events,
          description: input.description,
          status: input.status,
        },
        now(),
      );
      // Rows that waited for it while it failed go now, to a new URL (their retries too) or the endpoint enabled again.
      const after = getEndpoint(deps.db, e.id)!;
      const newUrl = after.url !== urlBefore;
      if (after.status === "active" && (newUrl || (input.status === "active" && e.status !== "active"))) {
        await releaseWaitingRows({ ...deps, enqueueOutbox: deps.jobs.enqueueOutbox }, e.id, now(), { retries: newUrl });
      }
      return c.json(presentEndpoint(deps, after), 200);
    })
    .openapi(rotateSecretRoute, (c) => {
      const e = subscription(deps, c.req.valid("param").id);
      const secret = rotateSecret(deps, e);
      return c.json({ ...presentEndpoint(deps, getEndpoint(deps.db, e.id)!), secret }, 200);
    })
    .openapi(deleteSubscriptionRoute, (c) => {
      const e = subscription(deps, c.req.valid("param").id);
      deleteEndpoint(deps.db, e.id);
      return c.body(null, 204);
    })
    .openapi(subscriptionDeliveriesRoute, (c) => {
      const e = subscription(deps, c.req.valid("param").id);
      const q = c.req.valid("query");
      return c.json({ endpointId: e.id, deliveries: deliveryLog(deps.db, e.id, { limit: q.limit, failedOnly: q.failed === "true" }).map(presentDelivery) }, 200);
    })
    .openapi(replaySinceRoute, async (c) => c.json(await replaySince(deps, subscription(deps, c.req.valid("param").id), c.req.valid("json")), 202));
}

const replayDeliveryRoute = createRoute({
  ...sub("post", "/{outboxId}/replay"),
  summary: "Redeliver one delivery",
  description: `${adminOnly} No body. A new attempt series of a finished delivery (subscription or partner), under the same webhook-id. 409 while it is still pending or its endpoint is disabled or gone.`,
  request: { params: z.object({ outboxId: digits("a delivery id").openapi({ param: { name: "outboxId", in: "path" }, example: "1234" }) }) },
  responses: {
    202: jsonResponse(z.object({ replayOf: z.number().int(), outboxId: z.number().int() }).openapi("DeliveryReplayAccepted"), "Queued"),
    ...errorResponses,
    409: conflictResponse,
  },
});

/** `/api/v1/deliveries`: one delivery replayed (a new attempt series with the same webhook-id). */
export function createDeliveryRoutes(deps: AppDeps) {
  return apiRouter().openapi(replayDeliveryRoute, async (c) => {
    const { outboxId: id } = c.req.valid("param");
    const row = stmt(deps.db, `SELECT id, event_id AS eventId, target, status FROM outbox WHERE id = ? AND kind = 'callback'`).get(id) as
      | { id: number; eventId: number | null; target: string; status: string }
      | undefined;
    if (!row) throw new ApiError("not_found", `delivery ${id} not found`);
    if (row.status === "pending") throw new ApiError("conflict", `delivery ${id} is still pending`);
    const endpoint = getEndpoint(deps.db, row.target.split("/")[0]!);
    if (!endpoint) throw new ApiError("conflict", "its endpoint was deleted");
    if (endpoint.status !== "active") throw new ApiError("conflict", `endpoint ${endpoint.id} is disabled`);
    const refs = insertCallbackRows(deps.db, [{ eventId: row.eventId, target: replayTarget(row) }], deps.clock.now().getTime());
    await deps.jobs.enqueueOutbox(refs);
    return c.json({ replayOf: id, outboxId: refs[0]!.id }, 202);
  });
}

interface PartnerRow {
  id: number;
  brandId: number;
  retailerCode: string;
  name: string;
  url: string | null;
  createdAt: number;
  endpointId: string | null;
  endpointStatus: string | null;
}

const PARTNER_SELECT = `SELECT p.id, p.brand_id AS brandId, p.retailer_code AS retailerCode, p.name, ep.url, p.created_at AS createdAt,
  ep.id AS endpointId, ep.status AS endpointStatus FROM partners p LEFT JOIN endpoints ep ON ep.partner_id = p.id`;

const presentPartner = (brand: string, p: PartnerRow) => ({
  brand,
  retailerCode: p.retailerCode,
  name: p.name,
  url: p.url,
  endpointId: p.endpointId,
  endpointStatus: p.endpointStatus,
  createdAt: new Date(p.createdAt).toISOString(),
});

const PartnerParams = z.object({ brand: BrandParam });
const OnePartnerParams = z.object({ brand: BrandParam, retailerCode: RetailerParam });
const partnerScope = "For the admin key or a provider key scoped to the brand.";

const createPartnerRoute = createRoute({
  method: "post",
  path: "/{brand}/partners",
  summary: "Register a partner (bayi / acente) of a brand",
  description: `${partnerScope} At most ${MAX_PARTNERS_PER_BRAND} per brand (409 beyond, and for a retailer code taken). The answer carries, once, the partner's own API key (for reporting changes it received) and, with \`url\`, the signing secret of the endpoint that receives the brand's changes.`,
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: {
    params: PartnerParams,
    body: jsonBody(PartnerInput, "the partner", { retailerCode: "12345678", name: "Bayi Kadıköy", url: "https://bayi.example.com/hooks/iys" }),
  },
  responses: { 201: jsonResponse(CreatedPartner, "Registered"), ...errorResponses, 409: conflictResponse },
});
const listPartnersRoute = createRoute({
  method: "get",
  path: "/{brand}/partners",
  summary: "List a brand's partners",
  description: partnerScope,
  security: bearerSecurity,
  request: { params: PartnerParams },
  responses: {
    200: jsonResponse(z.object({ brand: z.string(), partners: z.array(PartnerOut) }).openapi("PartnerList"), "The partners, by retailer code"),
    ...errorResponses,
  },
});
const getPartnerRoute = createRoute({
  method: "get",
  path: "/{brand}/partners/{retailerCode}",
  summary: "Read one partner",
  description: partnerScope,
  security: bearerSecurity,
  request: { params: OnePartnerParams },
  responses: { 200: jsonResponse(PartnerOut, "The partner"), ...errorResponses },
});
const partnerDeliveriesRoute = createRoute({
  method: "get",
  path: "/{brand}/partners/{retailerCode}/deliveries",
  summary: "A partner endpoint's delivery log",
  description: `${partnerScope} Empty when the partner has no URL.`,
  security: bearerSecurity,
  request: { params: OnePartnerParams, query: DeliveriesQuery },
  responses: { 200: jsonResponse(DeliveryLogOut, "The attempts"), ...errorResponses },
});
const deletePartnerRoute = createRoute({
  method: "delete",
  path: "/{brand}/partners/{retailerCode}",
  summary: "Remove a partner (and its endpoint and key)",
  description: partnerScope,
  security: bearerSecurity,
  request: { params: OnePartnerParams },
  responses: { 204: { description: "Removed" }, ...errorResponses },
});

const patchPartnerRoute = createRoute({
  method: "patch",
  path: "/{brand}/partners/{retailerCode}",
  summary: "Change a partner (name, URL, endpoint status)",
  description: `${partnerScope} A URL given to a partner that had none creates its endpoint, and the answer carries that endpoint's signing secret (only then). \`url: null\` removes the endpoint (deliveries stop). \`status\` needs an endpoint (409 without one).`,
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: { params: OnePartnerParams, body: jsonBody(PartnerPatch, "the fields to change", { url: "https://bayi.example.com/hooks/iys-v2" }) },
  responses: { 200: jsonResponse(ChangedPartner, "The partner as changed"), ...errorResponses, 409: conflictResponse },
});
const rotatePartnerSecretRoute = createRoute({
  method: "post",
  path: "/{brand}/partners/{retailerCode}/rotate-secret",
  summary: "Rotate a partner endpoint's signing secret",
  description: `${partnerScope} No body. The new secret signs from now on; the old one also signs (a second signature) for CALLBACK_SECRET_OVERLAP_HOURS. 409 for a partner without a URL.`,
  security: bearerSecurity,
  request: { params: OnePartnerParams },
  responses: { 200: jsonResponse(PartnerWithSecret, "The new secret"), ...errorResponses, 409: conflictResponse },
});
const rotatePartnerKeyRoute = createRoute({
  method: "post",
  path: "/{brand}/partners/{retailerCode}/rotate-key",
  summary: "Replace a partner's API key",
  description: `${partnerScope} No body. The old key is refused from this moment (a leaked key must stop working at once).`,
  security: bearerSecurity,
  request: { params: OnePartnerParams },
  responses: { 200: jsonResponse(PartnerWithKey, "The new key"), ...errorResponses },
});
const replayPartnerRoute = createRoute({
  method: "post",
  path: "/{brand}/partners/{retailerCode}/replay",
  summary: "Redeliver a partner's events since a time",
  description: `${partnerScope} As for subscriptions: the newest delivery of each event since \`since\` that ended failed (or every one, \`only: "all"\`) is delivered again under the same webhook-id. 409 for a partner without a URL or with a disabled endpoint.`,
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: { params: OnePartnerParams, body: jsonBody(ReplaySince, "from when", { since: "2026-11-25T09:00:00Z", only: "failed" }) },
  responses: { 202: jsonResponse(ReplayAccepted, "Queued"), ...errorResponses, 409: conflictResponse },
});

/** `/api/v1/brands/:brand/partners`: dealers and agents (bayi / acente) of a brand. */
export function createPartnerRoutes(deps: AppDeps) {
  const brandOf = (c: Context<HonoEnv>, code: string) => {
    assertBrandAccess(c, code);
    const b = brandByCode(deps.db, code);
    if (!b) throw new ApiError("not_found", `brand ${code} not found`);
    return b;
  };
  const partnerOf = (brandId: number, retailerCode: string) => {
    const p = stmt(deps.db, `${PARTNER_SELECT} WHERE p.brand_id = ? AND p.retailer_code = ?`).get(brandId, retailerCode) as PartnerRow | undefined;
    if (!p) throw new ApiError("not_found", `partner ${retailerCode} not found`);
    return p;
  };
  /** The brand (access checked) and the partner a `/{brand}/partners/{retailerCode}` path names. */
  const partnerAt = (c: Context<HonoEnv>, params: { brand: string; retailerCode: string }) => {
    const brand = brandOf(c, params.brand);
    return { brand, p: partnerOf(brand.id, params.retailerCode) };
  };
  /** The partner's endpoint, or a 409 saying why a partner without a URL cannot do `what`. */
  const endpointOf = (p: PartnerRow, what: string) => {
    const e = p.endpointId ? getEndpoint(deps.db, p.endpointId) : null;
    if (!e) throw new ApiError("conflict", `partner ${p.retailerCode} has no URL, so ${what}`);
    return e;
  };
  return apiRouter()
    .openapi(createPartnerRoute, async (c) => {
      const brand = brandOf(c, c.req.valid("param").brand);
      const input = c.req.valid("json");
      const url = input.url ? await requireSafeUrl(deps, input.url) : null;
      const secret = url ? newWebhookSecret() : null;
      const apiKey = newApiKey();
      const now = deps.clock.now().getTime();
      const secretEnc = secret ? encryptSecret(callbackSecretsKey(deps.config, deps.secrets), secret) : null;
      const created = deps.db.$client.transaction(() => {
        const { n } = stmt(deps.db, `SELECT count(*) AS n FROM partners WHERE brand_id = ?`).get(brand.id) as { n: number };
        const exists = stmt(deps.db, `SELECT 1 FROM partners WHERE brand_id = ? AND retailer_code = ?`).get(brand.id, input.retailerCode);
        if (exists) throw new ApiError("conflict", `partner ${input.retailerCode} already exists for ${brand.code}`, { field: "retailerCode" });
        if (n >= MAX_PARTNERS_PER_BRAND) throw new ApiError("conflict", `a brand has at most ${MAX_PARTNERS_PER_BRAND} partners`);
        const { id } = stmt(
          deps.db,
          `INSERT INTO partners (brand_id, retailer_code, name, api_key_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
        ).get(brand.id, input.retailerCode, input.name, apiKeyHash(apiKey), now) as { id: number };
        if (url && secretEnc) insertEndpoint(deps.db, { kind: "partner", brands: [brand.id], events: ["consent.changed"], url, secretEnc, partnerId: id }, now);
        else bumpEndpointVersion(deps.db);
        return partnerOf(brand.id, input.retailerCode);
      }).immediate();
      deps.log.info({ brand: brand.code, retailerCode: input.retailerCode }, "partner created");
      return c.json({ ...presentPartner(brand.code, created), ...(secret ? { secret } : {}), apiKey }, 201);
    })
    .openapi(listPartnersRoute, (c) => {
      const brand = brandOf(c, c.req.valid("param").brand);
      const rows = stmt(deps.db, `${PARTNER_SELECT} WHERE p.brand_id = ? ORDER BY p.retailer_code`).all(brand.id) as PartnerRow[];
      return c.json({ brand: brand.code, partners: rows.map((p) => presentPartner(brand.code, p)) }, 200);
    })
    .openapi(getPartnerRoute, (c) => {
      const { brand, p } = partnerAt(c, c.req.valid("param"));
      return c.json(presentPartner(brand.code, p), 200);
    })
    .openapi(partnerDeliveriesRoute, (c) => {
      const { p } = partnerAt(c, c.req.valid("param"));
      const q = c.req.valid("query");
      const log = p.endpointId ? deliveryLog(deps.db, p.endpointId, { limit: q.limit, failedOnly: q.failed === "true" }) : [];
      return c.json({ endpointId: p.endpointId, deliveries: log.map(presentDelivery) }, 200);
    })
    .openapi(patchPartnerRoute, async (c) => {
      const params = c.req.valid("param");
      const { brand, p } = partnerAt(c, params);
      const input = c.req.valid("json");
      const url = typeof input.url === "string" ? await requireSafeUrl(deps, input.url) : input.url;
      const before = p.endpointId ? getEndpoint(deps.db, p.endpointId) : null;
      const urlBefore = before?.url ?? null;
      const statusBefore = before?.status ?? null;
      const secret = url && !p.endpointId ? newWebhookSecret() : null;
      const secretEnc = secret ? encryptSecret(callbackSecretsKey(deps.config, deps.secrets), secret) : null;
      const now = deps.clock.now().getTime();
      const changed = deps.db.$client.transaction(() => {
        if (input.name !== undefined) stmt(deps.db, `UPDATE partners SET name = ? WHERE id = ?`).run(input.name, p.id);
        if (url === null && p.endpointId) deleteEndpoint(deps.db, p.endpointId);
        else if (url && p.endpointId) updateEndpoint(deps.db, p.endpointId, { url }, now);
        else if (url && secretEnc) insertEndpoint(deps.db, { kind: "partner", brands: [brand.id], events: ["consent.changed"], url, secretEnc, partnerId: p.id }, now);
        const after = partnerOf(brand.id, params.retailerCode);
        if (input.status === undefined) return after;
        if (!after.endpointId) throw new ApiError("conflict", `partner ${params.retailerCode} has no URL, so no endpoint status to change`, { field: "status" });
        updateEndpoint(deps.db, after.endpointId, { status: input.status }, now);
        return { ...after, endpointStatus: input.status };
      }).immediate();
      deps.log.info({ brand: brand.code, retailerCode: params.retailerCode, fields: Object.keys(input) }, "partner changed");
      const ep = changed.endpointId ? getEndpoint(deps.db, changed.endpointId) : null;
      const newUrl = ep !== null && typeof url === "string" && url !== urlBefore;
      if (ep && ep.status === "active" && (newUrl || (input.status === "active" && statusBefore !== "active"))) {
        await releaseWaitingRows({ ...deps, enqueueOutbox: deps.jobs.enqueueOutbox }, ep.id, now, { retries: newUrl });
      }
      return c.json({ ...presentPartner(brand.code, changed), ...(secret ? { secret } : {}) }, 200);
    })
    .openapi(rotatePartnerSecretRoute, (c) => {
      const { brand, p } = partnerAt(c, c.req.valid("param"));
      const e = endpointOf(p, "no signing secret");
      const secret = rotateSecret(deps, e);
      const until = presentEndpoint(deps, getEndpoint(deps.db, e.id)!).previousSecretValidUntil;
      return c.json({ ...presentPartner(brand.code, p), secret, previousSecretValidUntil: until }, 200);
    })
    .openapi(rotatePartnerKeyRoute, (c) => {
      const { brand, p } = partnerAt(c, c.req.valid("param"));
      const apiKey = newApiKey();
      stmt(deps.db, `UPDATE partners SET api_key_hash = ? WHERE id = ?`).run(apiKeyHash(apiKey), p.id);
      deps.log.info({ brand: brand.code, retailerCode: p.retailerCode }, "partner API key replaced");
      return c.json({ ...presentPartner(brand.code, p), apiKey }, 200);
    })
    .openapi(replayPartnerRoute, async (c) => {
      const { p } = partnerAt(c, c.req.valid("param"));
      return c.json(await replaySince(deps, endpointOf(p, "nothing to replay"), c.req.valid("json")), 202);
    })
    .openapi(deletePartnerRoute, (c) => {
      const { p } = partnerAt(c, c.req.valid("param"));
      deps.db.$client.transaction(() => {
        stmt(deps.db, `DELETE FROM endpoints WHERE partner_id = ?`).run(p.id);
        stmt(deps.db, `DELETE FROM partners WHERE id = ?`).run(p.id);
        bumpEndpointVersion(deps.db);
      })();
      return c.body(null, 204);
    });
}

const partnerReportRoute = createRoute({
  method: "post",
  path: "/{retailerCode}/consents",
  summary: "A partner reports a consent change it received",
  description:
    "Authenticated with the partner's own API key (answered when the partner was registered), not a provider key. Same rules and ledger as POST /consents; `retailerCode` is recorded and the change fans out to the brand's subscribers and every other partner. An unknown partner and a wrong key are the same 401; a brand the key is no partner of (or none) is a 403 naming it.",
  security: [{ partnerKey: [] as string[] }],
  middleware: [requireJson] as const,
  request: { params: z.object({ retailerCode: RetailerParam }), body: jsonBody(ConsentInput, "the movement, as İYS takes it", consentExample) },
  responses: {
    201: jsonResponse(Recorded, "Recorded"),
    200: jsonResponse(Recorded, "Already recorded (idempotent replay)"),
    ...errorResponses,
  },
});

const partnerCheckRoute = createRoute({
  method: "post",
  path: "/{retailerCode}/check",
  summary: "A partner's pre-send check: which recipients may be sent to now",
  description:
    "The pre-send check (POST /check) for a dealer or agent, with the partner's own API key, on its brand: answered from the current state, so a partner registered after a refusal, or whose endpoint was down, still honours it. An unknown partner and a wrong key are the same 401; a brand the key is no partner of (or none) is a 403 naming it.",
  security: [{ partnerKey: [] as string[] }],
  middleware: [requireJson] as const,
  request: {
    params: z.object({ retailerCode: RetailerParam }),
    body: jsonBody(CheckInput, "the recipients about to be sent to", { brand: "MIGROS", type: "MESAJ", recipients: ["0532 123 45 67", "+905551112233"] }),
  },
  responses: { 200: jsonResponse(CheckOutput, "The recipients, split"), ...errorResponses },
});

/**
 * `POST /api/v1/partners/:retailerCode/consents`: a partner reports a change it received, with its
 * own API key (not the provider's). Same rules and ledger as the provider API; `retailerCode` is
 * recorded and the change fans out to the brand's subscribers and every other partner.
 */
export function createPartnerReportRoutes(deps: AppDeps) {
  const guard = keyGuessGuard(deps);
  /**
   * The key first, before the body is read or parsed (a partner's check takes a body of several
   * MiB): the brands whose partner of the path's retailer code holds it. One 401 for an unknown
   * partner, a wrong key and no key: nothing to probe.
   */
  const partnerKey = createMiddleware<HonoEnv>(async (c, next) => {
    const retailerCode = c.req.param("retailerCode") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "");
    if (!match) throw new ApiError("unauthorized", `missing Authorization: Bearer <partner API key>`);
    // Wrong partner keys count against the client like any other bearer key.
    guard.admit(c);
    const key = match[1]!.trim();
    const rows = stmt<[string, string], { brandId: number }>(deps.db, `SELECT brand_id AS brandId FROM partners WHERE api_key_hash = ? AND retailer_code = ?`).all(
      apiKeyHash(key),
      retailerCode,
    );
    if (rows.length === 0) {
      await guard.failed(c, key);
      throw new ApiError("unauthorized", `invalid API key for partner ${retailerCode}`);
    }
    c.set("partnerBrands", rows.map((r) => r.brandId));
    await next();
  });
  /**
   * The body's brand, when the key is its partner's. The key is good (checked above): another brand,
   * or one that does not exist, is a 403 naming it, as for a provider key, not a 401 saying the key
   * is wrong (the partner knows its brands; nothing is told about the one it named).
   */
  const partnerBrand = (c: Context<HonoEnv>, retailerCode: string, brandCode: string) => {
    const brand = brandByCode(deps.db, brandCode);
    if (!brand || !c.get("partnerBrands").includes(brand.id)) {
      throw new ApiError("forbidden", `partner ${retailerCode}'s key is not for brand ${brandCode}: report the brand whose partner it is`, { field: "brand" });
    }
    return brand;
  };
  const routes = apiRouter();
  routes.use("/:retailerCode/*", partnerKey);
  return routes
    .openapi(partnerReportRoute, async (c) => {
      const { retailerCode } = c.req.valid("param");
      const input = c.req.valid("json");
      const brand = partnerBrand(c, retailerCode, input.brand);
      if (input.retailerCode && input.retailerCode !== retailerCode) {
        throw new ApiError("bad_request", `retailerCode: ${input.retailerCode} is not the reporting partner ${retailerCode}`, { field: "retailerCode" });
      }
      const recorded = await recordConsent(deps, brand, input, { origin: "partner", retailerCode });
      c.header("Idempotent-Replayed", recorded.replayed ? "true" : "false");
      return recorded.replayed ? c.json(recorded.body, 200) : c.json(recorded.body, 201);
    })
    .openapi(partnerCheckRoute, async (c) => {
      const { retailerCode } = c.req.valid("param");
      const input = c.req.valid("json");
      const brand = partnerBrand(c, retailerCode, input.brand);
      return c.json(await answerCheck(deps, brand.id, input), 200);
    });
}

const WebhookHeaders = z.object({
  "webhook-id": z.string().openapi({ description: "evt_<eventId>_<endpointId>: the same on every retry and replay (deduplicate on it)", example: "evt_42_ep_3f2a" }),
  "webhook-timestamp": z.string().openapi({ description: "seconds since the epoch, fresh on every attempt (refuse old ones)", example: "1796320887" }),
  "webhook-signature": z.string().openapi({
    description:
      "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>, where key is the base64 part of the endpoint's whsec_ secret, decoded; two, space-separated, during a rotation's overlap",
    example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
  }),
});

export const ConsentChangedWebhook = z
  .object({
    type: z.literal("consent.changed"),
    timestamp: z.string().openapi({ description: "when the hub received the change (ISO 8601)" }),
    data: z.object({
      brand: z.string(),
      recipient: z.string().openapi({ description: "normalised: +90… or a lower-cased e-mail address" }),
      recipientType: z.enum(["BIREYSEL", "TACIR"]),
      type: z.enum(["MESAJ", "ARAMA", "EPOSTA"]),
      status: z.enum(["ONAY", "RET"]),
      source: z.string().nullable(),
      consentDate: z.string().nullable().openapi({ description: "YYYY-MM-DD HH:mm:ss, Europe/Istanbul (İYS format)" }),
      retailerCode: z.string().optional().openapi({ description: "the dealer or agent that reported it" }),
      eventId: z.number().int(),
      ledgerHash: z.string().openapi({ description: "the event's hash in the ledger (GET /ledger/events/{eventId}/proof proves it)" }),
    }),
  })
  .openapi("ConsentChanged", {
    example: {
      type: "consent.changed",
      timestamp: "2026-12-03T09:41:27.000Z",
      data: { brand: "MIGROS", recipient: "+905321234567", recipientType: "BIREYSEL", type: "MESAJ", status: "RET", source: "HS_MESAJ", consentDate: "2026-12-03 12:41:27", eventId: 42, ledgerHash: "9f2c…" },
    },
  });

export const EndpointDisabledWebhook = z
  .object({
    type: z.literal("endpoint.disabled"),
    timestamp: z.string(),
    data: z.object({
      endpointId: z.string(),
      kind: z.enum(["subscription", "partner"]).nullable(),
      url: z.string().nullable(),
      failingSince: z.string().nullable(),
      disabledAt: z.string().nullable(),
      reason: z.string().nullable(),
    }),
  })
  .openapi("EndpointDisabled");

const webhookResponses = {
  200: { description: "Any 2xx within CALLBACK_TIMEOUT_MS is a delivery. A 4xx other than 408, 425 and 429 refuses this body (a newer change of the consent goes instead); anything else is retried on CALLBACK_RETRY_SCHEDULE." },
};

/** What the hub POSTs to subscriptions and partners (Standard Webhooks), in the document's `webhooks`. */
export function registerCallbackWebhooks(registry: { registerWebhook(route: Parameters<typeof createRoute>[0]): void }): void {
  registry.registerWebhook({
    method: "post",
    path: "consent.changed",
    summary: "A consent changed (any channel, import, partner report, İYS): sent to the brand's subscriptions and partners",
    request: { headers: WebhookHeaders, body: jsonBody(ConsentChangedWebhook, "the change") },
    responses: webhookResponses,
  });
  registry.registerWebhook({
    method: "post",
    path: "endpoint.disabled",
    summary: "Another endpoint was disabled for failing: sent to the subscriptions that asked for it",
    request: { headers: WebhookHeaders, body: jsonBody(EndpointDisabledWebhook, "the disabled endpoint") },
    responses: webhookResponses,
  });
}
