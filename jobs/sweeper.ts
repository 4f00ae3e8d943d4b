import { assembleStaleParts } from "../channels/sms/ingress";
import { failInterruptedImports } from "../src/import";
import { RELEASED } from "./deliver-callback.handler";
import type { Db } from "../db/index";
import type { OutboxRef } from "../db/ledger";
import type { Logger } from "../src/log";
import { outboxRoutes, queueNames, type QueueName } from "./registry";

export interface SweeperDeps {
  db: Db;
  log: Logger;
  now: () => number;
  graceMs: number;
  /** `tag` makes the job id differ from the job that left the work unfinished (see receiptJobId). */
  /**
   * `at`: when the row was taken (or last due); its job is dated so, and goes `lifo` (JobProducer's
   * `since`). Rows come newest first.
   */
  enqueueReceipts(rows: { id: number; at: number }[], tag: string): Promise<void>;
  enqueueOutbox(rows: (OutboxRef & { at: number })[], tag: string): Promise<void>;
  /** When the job first in line in each of the queue's lists became due, or null (JobProducer.oldestWaiting). */
  oldestWaiting?(queue: QueueName): Promise<{ wait: number | null; prioritized: number | null }>;
  /** False while Redis is unreachable: nothing could be enqueued, so only SQLite's share is done. */
  redisReady?(): boolean;
}

const BATCH = 1000;
const chunks = <T>(xs: T[], size: number): T[][] => Array.from({ length: Math.ceil(xs.length / size) }, (_, k) => xs.slice(k * size, (k + 1) * size));
const RETRIED_GRACE_MS = 15 * 60_000;

/**
 * Re-enqueues receipts and outbox rows that have waited longer than the grace period without a
 * finished job: the process died between commit and enqueue, or Redis was down (and first turns
 * concatenated SMS that will not be completed into receipts). Job ids are deterministic per grace
 * period, so sweeps within one enqueue a row once.
 *
 * Behind a backlog a row's job may simply not have run yet: work that came after the oldest job
 * still waiting in its queue (less the grace, for the moment between commit and enqueue) is left to
 * the waiting jobs. Without that, every grace period added another job per row still queued — a
 * backlog of 1 000-receipt jobs grew by one job for each receipt every 30 s, all of them no-ops.
 * What is older than every waiting job cannot be in one: its job ran (and left it) or was lost.
 * While Redis is unreachable only the SQLite share (assembling stale SMS pieces) is done.
 */
export async function sweep(deps: SweeperDeps): Promise<{ receipts: number; outbox: number }> {
  const cutoff = deps.now() - deps.graceMs;
  // One tag per grace period: sweeps within it (or two sweeping processes) make the same job ids.
  const tag = `s${Math.floor(deps.now() / deps.graceMs)}`;
  const c = deps.db.$client;
  // Pieces of concatenated SMS that will not be completed become receipts of what arrived (picked up below).
  const assembled = assembleStaleParts(deps.db, deps.now());
  if (assembled.length > 0) deps.log.info({ receipts: assembled.length }, "incomplete concatenated sms assembled");
  // Imports whose process stopped mid-file: failed, saying so (they stayed `running` for ever).
  const interrupted = failInterruptedImports(deps.db, deps.now());
  if (interrupted.length > 0) deps.log.warn({ imports: interrupted }, "interrupted imports marked failed");
  let receipts = 0;
  let outbox = 0;
  if (deps.redisReady && !deps.redisReady()) return { receipts, outbox };
  // Per queue: rows at or after this moment may still be waiting in a job (Infinity: nothing waits).
  // Receipts of a rate-limited sender and an import's callbacks have a priority: worked after `wait` is empty.
  const waitingSince = new Map<QueueName, { wait: number; prioritized: number }>();
  const since = (t: number | null) => (t === null ? Number.POSITIVE_INFINITY : t - deps.graceMs);
  await Promise.all(
    queueNames.map(async (q) => {
      const oldest = deps.oldestWaiting ? await deps.oldestWaiting(q) : { wait: null, prioritized: null };
      waitingSince.set(q, { wait: since(oldest.wait), prioritized: since(oldest.prioritized) });
    }),
  );
  // Only an import's callbacks and rows released after an endpoint's outage (releaseWaitingRows marks
  // them, until their next claim) go in prioritized jobs: a live
  // change's row is in a plain job or in none, whatever backlog is prioritized (a RET whose enqueue a
  // crash lost waited for a whole import's callbacks).
  const notQueued = (q: QueueName, at: number, bulk: boolean) => {
    const w = waitingSince.get(q)!;
    return at < (bulk ? Math.min(w.wait, w.prioritized) : w.wait);
  };
  let afterId = 0;
  // A receipt waits in a plain job, or a prioritized one when its sender was rate-limited; a swept
  // one (either kind) in a plain job first in line.
  const consent = waitingSince.get("consent")!;
  const plainCutoff = Math.min(cutoff, consent.wait - 1);
  const limitedCutoff = Math.min(plainCutoff, consent.prioritized - 1);
  const dueReceipts: { id: number; at: number }[] = [];
  for (;;) {
    const rows = c
      .prepare(
        `SELECT id, received_at AS at FROM receipts WHERE status = 'received' AND received_at <= ? AND id > ?
           AND (received_at <= ? OR json_extract(payload, '$.limited') IS NOT true) ORDER BY id LIMIT ?`,
      )
      .all(plainCutoff, afterId, limitedCutoff, BATCH) as { id: number; at: number }[];
    if (rows.length === 0) break;
    dueReceipts.push(...rows);
    afterId = rows.at(-1)!.id;
  }
  // Newest batch first, so the oldest rows' job ends up first in line (see JobProducer's `since`);
  // within a batch in the order they came (a sender's texts are applied in order).
  for (const batch of chunks(dueReceipts, BATCH).reverse()) await deps.enqueueReceipts(batch, tag);
  receipts = dueReceipts.length;
  afterId = 0;
  const dueOutbox: (OutboxRef & { at: number })[] = [];
  for (;;) {
    const rows = c
      // Rows never tried, once the grace is over; rows already tried are left to their job's backoff
      // unless nothing has touched them for RETRIED_GRACE_MS (their job is gone: a crash, a lost Redis).
      // Rows with a scheduled attempt (callbacks) once that moment is past by the grace.
      .prepare(
        `SELECT id, kind, coalesce(next_attempt_at, updated_at) AS at,
           kind = 'callback' AND ((SELECT origin FROM consent_events e WHERE e.id = outbox.event_id) IN ('import', 'registered')
             OR claimed_until = ${RELEASED}) AS bulk
           FROM outbox WHERE status = 'pending' AND id > ?
           AND ((next_attempt_at IS NULL AND ((attempts = 0 AND updated_at <= ?) OR updated_at <= ?)) OR next_attempt_at <= ?) ORDER BY id LIMIT ?`,
      )
      .all(afterId, cutoff, deps.now() - RETRIED_GRACE_MS, cutoff, BATCH) as (OutboxRef & { at: number; bulk: number })[];
    if (rows.length === 0) break;
    dueOutbox.push(...rows.filter((r) => notQueued(outboxRoutes[r.kind].queue, r.at, r.bulk === 1)).map(({ bulk: _, ...r }) => r));
    afterId = rows.at(-1)!.id;
  }
  // One job a row (see runtime), newest first: the oldest ends up first in line.
  dueOutbox.sort((a, b) => b.at - a.at);
  for (const batch of chunks(dueOutbox, BATCH)) await deps.enqueueOutbox(batch, tag);
  outbox = dueOutbox.length;
  if (receipts + outbox > 0) deps.log.info({ receipts, outbox }, "sweeper re-enqueued waiting work");
  return { receipts, outbox };
}
