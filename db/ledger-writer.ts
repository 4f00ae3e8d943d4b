import { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import type { Db } from "./index";
import { GENESIS_HASH, LEDGER_SQL, type LedgerPlan, type OutboxRef } from "./ledger";

/**
 * What became of a plan; `waited`: the thread had written the plan before and sat idle until this
 * one was sent (the caller plans slower than the thread writes).
 */
export type WriteResult = ({ moved: true } | { moved: false; outbox: OutboxRef[] }) & { waited: boolean };

/**
 * A bulk import's ledger writes, on a thread of their own (db/ledger-writer-thread.mjs): the import reads,
 * checks and plans its next batch (Ledger.plan) while the thread chains and commits the one before. On one
 * thread, the SQLite statements and the rest took turns; a million-row import spent 40 % of its time
 * in the statements. Each plan is committed only while the ledger's head is the one it was made on
 * (`moved` otherwise: another process wrote to the ledger, and the caller applies the batch itself).
 * `statements` are the caller's own, run in the same transaction by name (WriteRequest.runs).
 */
export class LedgerWriter {
  /**
   * Writer threads a process runs at once. SQLite takes one write at a time, so more threads would
   * not write faster; each holds a connection with the caller's page cache (64 MiB in the server) and
   * a JavaScript heap of its own. An import that finds none free writes its batches itself
   * (Ledger.apply): the same rows, on one thread.
   */
  static readonly MAX_THREADS = 2;
  private static running = 0;
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(r: WriteResult): void; reject(e: Error): void }>();
  private failure: Error | null = null;

  private constructor(db: Db, statements: Record<string, string>) {
    const c = db.$client;
    const setting = (name: string) => `${name} = ${c.pragma(name, { simple: true }) as number}`;
    this.worker = new Worker(new URL("./ledger-writer-thread.mjs", import.meta.url), {
      workerData: {
        path: c.name,
        // The connection's own: the same durability, waits and cache as the caller's (the thread checks a plan's references itself).
        pragmas: [setting("synchronous"), setting("busy_timeout"), setting("cache_size"), setting("wal_autocheckpoint")],
        sql: LEDGER_SQL,
        statements,
        genesis: GENESIS_HASH,
      },
      execArgv: [],
    });
    LedgerWriter.running++;
    this.worker.on("message", (m: { seq: number; error?: string; code?: string } & WriteResult) => {
      const w = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (m.error !== undefined) w?.reject(typeof m.code === "string" ? new Database.SqliteError(m.error, m.code) : new Error(m.error));
      else w?.resolve(m.moved ? { moved: true, waited: m.waited } : { moved: false, outbox: m.outbox, waited: m.waited });
    });
    const fail = (err: Error) => {
      this.failure ??= err;
      for (const w of this.waiting.values()) w.reject(this.failure);
      this.waiting.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => {
      LedgerWriter.running--;
      fail(new Error(`the ledger's writer thread stopped (exit code ${code})`));
    });
  }

  /** Whether open would give a writer: not for an in-memory database (no other connection can share it), nor while MAX_THREADS run. */
  static available(db: Db): boolean {
    return !db.$client.memory && LedgerWriter.running < LedgerWriter.MAX_THREADS;
  }

  /** A writer for the database's file, or null when none is available. */
  static open(db: Db, statements: Record<string, string> = {}): LedgerWriter | null {
    return LedgerWriter.available(db) ? new LedgerWriter(db, statements) : null;
  }

  /** Commits a plan with the caller's statements (`runs`, by name and arguments), or nothing when the ledger's head has moved. */
  write(plan: LedgerPlan, runs: [string, unknown[]][] = []): Promise<WriteResult> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      // Sent at, on the monotonic clock the thread reads too (nanoseconds).
      this.worker.postMessage({ seq, ...plan, runs, sentAt: Number(process.hrtime.bigint()) });
    });
  }

  /** Stops the thread once the writes asked for are done (their promises settle first). */
  async close(): Promise<void> {
    if (this.failure) return;
    this.failure = new Error("the ledger's writer is closed");
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage("stop");
    await exited;
  }
}
