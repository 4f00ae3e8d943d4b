import type { Db } from "../db/index";
import type { ReceiptStatus } from "../db/schema";

export interface NewReceipt {
  channel: "sms" | "voice" | "link" | "api";
  provider: string;
  providerRef: string;
  numberId?: number | null;
  fromAddress?: string | null;
  toAddress?: string | null;
  body?: string | null;
  payload?: Record<string, unknown>;
  status?: ReceiptStatus;
}

export interface RecordedReceipt {
  id: number;
  /** False when the provider retried: the same receipt already stood. */
  created: boolean;
  status: ReceiptStatus;
}

const statements = new WeakMap<Db, { insert: import("better-sqlite3").Statement; find: import("better-sqlite3").Statement }>();

function prepared(db: Db) {
  let s = statements.get(db);
  if (!s) {
    s = {
      insert: db.$client.prepare(
        `INSERT INTO receipts (channel, provider, provider_ref, number_id, from_address, to_address, body, payload, status, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (channel, provider, provider_ref) DO NOTHING RETURNING id, status`,
      ),
      find: db.$client.prepare(`SELECT id, status FROM receipts WHERE channel = ? AND provider = ? AND provider_ref = ?`),
    };
    statements.set(db, s);
  }
  return s;
}

/**
 * Makes an inbound action durable (one autocommit INSERT) before the webhook is answered. Unique on
 * the provider's own id, so a retried webhook finds the receipt it already made.
 */
export function recordReceipt(db: Db, r: NewReceipt, now: number): RecordedReceipt {
  const s = prepared(db);
  const row = s.insert.get(
    r.channel,
    r.provider,
    r.providerRef,
    r.numberId ?? null,
    r.fromAddress ?? null,
    r.toAddress ?? null,
    r.body ?? null,
    JSON.stringify(r.payload ?? {}),
    r.status ?? "received",
    now,
  ) as { id: number; status: ReceiptStatus } | undefined;
  if (row) return { id: row.id, created: true, status: row.status };
  const existing = s.find.get(r.channel, r.provider, r.providerRef) as { id: number; status: ReceiptStatus };
  return { id: existing.id, created: false, status: existing.status };
}
