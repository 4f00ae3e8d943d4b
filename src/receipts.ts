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

interface Waiting {
  receipt: NewReceipt;
  now: number;
  resolve(r: RecordedReceipt): void;
  reject(err: unknown): void;
}

/**
 * Group commit for webhooks: receipts taken in the same tick are inserted in one transaction, and
 * each webhook is answered once its receipt is committed. Under load this turns one SQLite commit
 * per webhook into one per batch; alone, a receipt waits one `setImmediate`.
 */
export class ReceiptWriter {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Db,
    private readonly max = 256,
  ) {}

  record(receipt: NewReceipt, now: number): Promise<RecordedReceipt> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ receipt, now, resolve, reject });
      if (this.waiting.length >= this.max) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return;
    let results: RecordedReceipt[];
    try {
      results = this.db.$client.transaction(() => batch.map((w) => recordReceipt(this.db, w.receipt, w.now))).immediate();
    } catch {
      // One bad row must not fail its neighbours: fall back to one transaction each.
      for (const w of batch) {
        try {
          w.resolve(recordReceipt(this.db, w.receipt, w.now));
        } catch (err) {
          w.reject(err);
        }
      }
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }
}
