import { UnrecoverableError, Worker, type Job } from "bullmq";
import { stmt } from "../db/index";
import { Redis } from "ioredis";
import type { Logger } from "../src/log";
import { logOnceWhileDown } from "../src/redis";
import * as consentApply from "./consent-apply.handler";
import * as iysReport from "./iys-report.handler";
import * as iysBatch from "./iys-batch.handler";
import * as iysFollow from "./iys-follow.handler";
import * as confirmation from "./confirmation.handler";
import * as emailConfirmation from "./email-confirmation.handler";
import { claimOutbox, finishOutbox, IYS_RETRY_HORIZON_MS, OUTBOX_LEASE_MS, iysRetryDelay, recordAttemptFailure, waitOutbox, type OutboxHandler } from "./outbox";
import { OutcomeUnknownError } from "../src/errors";
import type { OutboxRef } from "../db/ledger";
import { redactAddresses } from "../src/domain/address";
import type { Clock } from "../src/domain/time";
import { observedJob, type JobMetrics } from "./observe";
import { parsePayload, type QueueName } from "./registry";
import { sweep, type SweeperDeps } from "./sweeper";

export type WorkerDeps = consentApply.ConsentApplyDeps &
  iysReport.IysReportDeps &
  iysBatch.IysBatchDeps &
  iysFollow.IysFollowDeps &
  confirmation.ConfirmationDeps &
  emailConfirmation.EmailConfirmationDeps & {
    log: Logger;
    clock: Clock;
    /** Further outbox handlers contributed by channels (callbacks…), by queue and job name. */
    extraHandlers?: Partial<Record<QueueName, Record<string, OutboxHandler<WorkerDeps>>>>;
    /** A job for one row at `at` (an outbox handler answered `wait`); the sweeper covers a lost one. */
    scheduleOutbox?(row: OutboxRef, delayMs: number, at: number): Promise<void>;
    /** Job durations for /metrics. */
    metrics?: JobMetrics;
    /** How often a send still running renews its row's claim (default a third of OUTBOX_LEASE_MS). */
    leaseRenewMs?: number;
  };

type Handler =
  | { kind: "receipts"; run: (args: { payload: { receiptIds: number[] }; deps: WorkerDeps }) => Promise<string> }
  | { kind: "outbox"; run: OutboxHandler<WorkerDeps> };

function handlersFor(deps: WorkerDeps): Record<QueueName, Record<string, Handler>> {
  const outbox = (run: OutboxHandler<WorkerDeps>): Handler => ({ kind: "outbox", run });
  const base: Record<QueueName, Record<string, Handler>> = {
    consent: { "consent.apply": { kind: "receipts", run: consentApply.run } },
    confirmations: { "confirmation.send": outbox(confirmation.run) },
    callbacks: {},
    "iys-reports": { "iys.report": outbox(iysReport.run), "iys.batch": outbox(iysBatch.run), "iys.follow": outbox(iysFollow.run) },
  };
  base.confirmations["email-confirmation.send"] = outbox(emailConfirmation.run);
  for (const [q, hs] of Object.entries(deps.extraHandlers ?? {})) {
    for (const [name, run] of Object.entries(hs)) base[q as QueueName][name] = outbox(run);
  }
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
        const payload = parsePayload(queue, job.name, job.data);
        return observedJob(deps, queue, job, () =>
          handler.kind === "outbox"
            ? runOutboxBatch(deps, job, handler.run, (payload as { outboxIds: number[] }).outboxIds)
            : handler.run({ payload: payload as { receiptIds: number[] }, deps }),
        );
      },
      { connection, prefix: opts.prefix, concurrency: opts.concurrency?.[queue] ?? defaultConcurrency[queue], autorun: true },
    );
    worker.on("error", logOnceWhileDown(connection, deps.log, { queue }, "worker error"));
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
 * How long a row whose sends keep failing for a transient reason is tried before it ends exhausted:
 * a confirmation a day, a report to İYS its 7 days (IYS_RETRY_HORIZON_MS, as its own retries).
 */
export const OUTBOX_RETRY_HORIZON_MS = 24 * 3_600_000;
const horizonOf = (kind: string) => (kind.startsWith("iys_") ? IYS_RETRY_HORIZON_MS : OUTBOX_RETRY_HORIZON_MS);

/**
 * Outbox jobs carry a batch of row ids; each row is handled on its own (all at once: they wait on
 * the network). A row's permanent error ends it as failed with the reason; a transient one is
 * recorded and the job retried with backoff, which redoes only the rows still pending. When the
 * job's attempts are spent (about two minutes), a row still failing waits — a minute, doubling to an
 * hour — and is tried again by a job of its own, until OUTBOX_RETRY_HORIZON_MS after it was written:
 * a confirmation outlives a provider's or SMTP server's outage of hours instead of being given up
 * after two minutes. Only then does it end exhausted.
 */
export async function runOutboxBatch(deps: WorkerDeps, job: Job, handler: OutboxHandler<WorkerDeps>, ids: number[]): Promise<string> {
  const now = () => deps.clock.now().getTime();
  const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  // Claimed together; each row finished as soon as its own send has answered, with the rows that
  // answered in the same turn of the event loop (one commit for a group, not one per row). Finished
  // only once the slowest of up to 100 had answered (a provider's 15 s timeout), a crash in between
  // sent every confirmation the provider had accepted again once the claims' lease ran out.
  const rows = claimOutbox(deps.db, ids, now());
  const transient: string[] = [];
  const waiting: { row: OutboxRef; until: number }[] = [];
  let ended = 0;
  const settled: { i: number; r: PromiseSettledResult<Awaited<ReturnType<typeof handler>>> }[] = [];
  // IMMEDIATE: an outcome's `unlessNow` and the row's update see the same database.
  const settle = deps.db.$client.transaction((group: typeof settled) => {
    for (const { i, r } of group) {
      const id = rows[i]!.id;
      if (r.status === "fulfilled") {
        const v = r.value;
        if (v.status !== "wait" && unlessNow(v.unlessNow, id, deps)) {
          waiting.push({ row: { id, kind: rows[i]!.kind }, until: now() });
          waitOutbox(deps.db, id, now(), now());
          continue;
        }
        if (v.status !== "wait") {
          finishOutbox(deps.db, id, v.status, now(), v.note === undefined ? undefined : redactAddresses(v.note), v.result);
          continue;
        }
        waiting.push({ row: { id, kind: rows[i]!.kind }, until: v.until });
        waitOutbox(deps.db, id, v.until, now(), v.result, v.error === undefined ? undefined : redactAddresses(v.error));
        continue;
      }
      // Providers quote the address they refused; what is stored, thrown (BullMQ keeps it as the
      // job's failedReason) and logged carries it masked.
      const message = redactAddresses(r.reason instanceof Error ? r.reason.message : String(r.reason));
      const kept = rows[i]!.result === null ? undefined : (JSON.parse(rows[i]!.result!) as Record<string, unknown>);
      // A send whose outcome is unknown (an answer that never came) may have gone: past the job's own
      // attempts it is not tried again for a day, which could repeat a confirmation dozens of times.
      const mayWait = !(r.reason instanceof UnrecoverableError) && !(r.reason instanceof OutcomeUnknownError);
      // And sent at most twice: a second unknown outcome ends the row (a provider answering every send
      // after the timeout got the same confirmation 8 times, one per job attempt). Failures known to
      // come before anything was sent do not count (`unknownOutcomes`, kept in the row's result).
      const unknown = r.reason instanceof OutcomeUnknownError;
      const unknownBefore = typeof kept?.unknownOutcomes === "number" ? kept.unknownOutcomes : 0;
      const last = final || (unknown && unknownBefore >= 1);
      if (final && mayWait && now() - rows[i]!.createdAt < horizonOf(rows[i]!.kind)) {
        // A minute, doubling with each job whose retries the row has spent (its failures over the
        // job's attempts), at most an hour: İYS's own retry delay with a minute's base.
        const until = now() + iysRetryDelay(Math.max(0, Math.floor((rows[i]!.attempts + 1) / (job.opts.attempts ?? 1)) - 1), 60_000);
        waiting.push({ row: { id, kind: rows[i]!.kind }, until });
        waitOutbox(deps.db, id, until, now(), kept, message);
      } else if (r.reason instanceof UnrecoverableError || last) {
        finishOutbox(deps.db, id, r.reason instanceof UnrecoverableError ? "failed" : "exhausted", now(), message, kept);
        ended++;
      } else {
        recordAttemptFailure(deps.db, id, now(), message, unknown ? { ...kept, unknownOutcomes: unknownBefore + 1 } : undefined);
        transient.push(`#${id}: ${message}`);
      }
    }
  });
  let commitError: unknown = null;
  let flushing = false;
  const flush = () => {
    flushing = false;
    const group = settled.splice(0);
    if (group.length === 0) return;
    try {
      settle.immediate(group);
    } catch (err) {
      // Left claimed: the lease runs out and the sweeper gives the rows back (as when the process dies here).
      commitError ??= err;
    }
  };
  // The claim is held while a send runs, however long (an SMTP server answering each command just
  // within socketTimeout took 75 s, and the sweeper gave the row to a second job that sent the
  // e-mail again): renewed until the row's handler has answered. A crash stops the renewal.
  const inFlight = new Set(rows.map((r) => r.id));
  const heartbeat = setInterval(() => {
    try {
      const renew = stmt(deps.db, `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at > ?`);
      const t = now();
      deps.db.$client.transaction(() => {
        for (const id of inFlight) renew.run(t + OUTBOX_LEASE_MS, id, t);
      })();
    } catch {
      // busy: the next beat tries again (a third of the lease later)
    }
  }, deps.leaseRenewMs ?? OUTBOX_LEASE_MS / 3);
  try {
    await Promise.all(
    rows.map((row, i) =>
      Promise.resolve()
        .then(() => handler(row, deps))
        .then(
          (value) => ({ status: "fulfilled" as const, value }),
          (reason: unknown) => ({ status: "rejected" as const, reason }),
        )
        .then((r) => {
          inFlight.delete(rows[i]!.id);
          settled.push({ i, r });
          if (!flushing) {
            flushing = true;
            setImmediate(flush);
          }
        }),
    ),
  );
  } finally {
    clearInterval(heartbeat);
  }
  flush();
  if (commitError !== null) throw commitError;
  for (const w of waiting) {
    try {
      await deps.scheduleOutbox?.(w.row, Math.max(0, w.until - now()), w.until);
    } catch (err) {
      deps.log.warn({ outboxId: w.row.id, err: err instanceof Error ? err.message : String(err) }, "could not schedule the next attempt; the sweeper will");
    }
  }
  if (transient.length > 0) throw new Error(`${transient.length} of ${rows.length} to retry (${transient.slice(0, 3).join("; ")})`);
  return `${rows.length - ended - waiting.length} done${ended ? `, ${ended} ended` : ""}${waiting.length ? `, ${waiting.length} waiting` : ""}${rows.length < ids.length ? `, ${ids.length - rows.length} already finished` : ""}`;
}

/** An outcome's `unlessNow`, where an error (it cannot be told) settles the row as the outcome says. */
function unlessNow(check: (() => boolean) | undefined, id: number, deps: WorkerDeps): boolean {
  try {
    return check?.() ?? false;
  } catch (err) {
    deps.log.warn({ outboxId: id, err: err instanceof Error ? err.message : String(err) }, "could not check whether to try the row again; settled as it is");
    return false;
  }
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
