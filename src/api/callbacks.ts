import { timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { stmt } from "../../db/index";
import { callbackEventTypes, endpointStatuses } from "../../db/schema";
import { insertCallbackRows } from "../../jobs/deliver-callback.handler";
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
  type DeliveryLogRow,
  type EndpointRow,
} from "../callbacks/store";
import { checkTarget } from "../callbacks/target";
import type { AppDeps, HonoEnv } from "../env";
import { ApiError } from "../errors";
import { jsonBody, parseOr400 } from "../validate";
import { ConsentInput, recordConsent } from "./consents";

/** İYS allows a brand at most 3000 partners (bayi / acente). */
export const MAX_PARTNERS_PER_BRAND = 3000;

const Url = z.string().trim().min(1).max(2048);
const Brands = z.union([z.literal("*"), z.array(z.string().trim().min(1)).min(1).max(1000)]);
const Events = z.array(z.enum(callbackEventTypes)).min(1).max(callbackEventTypes.length);

const SubscriptionInput = z.object({
  url: Url,
  brands: Brands.default("*"),
  events: Events.default(["consent.changed"]),
  description: z.string().trim().max(500).nullish(),
});

const SubscriptionPatch = z
  .object({
    url: Url.optional(),
    brands: Brands.optional(),
    events: Events.optional(),
    description: z.string().trim().max(500).nullable().optional(),
    status: z.enum(endpointStatuses).optional(),
  })
  .strict();

const ReplaySince = z.object({
  since: z.iso.datetime({ offset: true, message: "an ISO 8601 date-time, e.g. 2026-11-25T09:00:00Z" }),
  /** `failed` (default): rows that ended failed, exhausted or skipped; `all`: every delivery since then. */
  only: z.enum(["failed", "all"]).default("failed"),
});

const PartnerInput = z.object({
  retailerCode: z
    .union([z.string(), z.number()])
    .transform((v) => String(v).trim())
    .pipe(z.string().regex(/^\d{8}$/, "8 digits")),
  name: z.string().trim().min(1).max(200),
  url: Url.nullish(),
});

const DeliveriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  failed: z.enum(["true", "false"]).optional(),
});

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
    brands: e.brands === "*" ? "*" : e.brands.map((id) => brandById(deps.db, id)?.code ?? String(id)),
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

const presentDelivery = (d: DeliveryLogRow) => ({
  id: d.id,
  outboxId: d.outboxId,
  eventId: d.eventId,
  attempt: d.attempt,
  ok: d.ok === 1,
  responseCode: d.responseCode,
  latencyMs: d.latencyMs,
  error: d.error,
  at: new Date(d.at).toISOString(),
  deliveryStatus: d.outboxStatus,
});

/** `/api/v1/subscriptions`: the provider's own callback endpoints. */
export function createSubscriptionRoutes(deps: AppDeps) {
  const key = () => callbackSecretsKey(deps.config, deps.secrets);
  const now = () => deps.clock.now().getTime();
  return new Hono<HonoEnv>()
    .post("/", async (c) => {
      const input = parseOr400(SubscriptionInput, await jsonBody(c));
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
    .get("/", (c) => c.json({ subscriptions: listEndpoints(deps.db, "subscription").map((e) => presentEndpoint(deps, e)) }))
    .get("/:id", (c) => c.json(presentEndpoint(deps, subscription(deps, c.req.param("id")))))
    .patch("/:id", async (c) => {
      const e = subscription(deps, c.req.param("id"));
      const input = parseOr400(SubscriptionPatch, await jsonBody(c));
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
      return c.json(presentEndpoint(deps, getEndpoint(deps.db, e.id)!));
    })
    .post("/:id/rotate-secret", (c) => {
      const e = subscription(deps, c.req.param("id"));
      const secret = newWebhookSecret();
      const until = now() + deps.config.CALLBACK_SECRET_OVERLAP_HOURS * 3_600_000;
      rotateEndpointSecret(deps.db, e.id, encryptSecret(key(), secret), until, now());
      deps.log.info({ endpointId: e.id }, "subscription secret rotated");
      return c.json({ ...presentEndpoint(deps, getEndpoint(deps.db, e.id)!), secret });
    })
    .delete("/:id", (c) => {
      const e = subscription(deps, c.req.param("id"));
      deleteEndpoint(deps.db, e.id);
      return c.body(null, 204);
    })
    .get("/:id/deliveries", (c) => {
      const e = subscription(deps, c.req.param("id"));
      const q = parseOr400(DeliveriesQuery, c.req.query());
      return c.json({ endpointId: e.id, deliveries: deliveryLog(deps.db, e.id, { limit: q.limit, failedOnly: q.failed === "true" }).map(presentDelivery) });
    })
    .post("/:id/replay", async (c) => {
      const e = subscription(deps, c.req.param("id"));
      if (e.status !== "active") throw new ApiError("conflict", `subscription ${e.id} is disabled: enable it (PATCH status "active") before replaying`);
      const input = parseOr400(ReplaySince, await jsonBody(c));
      const since = Date.parse(input.since);
      const statuses = input.only === "all" ? ["done", "failed", "exhausted", "skipped"] : ["failed", "exhausted", "skipped"];
      // The newest row per event: a replay of a replay is still one delivery per event.
      const rows = deps.db.$client
        .prepare(
          `SELECT event_id AS eventId, target FROM outbox o WHERE kind = 'callback' AND target = ? AND created_at >= ? AND event_id IS NOT NULL
             AND id = (SELECT max(id) FROM outbox o2 WHERE o2.kind = 'callback' AND o2.target = o.target AND o2.event_id = o.event_id)
             AND status IN (${statuses.map(() => "?").join(", ")}) ORDER BY event_id LIMIT 100000`,
        )
        .all(e.id, since, ...statuses) as { eventId: number; target: string }[];
      const refs = insertCallbackRows(deps.db, rows, now());
      await deps.jobs.enqueueOutbox(refs);
      return c.json({ replayed: refs.length, outboxIds: refs.slice(0, 1000).map((r) => r.id) }, 202);
    });
}

/** `/api/v1/deliveries`: one delivery replayed (a new attempt series with the same webhook-id). */
export function createDeliveryRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>().post("/:outboxId/replay", async (c) => {
    const id = Number(c.req.param("outboxId"));
    const row = Number.isInteger(id)
      ? (stmt(deps.db, `SELECT id, event_id AS eventId, target, status FROM outbox WHERE id = ? AND kind = 'callback'`).get(id) as
          | { id: number; eventId: number | null; target: string; status: string }
          | undefined)
      : undefined;
    if (!row) throw new ApiError("not_found", `delivery ${c.req.param("outboxId")} not found`);
    if (row.status === "pending") throw new ApiError("conflict", `delivery ${id} is still pending`);
    const endpoint = getEndpoint(deps.db, row.target.split("/")[0]!);
    if (!endpoint) throw new ApiError("conflict", "its endpoint was deleted");
    if (endpoint.status !== "active") throw new ApiError("conflict", `endpoint ${endpoint.id} is disabled`);
    const refs = insertCallbackRows(deps.db, [{ eventId: row.eventId, target: row.target }], deps.clock.now().getTime());
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

const PARTNER_SELECT = `SELECT p.id, p.brand_id AS brandId, p.retailer_code AS retailerCode, p.name, p.url, p.created_at AS createdAt,
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

/** `/api/v1/brands/:brand/partners`: dealers and agents (bayi / acente) of a brand. */
export function createPartnerRoutes(deps: AppDeps) {
  const brandOf = (code: string) => {
    const b = brandByCode(deps.db, code);
    if (!b) throw new ApiError("not_found", `brand ${code} not found`);
    return b;
  };
  const partnerOf = (brandId: number, retailerCode: string) => {
    const p = stmt(deps.db, `${PARTNER_SELECT} WHERE p.brand_id = ? AND p.retailer_code = ?`).get(brandId, retailerCode) as PartnerRow | undefined;
    if (!p) throw new ApiError("not_found", `partner ${retailerCode} not found`);
    return p;
  };
  return new Hono<HonoEnv>()
    .post("/:brand/partners", async (c) => {
      const brand = brandOf(c.req.param("brand"));
      const input = parseOr400(PartnerInput, await jsonBody(c));
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
          `INSERT INTO partners (brand_id, retailer_code, name, url, secret_enc, api_key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        ).get(brand.id, input.retailerCode, input.name, url, secretEnc, apiKeyHash(apiKey), now) as { id: number };
        if (url && secretEnc) insertEndpoint(deps.db, { kind: "partner", brands: [brand.id], events: ["consent.changed"], url, secretEnc, partnerId: id }, now);
        else bumpEndpointVersion(deps.db);
        return partnerOf(brand.id, input.retailerCode);
      }).immediate();
      deps.log.info({ brand: brand.code, retailerCode: input.retailerCode }, "partner created");
      return c.json({ ...presentPartner(brand.code, created), ...(secret ? { secret } : {}), apiKey }, 201);
    })
    .get("/:brand/partners", (c) => {
      const brand = brandOf(c.req.param("brand"));
      const rows = stmt(deps.db, `${PARTNER_SELECT} WHERE p.brand_id = ? ORDER BY p.retailer_code`).all(brand.id) as PartnerRow[];
      return c.json({ brand: brand.code, partners: rows.map((p) => presentPartner(brand.code, p)) });
    })
    .get("/:brand/partners/:retailerCode", (c) => {
      const brand = brandOf(c.req.param("brand"));
      return c.json(presentPartner(brand.code, partnerOf(brand.id, c.req.param("retailerCode"))));
    })
    .get("/:brand/partners/:retailerCode/deliveries", (c) => {
      const brand = brandOf(c.req.param("brand"));
      const p = partnerOf(brand.id, c.req.param("retailerCode"));
      const q = parseOr400(DeliveriesQuery, c.req.query());
      const log = p.endpointId ? deliveryLog(deps.db, p.endpointId, { limit: q.limit, failedOnly: q.failed === "true" }) : [];
      return c.json({ endpointId: p.endpointId, deliveries: log.map(presentDelivery) });
    })
    .delete("/:brand/partners/:retailerCode", (c) => {
      const brand = brandOf(c.req.param("brand"));
      const p = partnerOf(brand.id, c.req.param("retailerCode"));
      deps.db.$client.transaction(() => {
        stmt(deps.db, `DELETE FROM endpoints WHERE partner_id = ?`).run(p.id);
        stmt(deps.db, `DELETE FROM partners WHERE id = ?`).run(p.id);
        bumpEndpointVersion(deps.db);
      })();
      return c.body(null, 204);
    });
}

/**
 * `POST /api/v1/partners/:retailerCode/consents`: a partner reports a change it received, with its
 * own API key (not the provider's). Same rules and ledger as the provider API; `retailerCode` is
 * recorded and the change fans out to the brand's subscribers and every other partner.
 */
export function createPartnerReportRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>().post("/:retailerCode/consents", async (c) => {
    const match = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "");
    if (!match) throw new ApiError("unauthorized", "missing Authorization: Bearer <partner API key>");
    const retailerCode = c.req.param("retailerCode");
    const input = parseOr400(ConsentInput, await jsonBody(c));
    const brand = brandByCode(deps.db, input.brand);
    const partner = brand
      ? (stmt(deps.db, `SELECT api_key_hash AS hash FROM partners WHERE brand_id = ? AND retailer_code = ?`).get(brand.id, retailerCode) as
          | { hash: string | null }
          | undefined)
      : undefined;
    const given = Buffer.from(apiKeyHash(match[1]!.trim()), "hex");
    // One answer for an unknown brand, an unknown partner and a wrong key: nothing to probe.
    if (!brand || !partner?.hash || !timingSafeEqual(given, Buffer.from(partner.hash, "hex"))) {
      throw new ApiError("unauthorized", `invalid API key for partner ${retailerCode} of brand ${input.brand}`);
    }
    if (input.retailerCode && input.retailerCode !== retailerCode) {
      throw new ApiError("bad_request", `retailerCode: ${input.retailerCode} is not the reporting partner ${retailerCode}`, { field: "retailerCode" });
    }
    const recorded = await recordConsent(deps, brand, input, { origin: "partner", retailerCode });
    c.header("Idempotent-Replayed", recorded.replayed ? "true" : "false");
    return c.json(recorded.body, recorded.replayed ? 200 : 201);
  });
}
