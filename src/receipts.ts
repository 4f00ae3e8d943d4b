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

type Statement = import("better-sqlite3").Statement;
const statements = new WeakMap<Db, { insert: Statement; find: Statement }>();

function prepared(db: Db) {
  let s = statements.get(db);
  if (!s) {
    s = {
      // One row a statement: run() answers changes and rowid without building result rows, which
      // measured cheaper than multi-row INSERTs with RETURNING at webhook batch sizes (~32).
      insert: db.$client.prepare(
        `INSERT INTO receipts (channel, provider, provider_ref, number_id, from_address, to_address, body, payload, status, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, provider, provider_ref) DO NOTHING`,
      ),
      find: db.$client.prepare(`SELECT id, status FROM receipts WHERE channel = ? AND provider = ? AND provider_ref = ?`),
    };
    statements.set(db, s);
  }
  return s;
}

/**
 * Inserts receipts and answers, in order, what each one became. Unique on the provider's own id: a
 * receipt that already stood, or that an earlier one of the same batch made, is found and answered
 * `created: false`. Call inside a transaction when there are several.
 */
export function recordReceipts(db: Db, batch: { receipt: NewReceipt; now: number }[]): RecordedReceipt[] {
  const s = prepared(db);
  return batch.map(({ receipt: r, now }) => {
    const status = r.status ?? "received";
    const info = s.insert.run(
      r.channel,
      r.provider,
      r.providerRef,
      r.numberId ?? null,
      r.fromAddress ?? null,
      r.toAddress ?? null,
      r.body ?? null,
      JSON.stringify(r.payload ?? {}),
      status,
      now,
    );
    if (info.changes === 1) return { id: Number(info.lastInsertRowid), created: true, status };
    const existing = s.find.get(r.channel, r.provider, r.providerRef) as { id: number; status: ReceiptStatus };
    return { id: existing.id, created: false, status: existing.status };
  });
}

/**
 * Makes an inbound action durable (one autocommit INSERT) before the webhook is answered. Unique on
 * the provider's own id, so a retried webhook finds the receipt it already made.
 */
export function recordReceipt(db: Db, r: NewReceipt, now: number): RecordedReceipt {
  return recordReceipts(db, [{ receipt: r, now }])[0]!;
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
  /** Made once: better-sqlite3 builds a wrapper and its savepoint statements per transaction(). */
  private readonly tx: import("better-sqlite3").Transaction<(batch: Waiting[]) => RecordedReceipt[]>;

  constructor(
    private readonly db: Db,
    private readonly max = 256,
  ) {
    this.tx = db.$client.transaction((batch: Waiting[]) => recordReceipts(db, batch));
  }

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
      results = this.tx.immediate(batch);
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
