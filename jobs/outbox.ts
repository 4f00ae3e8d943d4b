import type { Db } from "../db/index";
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

/** The row when it still needs work; null when another run already finished it (jobs are idempotent). */
export function pendingOutbox(db: Db, id: number): OutboxRow | null {
  const row = db.$client
    .prepare(
      `SELECT id, kind, event_id AS eventId, receipt_id AS receiptId, target, status, attempts FROM outbox WHERE id = ?`,
    )
    .get(id) as OutboxRow | undefined;
  return row && row.status === "pending" ? row : null;
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
  db.$client
    .prepare(
      `UPDATE outbox SET status = ?, last_error = ?, result = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'`,
    )
    .run(status, error ?? null, result === undefined ? null : JSON.stringify(result), now, id);
}

export function recordAttemptFailure(db: Db, id: number, now: number, error: string): void {
  db.$client
    .prepare(`UPDATE outbox SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'`)
    .run(error, now, id);
}
