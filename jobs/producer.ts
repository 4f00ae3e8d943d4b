import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { OutboxRef } from "../db/ledger";
import { outboxJobId, outboxRoutes, queueNames, receiptBatchJobId, receiptJobId, type JobName, type Payload, type QueueName } from "./registry";

/** Production job settings (BullMQ docs): retries with exponential backoff, bounded retention. */
export const defaultJobOptions: JobsOptions = {
  attempts: 8,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * İYS reports go 10 rows a job: each row is one İYS request and the requests are paced
 * (IYS_MAX_REQUESTS_PER_SECOND), so a job's rows wait for their slots after being claimed; small
 * jobs keep that wait far inside the claim's lease (OUTBOX_LEASE_MS) with the workers' concurrency.
 */
const IYS_JOB_ROWS = 10;

/**
 * A job for work that has waited (the sweeper's) is dated when its oldest row was, not now: the
 * sweeper leaves to waiting jobs only the work newer than the one waiting longest
 * (JobProducer.oldestWaiting), so a re-enqueued row must not look newer than the job that holds it.
 * Such jobs go `lifo` (to the end workers take from), oldest rows last: the job first in line is then
 * the oldest-dated, which is the one oldestWaiting reads — and work that waited longest goes first.
 */
function since(rows: { at?: number }[]): { timestamp?: number } {
  let at = Number.POSITIVE_INFINITY;
  for (const r of rows) if (r.at !== undefined && r.at < at) at = r.at;
  return Number.isFinite(at) ? { timestamp: at } : {};
}

/** Typed producer: only registered jobs with their payloads can be enqueued. */
/** The BullMQ priority of an import's callback jobs: after every job without one. */
export const BULK_PRIORITY = 10;

export class JobProducer {
  readonly queues: Record<QueueName, Queue>;

  constructor(connection: Redis, prefix: string, onError: (err: Error) => void = () => {}) {
    this.queues = Object.fromEntries(
      queueNames.map((q) => {
        const queue = new Queue(q, { connection, prefix, defaultJobOptions });
        // Without a listener BullMQ prints every reconnection failure; the caller decides what to log.
        queue.on("error", onError);
        return [q, queue];
      }),
    ) as Record<QueueName, Queue>;
  }

  async enqueue<Q extends QueueName, J extends JobName<Q>>(queue: Q, name: J, payload: Payload<Q, J>, opts: JobsOptions & { jobId: string }) {
    await this.queues[queue].add(name, payload, opts);
  }

  async enqueueReceipt(receiptId: number, opts: { priority?: number; tag?: string } = {}): Promise<void> {
    await this.enqueue("consent", "consent.apply", { receiptIds: [receiptId] }, { jobId: receiptJobId(receiptId, opts.tag), ...(opts.priority ? { priority: opts.priority } : {}) });
  }

  /** One job for the unprioritised receipts of a batch, one for the prioritised (rate-limited) ones. */
  async enqueueReceipts(items: { id: number; priority?: number; at?: number }[], opts: { tag?: string; lifo?: boolean } = {}): Promise<void> {
    const groups = new Map<number, { id: number; at?: number }[]>();
    for (const i of items) {
      const p = i.priority ?? 0;
      const group = groups.get(p);
      if (group) group.push(i);
      else groups.set(p, [i]);
    }
    const jobs = [];
    for (const [priority, group] of groups) {
      for (let k = 0; k < group.length; k += 1000) {
        const chunk = group.slice(k, k + 1000);
        const ids = chunk.map((i) => i.id);
        jobs.push({ name: "consent.apply", data: { receiptIds: ids }, opts: { jobId: receiptBatchJobId(ids, opts.tag), ...(priority ? { priority } : {}), ...since(chunk), ...(opts.lifo ? { lifo: true } : {}) } });
      }
    }
    // One job (the usual case) through add, which costs a quarter less than a one-job addBulk.
    if (jobs.length === 1) await this.queues.consent.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
    else await this.queues.consent.addBulk(jobs);
  }

  /** One job per queue for the rows of one call (chunks of 100, İYS reports 10); the sweeper's rows go one by one. */
  /**
   * `bulk` (an import's rows): their callbacks wait behind every other change's (BullMQ takes a
   * prioritized job only while no plain one waits), so a refusal texted during a 1 000 000-row
   * import reaches the provider's systems in seconds, not after the import's deliveries. Per-consent
   * order does not depend on it (each row waits for an earlier change of its consent). İYS reports keep
   * their order.
   */
  async enqueueOutbox(rows: (OutboxRef & { at?: number })[], opts: { single?: boolean; tag?: string; lifo?: boolean; bulk?: boolean } = {}): Promise<void> {
    // Keyed by queue and job: two kinds may share a queue under different job names.
    const byQueue = new Map<string, { queue: QueueName; job: string; rows: (OutboxRef & { at?: number })[] }>();
    for (const r of rows) {
      const route = outboxRoutes[r.kind];
      const key = `${route.queue}/${route.job}`;
      const entry = byQueue.get(key) ?? { queue: route.queue, job: route.job, rows: [] };
      entry.rows.push(r);
      byQueue.set(key, entry);
    }
    await Promise.all(
      [...byQueue.values()].map(({ queue: q, job, rows: queued }) => {
        const size = opts.single ? 1 : q === "iys-reports" ? IYS_JOB_ROWS : 100;
        const jobs = [];
        for (let k = 0; k < queued.length; k += size) {
          const chunk = queued.slice(k, k + size);
          const ids = chunk.map((r) => r.id);
          jobs.push({
            name: job,
            data: { outboxIds: ids },
            opts: { jobId: outboxJobId(ids, opts.tag), ...since(chunk), ...(opts.lifo ? { lifo: true } : {}), ...(opts.bulk && q === "callbacks" ? { priority: BULK_PRIORITY } : {}) },
          });
        }
        return this.queues[q].addBulk(jobs);
      }),
    );
  }

  /** One row's job after `delayMs`; the id includes `at`, so asking twice for one moment is one job. */
  async enqueueOutboxAt(row: OutboxRef, delayMs: number, at: number): Promise<void> {
    const route = outboxRoutes[row.kind];
    await this.queues[route.queue].add(route.job, { outboxIds: [row.id] }, { jobId: `${outboxJobId([row.id])}-at${at}`, delay: delayMs });
  }

  /**
   * When the job first in line in `queue` became due (made, or made plus its delay) — the oldest
   * waiting, as jobs are added (see `since`) — per list: `wait`, and `prioritized` (worked only once
   * `wait` is empty); null where none waits. Work that came after it may be in one of the waiting
   * jobs (the sweeper leaves it to them).
   */
  async oldestWaiting(queue: QueueName): Promise<{ wait: number | null; prioritized: number | null }> {
    const [wait, prioritized] = await Promise.all([
      this.queues[queue].getJobs(["wait"], 0, 0, true),
      this.queues[queue].getJobs(["prioritized"], 0, 0, true),
    ]);
    // A delayed job moved to wait keeps the time it was made: it became due `delay` later.
    const due = (jobs: { timestamp: number; delay?: number }[]) => {
      const j = jobs.find((x) => x && Number.isFinite(x.timestamp));
      return j ? j.timestamp + (j.delay ?? 0) : null;
    };
    return { wait: due(wait), prioritized: due(prioritized) };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
