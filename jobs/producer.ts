import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { OutboxRef } from "../db/ledger";
import { outboxJobId, outboxRoutes, queueNames, receiptJobId, type JobName, type Payload, type QueueName } from "./registry";

/** Production job settings (BullMQ docs): retries with exponential backoff, bounded retention. */
export const defaultJobOptions: JobsOptions = {
  attempts: 8,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

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

  async enqueueReceipt(receiptId: number, opts: { priority?: number } = {}): Promise<void> {
    await this.enqueue("consent", "consent.apply", { receiptId }, { jobId: receiptJobId(receiptId), ...(opts.priority ? { priority: opts.priority } : {}) });
  }

  async enqueueOutbox(rows: OutboxRef[]): Promise<void> {
    const byQueue = new Map<QueueName, { name: string; data: { outboxId: number }; opts: JobsOptions }[]>();
    for (const r of rows) {
      const route = outboxRoutes[r.kind];
      const list = byQueue.get(route.queue) ?? [];
      list.push({ name: route.job, data: { outboxId: r.id }, opts: { jobId: outboxJobId(r.id) } });
      byQueue.set(route.queue, list);
    }
    await Promise.all([...byQueue].map(([q, jobs]) => this.queues[q].addBulk(jobs)));
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}
