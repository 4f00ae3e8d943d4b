import type { Job } from "bullmq";
import { redactAddresses } from "../src/domain/address";
import type { Logger } from "../src/log";

/** Job durations for /metrics. */
export interface JobMetrics {
  observeJob(queue: string, job: string, seconds: number, ok: boolean): void;
}

/**
 * Runs one job of any queue's worker: a log line with its outcome and duration, or a warning with
 * the error (addresses masked), and its duration in /metrics either way. A failure is rethrown with
 * the masked message too: BullMQ keeps it in Redis as the job's failedReason.
 */
export async function observedJob(ctx: { log: Logger; metrics?: JobMetrics }, queue: string, job: Job, run: () => Promise<string>): Promise<string> {
  const started = performance.now();
  try {
    const outcome = await run();
    ctx.log.info({ queue, job: job.name, jobId: job.id, ms: Math.round(performance.now() - started) }, outcome);
    ctx.metrics?.observeJob(queue, job.name, (performance.now() - started) / 1000, true);
    return outcome;
  } catch (err) {
    const message = redactAddresses(err instanceof Error ? err.message : String(err));
    ctx.log.warn({ queue, job: job.name, jobId: job.id, attempt: job.attemptsMade + 1, err: message }, "job failed");
    ctx.metrics?.observeJob(queue, job.name, (performance.now() - started) / 1000, false);
    if (err instanceof Error) err.message = message;
    throw err;
  }
}
