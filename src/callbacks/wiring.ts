import type { Db } from "../../db/index";
import type { OutboxRef } from "../../db/ledger";
import { stmt } from "../../db/index";
import { CallbackDelivery, startCallbackWorker } from "../../jobs/deliver-callback.handler";
import type { JobMetrics } from "../../jobs/observe";
import type { JobProducer } from "../../jobs/producer";
import type { Config } from "../config";
import type { Clock } from "../domain/time";
import type { Logger } from "../log";
import type { Secrets } from "../secrets";
import { callbackSecretsKey } from "./crypto";
import { createWebhookClient } from "./http";

/** A job for one row's attempt at `at`: the same moment asked twice is one job. */
export function scheduleCallbackAttempt(producer: JobProducer, outboxId: number, delayMs: number, at: number): Promise<void> {
  return producer
    .enqueue("callbacks", "callback.deliver", { outboxIds: [outboxId] }, { jobId: `cb-${outboxId}-${at}`, delay: Math.max(0, delayMs), attempts: 3 })
    .then(() => undefined);
}

/**
 * The sweeper's re-enqueue for callback rows: a job id from the row's state (attempts, next attempt),
 * so a finished job kept by BullMQ under `outbox-<id>` does not swallow the rescue.
 */
export async function sweepCallbackRows(db: Db, producer: JobProducer, rows: (OutboxRef & { at?: number })[]): Promise<void> {
  const state = stmt(db, `SELECT attempts, next_attempt_at AS nextAttemptAt FROM outbox WHERE id = ?`);
  for (const r of rows) {
    const s = state.get(r.id) as { attempts: number; nextAttemptAt: number | null } | undefined;
    if (!s) continue;
    await producer.enqueue("callbacks", "callback.deliver", { outboxIds: [r.id] }, {
      jobId: `cb-${r.id}-s${s.attempts}-${s.nextAttemptAt ?? 0}`,
      // Dated when the row was due, like the sweeper's other jobs (JobProducer's `since`).
      ...(r.at === undefined ? {} : { timestamp: r.at }),
    });
  }
}

export function startCallbacks(
  config: Config,
  deps: { db: Db; clock: Clock; log: Logger; secrets: Secrets; producer: JobProducer; enqueueOutbox(rows: OutboxRef[], opts?: { tag?: string; bulk?: boolean }): Promise<void>; metrics?: JobMetrics },
) {
  const delivery = new CallbackDelivery({
    db: deps.db,
    clock: deps.clock,
    log: deps.log,
    metrics: deps.metrics,
    client: createWebhookClient({ timeoutMs: config.CALLBACK_TIMEOUT_MS, allowPrivate: config.CALLBACK_ALLOW_PRIVATE }),
    secretsKey: callbackSecretsKey(config, deps.secrets),
    schedule: config.CALLBACK_RETRY_SCHEDULE,
    timeoutMs: config.CALLBACK_TIMEOUT_MS,
    disableAfterMs: config.CALLBACK_DISABLE_AFTER_HOURS * 3_600_000,
    scheduleAttempt: (id, delayMs, at) => scheduleCallbackAttempt(deps.producer, id, delayMs, at),
    enqueueOutbox: deps.enqueueOutbox,
  });
  return startCallbackWorker(delivery, { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX });
}
