import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { numbers } from "./brands";

export const receiptChannels = ["sms", "voice", "link", "api"] as const;
/**
 * received → applied | invalid | failed by the apply job; unroutable (unknown number) at once;
 * part → assembled for the pieces of a concatenated SMS, which become one `received` receipt;
 * audit: kept for the audit trail only, never applied (voice call status callbacks).
 */
export const receiptStatuses = ["received", "applied", "unroutable", "invalid", "failed", "part", "assembled", "audit"] as const;
export type ReceiptStatus = (typeof receiptStatuses)[number];

/**
 * Every inbound action, stored before the webhook is answered. Unique on the provider's own id so a
 * retried webhook is the same receipt. Personal data lives here (and in the ledger), never in job data.
 */
export const receipts = sqliteTable(
  "receipts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    channel: text("channel", { enum: receiptChannels }).notNull(),
    provider: text("provider").notNull(),
    /** MessageSid, messageId, CallSid+step, link token+request… */
    providerRef: text("provider_ref").notNull(),
    numberId: integer("number_id").references(() => numbers.id),
    fromAddress: text("from_address"),
    toAddress: text("to_address"),
    body: text("body"),
    payload: text("payload", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    status: text("status", { enum: receiptStatuses }).notNull().default("received"),
    result: text("result", { mode: "json" }).$type<Record<string, unknown>>(),
    receivedAt: integer("received_at").notNull(),
    appliedAt: integer("applied_at"),
  },
  (t) => [
    uniqueIndex("receipts_channel_provider_ref_idx").on(t.channel, t.provider, t.providerRef),
    // The sweeper looks for receipts still waiting for their apply job.
    index("receipts_pending_idx").on(t.receivedAt).where(sql`status = 'received'`),
    // Pieces of concatenated SMS waiting for their siblings.
    index("receipts_parts_idx").on(t.fromAddress).where(sql`status = 'part'`),
  ],
);
