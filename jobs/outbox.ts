import { stmt, type Db } from "../db/index";
import type { OutboxRef } from "../db/ledger";
import type { OutboxKind, OutboxStatus } from "../db/schema";

export interface OutboxRow {
  id: number;
  kind: OutboxKind;
  eventId: number | null;
  receiptId: number | null;
  target: string | null;
  status: OutboxStatus;
  attempts: number;
  /** JSON: what an earlier attempt kept (an İYS requestId while İYS processes a list). */
  result: string | null;
  createdAt: number;
}

/** How long a claim keeps other jobs off a row: longer than any send takes (SDK timeouts are 15 s). */
export const OUTBOX_LEASE_MS = 60_000;

/**
 * Claims the row for this attempt: null when it is finished, or while another job holds its lease
 * (`next_attempt_at` in the future), so two jobs holding the same row never both send it — a
 * sweeper re-enqueue or a stalled job's rerun waits until the lease runs out. A failed attempt
 * releases the lease (the job's backoff decides when to retry); a crash leaves it to expire.
 */
export function pendingOutbox(db: Db, id: number, now: number = Date.now()): OutboxRow | null {
  const row = stmt(
    db,
    `UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
     RETURNING id, kind, event_id AS eventId, receipt_id AS receiptId, target, status, attempts, result, created_at AS createdAt`,
  ).get(now + OUTBOX_LEASE_MS, now, id, now) as OutboxRow | undefined;
  return row ?? null;
}

/**
 * An outbox row of `kind` for an event, unless the event has one already (with `unlessPending`: one
 * still pending); the new row's ref, or none. Inside the caller's transaction.
 */
export function addOutboxOnce(db: Db, kind: OutboxKind, eventId: number, now: number, opts: { unlessPending?: boolean } = {}): OutboxRef[] {
  const row = stmt<[string, number, number, number, string, number], { id: number }>(
    db,
    `INSERT INTO outbox (kind, event_id, status, attempts, created_at, updated_at)
     SELECT ?, ?, 'pending', 0, ?, ? WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE kind = ? AND event_id = ?${opts.unlessPending ? " AND status = 'pending'" : ""}) RETURNING id`,
  ).get(kind, eventId, now, now, kind, eventId);
  return row ? [{ id: row.id, kind }] : [];
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

export function recordAttemptFailure(db: Db, id: number, now: number, error: string, result?: Record<string, unknown>): void {
  stmt(db, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = NULL, updated_at = ?, result = coalesce(?, result) WHERE id = ? AND status = 'pending'`).run(
    error, now, result === undefined ? null : JSON.stringify(result), id);
}

/**
 * Keeps a row pending until `until` (its lease then lets the next attempt claim it), with what this
 * attempt learnt; with `error`, the attempt failed and is counted (a retry its handler schedules
 * itself, with a backoff of its own), else it is not a failure.
 */
export function waitOutbox(db: Db, id: number, until: number, now: number, result?: Record<string, unknown>, error?: string): void {
  stmt(db, `UPDATE outbox SET next_attempt_at = ?, result = ?, last_error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ? AND status = 'pending'`).run(
    until, result === undefined ? null : JSON.stringify(result), error ?? null, error === undefined ? 0 : 1, now, id);
}

/**
 * What an outbox handler made of one row: finished (`failed` with `note` when the handler itself
 * settled it, keeping `result`), or `wait`: ask again at `until` (a job is scheduled for then;
 * `error` when this attempt failed and the handler retries on its own schedule).
 * Throwing UnrecoverableError ends it as failed, any other error retries it (the job's backoff).
 */
export type OutboxOutcome =
  | {
      status: "done" | "skipped" | "failed";
      note?: string;
      result?: Record<string, unknown>;
      /** Checked when the outcome is written (the write lock held): if it holds, the row is tried again at once instead. */
      unlessNow?: () => boolean;
    }
  | { status: "wait"; until: number; result?: Record<string, unknown>; error?: string };

/**
 * İYS work (reports, lists) retries a transient failure on this schedule rather than the job's 8
 * quick attempts (~2 minutes): an İYS outage of hours must not end a refusal's report. `base` ×
 * 2^attempts, at most an hour; given up after IYS_RETRY_HORIZON_MS.
 */
export function iysRetryDelay(attempts: number, baseMs: number): number {
  return Math.min(3_600_000, baseMs * 2 ** Math.min(attempts, 20));
}
export const IYS_RETRY_HORIZON_MS = 7 * 86_400_000;
export type OutboxHandler<D> = (row: OutboxRow, deps: D) => Promise<OutboxOutcome>;

/** Claims every id still pending in one transaction (see `pendingOutbox`). */
export function claimOutbox(db: Db, ids: number[], now: number): OutboxRow[] {
  return db.$client.transaction(() => ids.map((id) => pendingOutbox(db, id, now)).filter((r) => r !== null))();
}
