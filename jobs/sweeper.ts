import { assembleStaleParts } from "../channels/sms/ingress";
import type { Db } from "../db/index";
import type { OutboxRef } from "../db/ledger";
import type { Logger } from "../src/log";

export interface SweeperDeps {
  db: Db;
  log: Logger;
  now: () => number;
  graceMs: number;
  /** `tag` makes the job id differ from the job that left the work unfinished (see receiptJobId). */
  enqueueReceipt(id: number, tag: string): Promise<void>;
  enqueueOutbox(rows: OutboxRef[], tag: string): Promise<void>;
}

const BATCH = 1000;
const RETRIED_GRACE_MS = 15 * 60_000;

/**
 * Re-enqueues receipts and outbox rows that have waited longer than the grace period without a
 * finished job: the process died between commit and enqueue, or Redis was down (and first turns
 * concatenated SMS that will not be completed into receipts). Job ids are deterministic per grace
 * period, so sweeps within one enqueue a row once; a row still queued behind a backlog gets another
 * job each period, which finds it finished: the handlers are idempotent, so a second run changes nothing.
 */
export async function sweep(deps: SweeperDeps): Promise<{ receipts: number; outbox: number }> {
  const cutoff = deps.now() - deps.graceMs;
  // One tag per grace period: sweeps within it (or two sweeping processes) make the same job ids.
  const tag = `s${Math.floor(deps.now() / deps.graceMs)}`;
  const c = deps.db.$client;
  // Pieces of concatenated SMS that will not be completed become receipts of what arrived (picked up below).
  const assembled = assembleStaleParts(deps.db, deps.now());
  if (assembled.length > 0) deps.log.info({ receipts: assembled.length }, "incomplete concatenated sms assembled");
  let receipts = 0;
  let outbox = 0;
  let afterId = 0;
  for (;;) {
    const rows = c
      .prepare(`SELECT id FROM receipts WHERE status = 'received' AND received_at <= ? AND id > ? ORDER BY id LIMIT ?`)
      .all(cutoff, afterId, BATCH) as { id: number }[];
    if (rows.length === 0) break;
    for (const r of rows) await deps.enqueueReceipt(r.id, tag);
    receipts += rows.length;
    afterId = rows.at(-1)!.id;
  }
  afterId = 0;
  for (;;) {
    const rows = c
      // Rows never tried, once the grace is over; rows already tried are left to their job's backoff
      // unless nothing has touched them for RETRIED_GRACE_MS (their job is gone: a crash, a lost Redis).
      // Rows with a scheduled attempt (callbacks) once that moment is past by the grace.
      .prepare(
        `SELECT id, kind FROM outbox WHERE status = 'pending' AND id > ?
           AND ((next_attempt_at IS NULL AND ((attempts = 0 AND updated_at <= ?) OR updated_at <= ?)) OR next_attempt_at <= ?) ORDER BY id LIMIT ?`,
      )
      .all(afterId, cutoff, deps.now() - RETRIED_GRACE_MS, cutoff, BATCH) as OutboxRef[];
    if (rows.length === 0) break;
    await deps.enqueueOutbox(rows, tag);
    outbox += rows.length;
    afterId = rows.at(-1)!.id;
  }
  if (receipts + outbox > 0) deps.log.info({ receipts, outbox }, "sweeper re-enqueued waiting work");
  return { receipts, outbox };
}
