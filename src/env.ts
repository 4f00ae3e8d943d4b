import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { LedgerKey } from "../db/checkpoints";
import type { Db } from "../db/index";
import type { Ledger, OutboxRef } from "../db/ledger";
import type { Config } from "./config";
import type { BusinessCalendar } from "./domain/calendar";
import type { Clock } from "./domain/time";
import type { Logger } from "./log";
import type { Metrics } from "./metrics/index";
import type { Secrets } from "./secrets";
import type { Caller } from "./api/auth";

/** What routes need from the running process; built once in src/runtime.ts (or by a test). */
export interface AppDeps {
  config: Config;
  db: Db;
  ledger: Ledger;
  calendar: BusinessCalendar;
  clock: Clock;
  log: Logger;
  ledgerKey: LedgerKey;
  /** Producer-side Redis (fails fast when Redis is down). */
  redis: Redis;
  /** This database's hub id, which holds QUEUE_PREFIX in Redis (src/redis.ts). */
  hubId?: string;
  secrets: Secrets;
  jobs: {
    /** `priority` > 0 works the receipt after every unprioritised one (rate-limited senders). */
    enqueueReceipt(id: number, opts?: { priority?: number }): Promise<void>;
    enqueueReceipts(items: { id: number; priority?: number }[]): Promise<void>;
    /** `tag` makes job ids other than the ones the rows had (work reopened after its job finished). */
    enqueueOutbox(rows: OutboxRef[], opts?: { tag?: string; bulk?: boolean }): Promise<void>;
  };
  receipts: {
    /**
     * Applies, in this process, receipts durably received but not yet applied by their job (the
     * oldest 10 000, then, behind a larger backlog, those from `addresses`), so a read of the current
     * state (the pre-send check) honours a refusal accepted a moment ago. Never throws: a receipt
     * that cannot be applied stays pending.
     */
    applyPending(addresses?: () => Iterable<string>): Promise<void>;
  };
  /** The producer's BullMQ queues by name (dashboard depths, /admin/queues); absent: none shown. */
  queues?: Record<string, Queue>;
  /** This runtime's Prometheus registry and instruments; absent: createApp makes one. */
  metrics?: Metrics;
}

/** One env type for every sub-app and middleware. */
export interface HonoEnv {
  Variables: {
    requestId: string;
    /** Who holds the API key of this request (set by bearerAuth on /api/v1). */
    caller: Caller;
    /** The brands whose partner of the path's retailer code holds the bearer key (set on /api/v1/partners before the body is read). */
    partnerBrands: number[];
    /** The error code (and field) an error answer named, for the request's log line. */
    errorCode: string;
    errorField: string;
  };
}
