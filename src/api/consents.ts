import { createRoute, z } from "@hono/zod-openapi";
import { stmt } from "../../db/index";
import { EVENT_COLUMNS, type ConsentStateRow, type LedgerEvent } from "../../db/ledger";
import { brandByCode } from "../brands";
import { presentEvent, presentState, statementToAction } from "../consents";
import { normalizeRecipient } from "../domain/address";
import { channelOrigins, consentStatuses, consentTypes, providerSources, recipientTypes } from "../domain/consent";
import type { AppDeps } from "../env";
import { crashPoint } from "../crash";
import { RULE_FIELDS } from "../domain/consent-rules";
import { ApiError } from "../errors";
import { assertBrandAccess } from "./auth";
import { apiRouter, bearerSecurity, errorResponses, EXAMPLE_CONSENT_DATE, jsonBody, jsonResponse, requireJson } from "./openapi";

export const ConsentInput = z.object({
  brand: z.string().trim().min(1).openapi({ example: "MIGROS" }),
  recipient: z.string().trim().min(1).max(320).openapi({ description: "phone number (any common spelling) or e-mail address", example: "0532 123 45 67" }),
  recipientType: z.enum(recipientTypes).default("BIREYSEL"),
  type: z.enum(consentTypes),
  status: z.enum(consentStatuses),
  source: z
    .enum(providerSources, { message: `one of ${providerSources.join(", ")}` })
    .nullish()
    .openapi({ description: "where it was collected: required for a BIREYSEL recipient (422 H113 without it), optional for TACIR, as İYS has it" }),
  consentDate: z
    .string()
    .trim()
    .min(1)
    .nullish()
    .openapi({
      description:
        "when it was given or refused: İYS format (Europe/Istanbul wall time) or ISO 8601 with an offset or Z; required for a BIREYSEL recipient (422 H112 without it), optional for TACIR, as İYS has it",
      example: EXAMPLE_CONSENT_DATE,
    }),
  retailerCode: z
    .union([z.string(), z.number()], { error: "8 digits" })
    .transform(String)
    .pipe(z.string().regex(/^\d{8}$/, "8 digits"))
    .nullish()
    .openapi({ description: "the partner (bayi / acente) that obtained it, 8 digits" }),
}).strict().openapi("ConsentRequest");

/**
 * A statement valid on any day: a consent from before 1 May 2015 (HS_2015) carries exactly that date,
 * and is not subject to the three-business-day limit (H467) that any other date would soon exceed.
 */
export const consentExample = { brand: "MIGROS", recipient: "0532 123 45 67", type: "MESAJ", status: "ONAY", source: "HS_2015", consentDate: "2015-05-01 00:00:00" };

/**
 * A query parameter as the URL holds it, with %-escapes decoded but a literal `+` kept: typed by
 * hand, `?recipient=+905321234567` or `ayse+kampanya@…` means a plus, which form decoding would
 * make a space. Null when the parameter is absent or its escapes are malformed.
 */
export function literalQueryParam(url: string, name: string): string | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  const hash = url.indexOf("#", q);
  for (const part of url.slice(q + 1, hash < 0 ? undefined : hash).split("&")) {
    const eq = part.indexOf("=");
    if ((eq < 0 ? part : part.slice(0, eq)) !== name) continue;
    try {
      return decodeURIComponent(eq < 0 ? "" : part.slice(eq + 1));
    } catch {
      return null;
    }
  }
  return null;
}

const ConsentQuery = z.object({
  brand: z.string().trim().min(1).openapi({ example: "MIGROS" }),
  recipient: z.string().trim().min(1).openapi({ description: "a phone or e-mail address in any spelling (a + typed unencoded is read as a plus, as meant; + standing for a space is read so when the plus reading is no address)", example: "+905321234567" }),
});

const Event = z
  .object({
    id: z.number().int(),
    brand: z.string(),
    recipient: z.string().openapi({ description: "normalised (E.164 or lower-case e-mail)" }),
    recipientType: z.enum(recipientTypes),
    type: z.enum(consentTypes),
    status: z.enum(consentStatuses),
    source: z.string().nullable(),
    consentDate: z.string().nullable().openapi({ description: "İYS format, Europe/Istanbul: YYYY-MM-DD HH:mm:ss" }),
    retailerCode: z.string().nullable(),
    origin: z.string(),
    effect: z.string().openapi({ description: "`movement` (reported to İYS) or `suppression` (kept locally)" }),
    receivedAt: z.string(),
    hash: z.string(),
    prevHash: z.string(),
  })
  .openapi("ConsentEvent");

const State = z
  .object({
    brand: z.string(),
    recipient: z.string(),
    recipientType: z.enum(recipientTypes),
    type: z.enum(consentTypes),
    status: z.enum(consentStatuses),
    source: z.string().nullable(),
    consentDate: z.string().nullable(),
    retailerCode: z.string().nullable(),
    inIys: z.boolean().openapi({ description: "whether the record is one for İYS: true once it is a movement İYS is to hold (reported, or still to be: the İYS report rows and the dashboard say which; without IYS_API_BASE_URL nothing is sent), false for a RET kept as a local suppression (İYS holds no record of it) until it is reported over an older consent İYS held" }),
    eventId: z.number().int(),
    updatedAt: z.string(),
  })
  .openapi("ConsentState");

export const Recorded = z
  .object({
    event: Event,
    consent: State.nullable(),
    iys: z.object({ reportable: z.boolean(), code: z.string().optional(), note: z.string().optional() }),
  })
  .openapi("ConsentRecorded");

const readRoute = createRoute({
  method: "get",
  path: "/",
  summary: "Current consents and history of one recipient",
  description: "Every consent type of the recipient at the brand, and its last 500 events (newest first). The address is normalised as everywhere else (an invalid one is a 422 with its İYS code).",
  security: bearerSecurity,
  request: { query: ConsentQuery },
  responses: {
    200: jsonResponse(
      z.object({ brand: z.string(), recipient: z.string(), consents: z.array(State), events: z.array(Event) }).openapi("ConsentHistory"),
      "The state and events",
    ),
    ...errorResponses,
  },
});

const recordRoute = createRoute({
  method: "post",
  path: "/",
  summary: "Record a consent movement (ONAY or RET)",
  description:
    "Through the İYS rules (422 with the İYS code when one refuses) into the ledger; reported to İYS and fanned out to callbacks. Idempotent: the same statement again is a 200 with `Idempotent-Replayed: true`. A RET for an address without consent (H175), or collected more than 3 business days ago (H467, which İYS refuses), is kept as a suppression, the address refused all the same; of the first kind, İYS is asked whether it holds an older consent written elsewhere (brands with İYS codes), and if so the refusal is reported over it.",
  security: bearerSecurity,
  middleware: [requireJson] as const,
  request: { body: jsonBody(ConsentInput, "the movement, as İYS takes it", consentExample) },
  responses: {
    201: jsonResponse(Recorded, "Recorded"),
    200: jsonResponse(Recorded, "Already recorded (idempotent replay)"),
    ...errorResponses,
  },
});

const STATE_SELECT = `SELECT brand_id AS brandId, recipient, recipient_type AS recipientType, type, status, source,
  consent_date AS consentDate, retailer_code AS retailerCode,
  -- A refusal kept as a suppression and then reported over an older consent İYS held (reportSuppression)
  -- is İYS's record once İYS took it: the state's in_iys stays as its events made it ('hub verify').
  in_iys OR EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = consent_state.event_id AND o.kind = 'iys_report' AND o.status = 'done') AS inIys,
  event_id AS eventId, updated_at AS updatedAt
  FROM consent_state WHERE brand_id = ? AND recipient = ? ORDER BY recipient_type, type`;
const EVENTS_SELECT = `SELECT ${EVENT_COLUMNS} FROM consent_events WHERE brand_id = ? AND recipient = ? ORDER BY id DESC LIMIT 500`;

export function createConsentRoutes(deps: AppDeps) {
  return apiRouter()
    .openapi(readRoute, (c) => {
      const q = c.req.valid("query");
      assertBrandAccess(c, q.brand);
      const brand = brandByCode(deps.db, q.brand);
      if (!brand) throw new ApiError("not_found", `brand ${q.brand} not found`, { field: "brand" });
      // Read as typed first (a literal + kept); as form-decoded (+ as a space) when that is no address.
      const literal = literalQueryParam(c.req.url, "recipient");
      let addr = normalizeRecipient(literal ?? q.recipient);
      if (!addr.ok && literal !== null) addr = normalizeRecipient(q.recipient);
      if (!addr.ok) throw new ApiError(addr.code, addr.message, { field: "recipient" });
      const states = (deps.db.$client.prepare(STATE_SELECT).all(brand.id, addr.value) as (Omit<ConsentStateRow, "inIys"> & { inIys: number })[]).map(
        (s) => presentState({ ...s, inIys: Boolean(s.inIys) }, brand.code),
      );
      const events = (deps.db.$client.prepare(EVENTS_SELECT).all(brand.id, addr.value) as LedgerEvent[]).map((e) =>
        presentEvent(e, brand.code),
      );
      return c.json({ brand: brand.code, recipient: addr.value, consents: states, events }, 200);
    })
    .openapi(recordRoute, async (c) => {
      const input = c.req.valid("json");
      assertBrandAccess(c, input.brand);
      const brand = brandByCode(deps.db, input.brand);
      if (!brand) throw new ApiError("not_found", `brand ${input.brand} not found`, { field: "brand" });
      const recorded = await recordConsent(deps, brand, input, { origin: "api", retailerCode: input.retailerCode ?? null });
      c.header("Idempotent-Replayed", recorded.replayed ? "true" : "false");
      return recorded.replayed ? c.json(recorded.body, 200) : c.json(recorded.body, 201);
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
  if (outcome.kind === "rejected" || outcome.kind === "noop") throw new ApiError(outcome.code, outcome.message, { field: RULE_FIELDS[outcome.code] });
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
        // A suppression over a record İYS held (an earlier movement of the key) can only be a RET too
        // old for İYS (H467); read from the ledger as it stood, so a replay answers as the first time.
        ...(event.effect === "suppression"
          ? stmt(deps.db, `SELECT 1 FROM consent_events WHERE brand_id = ? AND recipient = ? AND recipient_type = ? AND type = ? AND id < ? AND effect = 'movement' LIMIT 1`)
              .get(event.brandId, event.recipient, event.recipientType, event.type, event.id)
            ? { code: "H467", note: "RET collected more than 3 business days ago: İYS takes no such movement; kept as a suppression, not reported" }
            : {
                code: "H175",
                note: "RET for an address without consent: kept as a suppression, not an İYS movement; where the brand reports to İYS, İYS is asked whether it holds an older consent, and if so the refusal is reported over it",
              }
          : {}),
        // The recipient refused on the hub's channels after this consent's date (under the address's
        // other record, carried over by the ledger, or since): the refusal stands.
        ...(event.status === "ONAY" && state?.status === "RET" && state.eventId > event.id && channelOrigins.has(deps.ledger.originOf(state.eventId) ?? "")
          ? { note: "the recipient refused on an SMS, call or link after this consent's date (under either recipient type; an undated consent counts as older than any refusal): the refusal stands, consent.status is RET" }
          : {}),
      },
    },
  };
}

