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

const COLUMNS = `channel, provider, provider_ref, number_id, from_address, to_address, body, payload, status, received_at`;
const ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/** Rows per multi-row INSERT: a batch goes in as few statements as these sizes allow. */
const CHUNKS = [64, 16, 4, 1] as const;

type Statement = import("better-sqlite3").Statement;
const statements = new WeakMap<Db, { insert: Map<number, Statement>; find: Statement }>();

function prepared(db: Db) {
  let s = statements.get(db);
  if (!s) {
    s = {
      insert: new Map(
        CHUNKS.map((n) => [
          n,
          db.$client.prepare(
            `INSERT INTO receipts (${COLUMNS}) VALUES ${Array.from({ length: n }, () => ROW).join(", ")}
             ON CONFLICT (channel, provider, provider_ref) DO NOTHING RETURNING id, status, channel, provider, provider_ref AS providerRef`,
          ),
        ]),
      ),
      find: db.$client.prepare(`SELECT id, status FROM receipts WHERE channel = ? AND provider = ? AND provider_ref = ?`),
    };
    statements.set(db, s);
  }
  return s;
}

const values = (r: NewReceipt, now: number) => [
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
];

const keyOf = (r: { channel: string; provider: string; providerRef: string }) => `${r.channel}\u0000${r.provider}\u0000${r.providerRef}`;

/**
 * Inserts receipts with multi-row INSERTs (one statement per chunk rather than one per row) and
 * answers, in order, what each one became. Unique on the provider's own id: a receipt that already
 * stood, or that an earlier one of the same batch made, is found and answered `created: false`.
 */
export function recordReceipts(db: Db, batch: { receipt: NewReceipt; now: number }[]): RecordedReceipt[] {
  const s = prepared(db);
  const inserted = new Map<string, { id: number; status: ReceiptStatus }>();
  let at = 0;
  for (const n of CHUNKS) {
    for (; batch.length - at >= n; at += n) {
      const args: unknown[] = [];
      for (let k = at; k < at + n; k++) args.push(...values(batch[k]!.receipt, batch[k]!.now));
      for (const row of s.insert.get(n)!.all(...args) as { id: number; status: ReceiptStatus; channel: string; provider: string; providerRef: string }[]) {
        inserted.set(keyOf(row), { id: row.id, status: row.status });
      }
    }
  }
  return batch.map(({ receipt: r }) => {
    const key = keyOf(r);
    const row = inserted.get(key);
    if (row) {
      inserted.delete(key); // a second receipt with the same id in this batch is a retry of the first
      return { id: row.id, created: true, status: row.status };
    }
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
      results = this.db.$client.transaction(() => recordReceipts(this.db, batch)).immediate();
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
