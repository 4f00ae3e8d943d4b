import { Hono } from "hono";
import { z } from "zod";
import type { ConsentStateRow, LedgerEvent } from "../../db/ledger";
import { brandByCode } from "../brands";
import { presentEvent, presentState, statementToAction } from "../consents";
import { normalizeRecipient } from "../domain/address";
import { consentStatuses, consentTypes, providerSources, recipientTypes } from "../domain/consent";
import type { AppDeps, HonoEnv } from "../env";
import { crashPoint } from "../crash";
import { ApiError } from "../errors";
import { jsonBody, parseOr400 } from "../validate";

export const ConsentInput = z.object({
  brand: z.string().trim().min(1),
  recipient: z.string().trim().min(1).max(320),
  recipientType: z.enum(recipientTypes).default("BIREYSEL"),
  type: z.enum(consentTypes),
  status: z.enum(consentStatuses),
  source: z.enum(providerSources, { message: `one of ${providerSources.join(", ")}` }).nullish(),
  consentDate: z.string().trim().min(1).nullish(),
  retailerCode: z
    .union([z.string(), z.number()])
    .transform(String)
    .pipe(z.string().regex(/^\d{8}$/, "8 digits"))
    .nullish(),
});

const ConsentQuery = z.object({ brand: z.string().trim().min(1), recipient: z.string().trim().min(1) });

const STATE_SELECT = `SELECT brand_id AS brandId, recipient, recipient_type AS recipientType, type, status, source,
  consent_date AS consentDate, retailer_code AS retailerCode, in_iys AS inIys, event_id AS eventId, updated_at AS updatedAt
  FROM consent_state WHERE brand_id = ? AND recipient = ? ORDER BY recipient_type, type`;
const EVENTS_SELECT = `SELECT id, brand_id AS brandId, recipient, recipient_type AS recipientType, type, status, source,
  consent_date AS consentDate, retailer_code AS retailerCode, origin, receipt_id AS receiptId,
  idempotency_key AS idempotencyKey, effect, received_at AS receivedAt, prev_hash AS prevHash, hash
  FROM consent_events WHERE brand_id = ? AND recipient = ? ORDER BY id DESC LIMIT 500`;

export function createConsentRoutes(deps: AppDeps) {
  return new Hono<HonoEnv>()
    .get("/", (c) => {
      const q = parseOr400(ConsentQuery, c.req.query());
      const brand = brandByCode(deps.db, q.brand);
      if (!brand) throw new ApiError("not_found", `brand ${q.brand} not found`, { field: "brand" });
      const addr = normalizeRecipient(q.recipient);
      if (!addr.ok) throw new ApiError(addr.code, addr.message, { field: "recipient" });
      const states = (deps.db.$client.prepare(STATE_SELECT).all(brand.id, addr.value) as (Omit<ConsentStateRow, "inIys"> & { inIys: number })[]).map(
        (s) => presentState({ ...s, inIys: Boolean(s.inIys) }, brand.code),
      );
      const events = (deps.db.$client.prepare(EVENTS_SELECT).all(brand.id, addr.value) as LedgerEvent[]).map((e) =>
        presentEvent(e, brand.code),
      );
      return c.json({ brand: brand.code, recipient: addr.value, consents: states, events });
    })
    .post("/", async (c) => {
      const input = parseOr400(ConsentInput, await jsonBody(c));
      const brand = brandByCode(deps.db, input.brand);
      if (!brand) throw new ApiError("not_found", `brand ${input.brand} not found`, { field: "brand" });
      const recorded = await recordConsent(deps, brand, input, { origin: "api", retailerCode: input.retailerCode ?? null });
      c.header("Idempotent-Replayed", recorded.replayed ? "true" : "false");
      return c.json(recorded.body, recorded.replayed ? 200 : 201);
    });
}

/**
 * Applies one stated movement (provider API or partner report) through the rules and the ledger and
 * enqueues its outbox rows; the answer's body, or an ApiError naming what is wrong.
 */
export async function recordConsent(
  deps: AppDeps,
  brand: { id: number; code: string },
  input: z.output<typeof ConsentInput>,
  by: { origin: "api" | "partner"; retailerCode: string | null },
) {
  const stated = statementToAction({
    brandId: brand.id,
    recipient: input.recipient,
    recipientType: input.recipientType,
    type: input.type,
    status: input.status,
    source: input.source ?? null,
    consentDate: input.consentDate ?? null,
    retailerCode: by.retailerCode,
    origin: by.origin,
  });
  if (!stated.ok) throw new ApiError(stated.code, stated.message, { field: stated.field });
  const { outcomes, outbox } = deps.ledger.apply([stated.action]);
  const outcome = outcomes[0]!;
  if (outcome.kind === "rejected" || outcome.kind === "noop") throw new ApiError(outcome.code, outcome.message);
  if (outcome.kind === "recorded") {
    crashPoint("after-ledger-commit");
    await deps.jobs.enqueueOutbox(outbox);
  }
  const event = outcome.event;
  const state = deps.ledger.state(brand.id, event.recipient, event.recipientType, event.type);
  return {
    replayed: outcome.kind === "duplicate",
    body: {
      event: presentEvent(event, brand.code),
      consent: state ? presentState(state, brand.code) : null,
      iys: {
        reportable: event.effect === "movement",
        ...(event.effect === "suppression"
          ? { code: "H175", note: "RET for an address without consent: kept as a suppression, not an İYS movement" }
          : {}),
      },
    },
  };
}

