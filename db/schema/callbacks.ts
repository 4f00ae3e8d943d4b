import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { partners } from "./brands";

export const endpointKinds = ["subscription", "partner"] as const;
export type EndpointKind = (typeof endpointKinds)[number];
export const endpointStatuses = ["active", "disabled"] as const;
export type EndpointStatus = (typeof endpointStatuses)[number];
export const callbackEventTypes = ["consent.changed", "endpoint.disabled"] as const;
export type CallbackEventType = (typeof callbackEventTypes)[number];

/**
 * Where consent changes are pushed: the provider's own subscriptions and the brand's partners.
 * Secrets are AES-256-GCM ciphertext (key from configuration), never the `whsec_` value itself.
 */
export const endpoints = sqliteTable(
  "endpoints",
  {
    /** `ep_…`; also the outbox row's `target`. */
    id: text("id").primaryKey(),
    kind: text("kind", { enum: endpointKinds }).notNull(),
    /** Brand ids the endpoint receives (JSON array), or "*" for every brand. */
    brands: text("brands", { mode: "json" }).$type<number[] | "*">().notNull(),
    events: text("events", { mode: "json" }).$type<CallbackEventType[]>().notNull(),
    url: text("url").notNull(),
    description: text("description"),
    secretEnc: text("secret_enc").notNull(),
    /** The secret before the last rotation; it signs too until `previousSecretExpiresAt`. */
    previousSecretEnc: text("previous_secret_enc"),
    previousSecretExpiresAt: integer("previous_secret_expires_at"),
    status: text("status", { enum: endpointStatuses }).notNull().default("active"),
    /** First failed attempt since the last success; the endpoint is disabled when it gets too old. */
    failingSince: integer("failing_since"),
    disabledAt: integer("disabled_at"),
    disabledReason: text("disabled_reason"),
    partnerId: integer("partner_id").references(() => partners.id, { onDelete: "cascade" }),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // The planner loads a brand's partner endpoints.
    index("endpoints_partner_id_idx").on(t.partnerId),
  ],
);

/** Bumped on every endpoint or partner change, so every process's planner cache notices. */
export const endpointVersions = sqliteTable("endpoint_versions", {
  id: integer("id").primaryKey(),
  version: integer("version").notNull(),
});

/** One row per HTTP attempt of a callback outbox row: the delivery log. */
export const deliveries = sqliteTable(
  "deliveries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    outboxId: integer("outbox_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    attempt: integer("attempt").notNull(),
    ok: integer("ok", { mode: "boolean" }).notNull(),
    responseCode: integer("response_code"),
    latencyMs: integer("latency_ms").notNull(),
    error: text("error"),
    at: integer("at").notNull(),
  },
  (t) => [
    // The delivery log of one endpoint, newest first.
    index("deliveries_endpoint_id_at_idx").on(t.endpointId, t.at),
    // The attempts of one outbox row.
    index("deliveries_outbox_id_idx").on(t.outboxId),
  ],
);
