import { stmt, type Db } from "../db/index";
import type { OutboxKind, OutboxStatus } from "../db/schema";

export interface OutboxRow {
  id: number;
  kind: OutboxKind;
  eventId: number | null;
  receiptId: number | null;
  target: string | null;
  status: OutboxStatus;
  attempts: number;
}

/**
 * Claims the row for this attempt: null when it is finished, or when another job claimed it a moment
 * ago (compare-and-set on `updated_at`), so two jobs holding the same row never both send it.
 */
export function pendingOutbox(db: Db, id: number, now: number = Date.now()): OutboxRow | null {
  const row = stmt(db, `SELECT id, kind, event_id AS eventId, receipt_id AS receiptId, target, status, attempts, updated_at AS updatedAt FROM outbox WHERE id = ?`).get(id) as
    | (OutboxRow & { updatedAt: number })
    | undefined;
  if (!row || row.status !== "pending") return null;
  const claimed = stmt(db, `UPDATE outbox SET updated_at = ? WHERE id = ? AND status = 'pending' AND updated_at = ?`).run(Math.max(now, row.updatedAt + 1), id, row.updatedAt);
  if (claimed.changes !== 1) return null;
  const { updatedAt: _, ...rest } = row;
  return rest;
}

/** Ends a pending row; `result` keeps what the attempt returned (provider message id, response code…). */
export function finishOutbox(
  db: Db,
  id: number,
  status: Exclude<OutboxStatus, "pending">,
  now: number,
  error?: string,
  result?: Record<string, unknown>,
): void {
  stmt(db, `UPDATE outbox SET status = ?, last_error = ?, result = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'`).run(
    status, error ?? null, result === undefined ? null : JSON.stringify(result), now, id);
}

export function recordAttemptFailure(db: Db, id: number, now: number, error: string): void {
  stmt(db, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'`).run(error, now, id);
}

/** What an outbox handler made of one row; throwing UnrecoverableError ends it as failed, any other error retries it. */
export type OutboxOutcome = { status: "done" | "skipped"; note?: string; result?: Record<string, unknown> };
export type OutboxHandler<D> = (row: OutboxRow, deps: D) => Promise<OutboxOutcome>;

/** Claims every id still pending in one transaction (see `pendingOutbox`). */
export function claimOutbox(db: Db, ids: number[], now: number): OutboxRow[] {
  return db.$client.transaction(() => ids.map((id) => pendingOutbox(db, id, now)).filter((r) => r !== null))();
}
