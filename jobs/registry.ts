import { z } from "zod";
import type { OutboxKind } from "../db/schema";

/** One receipt (the sweeper, the API) or a batch taken in one tick by a webhook ingress. */
const ReceiptJob = z.object({ receiptIds: z.array(z.number().int().positive()).min(1).max(1000) });
/** Outbox rows of one commit (or one row, from the sweeper); handlers take them one at a time. */
const OutboxJob = z.object({ outboxIds: z.array(z.number().int().positive()).min(1).max(1000) });

/**
 * Queue → job name → payload schema. Payloads carry ids only: BullMQ stores job data in clear text,
 * so phone numbers, e-mails and message bodies stay in SQLite.
 */
export const registry = {
  consent: { "consent.apply": ReceiptJob },
  confirmations: { "confirmation.send": OutboxJob, "email-confirmation.send": OutboxJob },
  callbacks: { "callback.deliver": OutboxJob },
  "iys-reports": { "iys.report": OutboxJob, "iys.batch": OutboxJob, "iys.follow": OutboxJob },
} as const;

export type Registry = typeof registry;
export type QueueName = keyof Registry;
export type JobName<Q extends QueueName> = keyof Registry[Q] & string;
export type Payload<Q extends QueueName, J extends JobName<Q>> = z.infer<Registry[Q][J] extends z.ZodType ? Registry[Q][J] : never>;

export const queueNames = Object.keys(registry) as QueueName[];

/** Where each outbox kind is worked off. */
export const outboxRoutes: Record<OutboxKind, { queue: QueueName; job: string }> = {
  confirmation: { queue: "confirmations", job: "confirmation.send" },
  callback: { queue: "callbacks", job: "callback.deliver" },
  iys_report: { queue: "iys-reports", job: "iys.report" },
  iys_batch: { queue: "iys-reports", job: "iys.batch" },
  iys_follow: { queue: "iys-reports", job: "iys.follow" },
  email_confirmation: { queue: "confirmations", job: "email-confirmation.send" },
};

/**
 * Deterministic job ids: a re-enqueue of the same receipt or outbox row is the same job. The sweeper
 * adds a `tag` (its time bucket): BullMQ ignores an id it still holds as completed or failed, so an
 * untagged re-enqueue of work whose job ended without finishing it would be silently dropped.
 */
export const receiptJobId = (receiptId: number, tag?: string) => `receipt-${receiptId}${tag ? `-${tag}` : ""}`;
export const receiptBatchJobId = (ids: number[], tag?: string) =>
  ids.length === 1 ? receiptJobId(ids[0]!, tag) : `receipts-${ids[0]}-${ids.at(-1)}-${ids.length}${tag ? `-${tag}` : ""}`;
export const outboxJobId = (ids: number[], tag?: string) =>
  `${ids.length === 1 ? `outbox-${ids[0]}` : `outbox-${ids[0]}-${ids.at(-1)}-${ids.length}`}${tag ? `-${tag}` : ""}`;

export function parsePayload<Q extends QueueName>(queue: Q, name: string, data: unknown): unknown {
  const schema = (registry[queue] as Record<string, z.ZodType>)[name];
  if (!schema) throw new Error(`job ${name} is not registered on queue ${queue}`);
  return schema.parse(data);
}
