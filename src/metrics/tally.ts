import type Database from "better-sqlite3";

type Row = Record<string, string | number | null> & { id: number };

export interface TallySpec {
  table: string;
  /** Columns that label a count (kept low-cardinality: statuses, kinds, channels, brand ids). */
  columns: string[];
  /** Statuses a row may still leave (received, pending…): such rows are re-read on every refresh until they settle. */
  open?: { column: string; values: string[] };
  /** Remember the ids of the latest settled rows matching this (e.g. failures), newest last, at most `max`. */
  remember?: { when: (row: Row) => boolean; max: number };
  /**
   * A log of rows taken back from a settled status (`seq` ascending, `column` the row's id): each is
   * read again until it settles anew, and counted then too (its first settled status stays counted:
   * counters only grow).
   */
  reopened?: { table: string; column: string };
}

export interface TallyCount {
  labels: Record<string, string>;
  n: number;
}

const CHUNK = 10_000;
const RECHECK = 500;
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Exact per-label row counts of one table without re-scanning it: every row is read once by id
 * (`id > last seen`, a primary-key range), rows in an open status are re-read by id until they
 * settle. Settled statuses never change in this schema (receipts: everything but received/part;
 * outbox: everything but pending; ledger events and deliveries are append-only). The first refresh
 * reads the whole table once, in chunks that yield to the event loop; later ones cost O(new + open
 * rows). A GROUP BY over 1 000 000 receipts blocks the event loop ~500 ms on every scrape, hence this.
 */
export class Tally {
  private readonly settled = new Map<string, TallyCount>();
  private readonly openRows = new Map<number, Row>();
  private readonly recent: number[] = [];
  private maxId = 0;
  /** The last entry of the reopened log taken (null before the first refresh). */
  private reopenedSeq: number | null = null;
  private running: Promise<void> | null = null;
  private readonly select: string;

  constructor(
    private readonly db: Database.Database,
    private readonly spec: TallySpec,
  ) {
    const cols = [...new Set([...spec.columns, ...(spec.open ? [spec.open.column] : [])])];
    this.select = `SELECT id, ${cols.map((c) => `"${c}"`).join(", ")} FROM "${spec.table}"`;
  }

  /** One refresh at a time; concurrent callers share it. */
  refresh(): Promise<void> {
    this.running ??= this.doRefresh().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private isOpen(row: Row): boolean {
    const o = this.spec.open;
    return !!o && o.values.includes(String(row[o.column]));
  }

  private keyOf(row: Row): string {
    let key = "";
    for (const c of this.spec.columns) key += `${row[c] ?? ""}\u0001`;
    return key;
  }

  private labelsOf(row: Row): Record<string, string> {
    return Object.fromEntries(this.spec.columns.map((c) => [c, String(row[c] ?? "")]));
  }

  private settle(row: Row): void {
    const key = this.keyOf(row);
    const entry = this.settled.get(key);
    if (entry) entry.n++;
    else this.settled.set(key, { labels: this.labelsOf(row), n: 1 });
    const r = this.spec.remember;
    if (r && r.when(row)) {
      this.recent.push(row.id);
      if (this.recent.length > r.max) this.recent.splice(0, this.recent.length - r.max);
    }
  }

  private async doRefresh(): Promise<void> {
    const log = this.spec.reopened;
    if (log) {
      if (this.reopenedSeq === null) {
        // The first scan reads every row as it is now: entries logged before it are in it already.
        this.reopenedSeq = (this.db.prepare(`SELECT max(seq) AS seq FROM "${log.table}"`).get() as { seq: number | null }).seq ?? 0;
      } else {
        const entries = this.db.prepare(`SELECT seq, "${log.column}" AS id FROM "${log.table}" WHERE seq > ? ORDER BY seq`).all(this.reopenedSeq) as { seq: number; id: number }[];
        for (const e of entries) {
          // Read again below (by id, with the open rows); a row past maxId is read by the scan.
          if (e.id <= this.maxId && !this.openRows.has(e.id)) this.openRows.set(e.id, { id: e.id });
          this.reopenedSeq = e.seq;
        }
      }
    }
    const next = this.db.prepare(`${this.select} WHERE id > ? ORDER BY id LIMIT ${CHUNK}`);
    for (;;) {
      const rows = next.all(this.maxId) as Row[];
      for (const row of rows) {
        if (this.isOpen(row)) this.openRows.set(row.id, row);
        else this.settle(row);
      }
      if (rows.length > 0) this.maxId = rows[rows.length - 1]!.id;
      if (rows.length < CHUNK) break;
      await yieldToLoop();
    }
    const ids = [...this.openRows.keys()];
    for (let k = 0; k < ids.length; k += RECHECK) {
      const chunk = ids.slice(k, k + RECHECK);
      const rows = this.db.prepare(`${this.select} WHERE id IN (${chunk.map(() => "?").join(",")})`).all(...chunk) as Row[];
      const found = new Set<number>();
      // Settle in id order so `recent` stays newest-last.
      for (const row of rows.sort((a, b) => a.id - b.id)) {
        found.add(row.id);
        if (this.isOpen(row)) this.openRows.set(row.id, row);
        else {
          this.openRows.delete(row.id);
          this.settle(row);
        }
      }
      for (const id of chunk) if (!found.has(id)) this.openRows.delete(id);
    }
  }

  /**
   * Settled counts plus the open rows in their current status; `settled` only (they only grow: a
   * Prometheus counter), or `open` only (they come and go: a gauge).
   */
  counts(which: "all" | "settled" | "open" = "all"): TallyCount[] {
    const out = new Map<string, TallyCount>();
    if (which !== "open") for (const [k, v] of this.settled) out.set(k, { labels: v.labels, n: v.n });
    if (which !== "settled") for (const row of this.openRows.values()) {
      const key = this.keyOf(row);
      const entry = out.get(key);
      if (entry) entry.n++;
      else out.set(key, { labels: this.labelsOf(row), n: 1 });
    }
    return [...out.values()];
  }

  /** Ids remembered by `spec.remember`, newest first. */
  recentIds(): number[] {
    return [...this.recent].reverse();
  }
}
