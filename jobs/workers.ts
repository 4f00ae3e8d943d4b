import { UnrecoverableError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "../src/log";
import * as consentApply from "./consent-apply.handler";
import * as iysReport from "./iys-report.handler";
import * as confirmation from "./confirmation.handler";
import { finishOutbox, recordAttemptFailure } from "./outbox";
import { parsePayload, type QueueName } from "./registry";
import { sweep, type SweeperDeps } from "./sweeper";

export type WorkerDeps = consentApply.ConsentApplyDeps &
  iysReport.IysReportDeps &
  confirmation.ConfirmationDeps & {
    log: Logger;
    /** Further handlers contributed by channels (confirmations, callbacks), by queue and job name. */
    extraHandlers?: Partial<Record<QueueName, Record<string, Handler>>>;
  };

export type Handler = (args: { payload: never; deps: WorkerDeps; job: Job }) => Promise<string>;

function handlersFor(deps: WorkerDeps): Record<QueueName, Record<string, Handler>> {
  const base: Record<QueueName, Record<string, Handler>> = {
    consent: { "consent.apply": consentApply.run as Handler },
    confirmations: { "confirmation.send": confirmation.run as Handler },
    callbacks: {},
    "iys-reports": { "iys.report": iysReport.run as Handler },
  };
  for (const [q, hs] of Object.entries(deps.extraHandlers ?? {})) Object.assign(base[q as QueueName], hs);
  return base;
}

/** SQLite has one writer, so ledger work needs few workers; sends wait on the network, so they get many. */
const defaultConcurrency: Record<QueueName, number> = { consent: 4, confirmations: 32, callbacks: 32, "iys-reports": 8 };

export interface WorkerOptions {
  redisUrl: string;
  prefix: string;
  concurrency?: Partial<Record<QueueName, number>>;
}

export interface RunningWorkers {
  workers: Worker[];
  close(): Promise<void>;
}

export function startWorkers(deps: WorkerDeps, opts: WorkerOptions): RunningWorkers {
  const handlers = handlersFor(deps);
  const workers: Worker[] = [];
  for (const [queue, jobs] of Object.entries(handlers) as [QueueName, Record<string, Handler>][]) {
    if (Object.keys(jobs).length === 0) continue;
    const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker(
      queue,
      async function processJob(job: Job) {
        const handler = jobs[job.name];
        if (!handler) throw new UnrecoverableError(`no handler for ${queue}/${job.name}`);
        const payload = parsePayload(queue, job.name, job.data) as never;
        const started = performance.now();
        const outboxIds = (payload as { outboxIds?: number[] }).outboxIds;
        try {
          const outcome = outboxIds ? await runOutboxBatch(deps, job, handler, outboxIds) : await handler({ payload, deps, job });
          deps.log.info({ queue, job: job.name, jobId: job.id, ms: Math.round(performance.now() - started) }, outcome);
          return outcome;
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          deps.log.warn({ queue, job: job.name, jobId: job.id, attempt: job.attemptsMade + 1, err: message }, "job failed");
          throw err;
        }
      },
      { connection, prefix: opts.prefix, concurrency: opts.concurrency?.[queue] ?? defaultConcurrency[queue], autorun: true },
    );
    worker.on("error", (err) => deps.log.error({ queue, err: err.message }, "worker error"));
    workers.push(worker);
  }
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}

/**
 * Outbox jobs carry a batch of row ids; each row is handled on its own (all at once: they wait on
 * the network). A row's permanent error ends it as failed with the reason; a transient one is
 * recorded and the job retried with backoff, which redoes only the rows still pending; on the last
 * attempt those are marked exhausted.
 */
async function runOutboxBatch(deps: WorkerDeps, job: Job, handler: Handler, ids: number[]): Promise<string> {
  const now = () => deps.clock.now().getTime();
  const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const results = await Promise.allSettled(ids.map((outboxId) => handler({ payload: { outboxId } as never, deps, job })));
  const transient: string[] = [];
  results.forEach((r, i) => {
    if (r.status === "fulfilled") return;
    const id = ids[i]!;
    const message = r.reason instanceof Error ? r.reason.message : String(r.reason);
    // finishOutbox only touches rows still pending: a handler that recorded its own reason keeps it.
    if (r.reason instanceof UnrecoverableError) finishOutbox(deps.db, id, "failed", now(), message);
    else if (final) finishOutbox(deps.db, id, "exhausted", now(), message);
    else {
      recordAttemptFailure(deps.db, id, now(), message);
      transient.push(`#${id}: ${message}`);
    }
  });
  if (transient.length > 0) throw new Error(`${transient.length} of ${ids.length} to retry (${transient.slice(0, 3).join("; ")})`);
  const failed = results.filter((r) => r.status === "rejected").length;
  return `${ids.length - failed} done${failed ? `, ${failed} ended` : ""}`;
}

/** Runs the sweeper every `intervalMs`; one sweep at a time. */
export function startSweeper(deps: SweeperDeps, intervalMs: number): { stop(): void; runOnce(): Promise<unknown> } {
  let running: Promise<unknown> | null = null;
  const runOnce = () => {
    running ??= sweep(deps)
      .catch((err: unknown) => deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, "sweep failed"))
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(runOnce, intervalMs);
  timer.unref();
  void runOnce();
  return { stop: () => clearInterval(timer), runOnce };
}
