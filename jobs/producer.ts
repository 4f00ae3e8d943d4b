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

/** Typed producer: only registered jobs with their payloads can be enqueued. */
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
  async enqueueReceipts(items: { id: number; priority?: number }[]): Promise<void> {
    const groups = new Map<number, number[]>();
    for (const i of items) {
      const p = i.priority ?? 0;
      const ids = groups.get(p);
      if (ids) ids.push(i.id);
      else groups.set(p, [i.id]);
    }
    const jobs = [];
    for (const [priority, ids] of groups) {
      for (let k = 0; k < ids.length; k += 1000) {
        const chunk = ids.slice(k, k + 1000);
        jobs.push({ name: "consent.apply", data: { receiptIds: chunk }, opts: { jobId: receiptBatchJobId(chunk), ...(priority ? { priority } : {}) } });
      }
    }
    // One job (the usual case) through add, which costs a quarter less than a one-job addBulk.
    if (jobs.length === 1) await this.queues.consent.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
    else await this.queues.consent.addBulk(jobs);
  }

  /** One job per queue for the rows of one call (chunks of 100, İYS reports 10); the sweeper's rows go one by one. */
  async enqueueOutbox(rows: OutboxRef[], opts: { single?: boolean; tag?: string } = {}): Promise<void> {
    // Keyed by queue and job: two kinds may share a queue under different job names.
    const byQueue = new Map<string, { queue: QueueName; job: string; ids: number[] }>();
    for (const r of rows) {
      const route = outboxRoutes[r.kind];
      const key = `${route.queue}/${route.job}`;
      const entry = byQueue.get(key) ?? { queue: route.queue, job: route.job, ids: [] };
      entry.ids.push(r.id);
      byQueue.set(key, entry);
    }
    await Promise.all(
      [...byQueue.values()].map(({ queue: q, job, ids }) => {
        const size = opts.single ? 1 : q === "iys-reports" ? IYS_JOB_ROWS : 100;
        const jobs = [];
        for (let k = 0; k < ids.length; k += size) {
          const chunk = ids.slice(k, k + size);
          jobs.push({ name: job, data: { outboxIds: chunk }, opts: { jobId: outboxJobId(chunk, opts.tag) } });
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

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
