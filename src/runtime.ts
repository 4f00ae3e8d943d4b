import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { createCheckpoint, loadOrCreateLedgerKey } from "../db/checkpoints";
import { openDatabase, runMigrations, type Db } from "../db/index";
import { Ledger, type LedgerEvent, type OutboxInput, type OutboxRef } from "../db/ledger";
import { JobProducer } from "../jobs/producer";
import { startSweeper, startWorkers, type RunningWorkers } from "../jobs/workers";
import type { Config } from "./config";
import { BusinessCalendar, defaultHolidayTable, mergeHolidayTables, type HolidayTable } from "./domain/calendar";
import { isProviderSource } from "./domain/consent";
import { systemClock, type Clock } from "./domain/time";
import type { AppDeps } from "./env";
import { createLogger, type Logger } from "./log";
import { HttpIysReporter, noopIysReporter, type IysReporter } from "./services/iys";

/** Every provider-sourced movement is reported to İYS (suppressions are not İYS movements). */
export function iysReportPlanner(e: LedgerEvent): OutboxInput[] {
  if (e.effect !== "movement" || e.origin === "iys" || !e.source || !isProviderSource(e.source)) return [];
  return [{ kind: "iys_report", eventId: e.id }];
}

export function buildCalendar(config: Pick<Config, "HOLIDAYS_PATH">): BusinessCalendar {
  if (!config.HOLIDAYS_PATH) return new BusinessCalendar(defaultHolidayTable);
  const extra = JSON.parse(readFileSync(config.HOLIDAYS_PATH, "utf8")) as HolidayTable;
  return new BusinessCalendar(mergeHolidayTables(defaultHolidayTable, extra));
}

export function buildIysReporter(config: Config): IysReporter {
  if (!config.IYS_API_BASE_URL) return noopIysReporter;
  return new HttpIysReporter({
    baseUrl: config.IYS_API_BASE_URL,
    username: config.IYS_USERNAME ?? "",
    password: config.IYS_PASSWORD ?? "",
  });
}

export interface Runtime {
  deps: AppDeps;
  iys: IysReporter;
  producer: JobProducer;
  startBackground(): void;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  clock?: Clock;
  log?: Logger;
  db?: Db;
}

/** Opens the database (migrating it), Redis and the queues; the server, the CLI and tests share it. */
export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const log = overrides.log ?? createLogger(config.LOG_LEVEL);
  const clock = overrides.clock ?? systemClock;
  const db = overrides.db ?? openDatabase(config.DATABASE_PATH);
  runMigrations(db);
  const calendar = buildCalendar(config);
  const ledgerKey = await loadOrCreateLedgerKey(config.LEDGER_KEY_PATH, log);
  const ledger = new Ledger(db, { clock, calendar, planners: [iysReportPlanner] });
  // Producers fail fast while Redis is down: the receipt or outbox row is durable and the sweeper re-enqueues it.
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
  redis.on("error", () => {});
  const producer = new JobProducer(redis, config.QUEUE_PREFIX);
  const iys = buildIysReporter(config);

  const jobs = {
    async enqueueReceipt(id: number) {
      try {
        await producer.enqueueReceipt(id);
      } catch (err) {
        log.warn({ receiptId: id, err: (err as Error).message }, "enqueue failed; the sweeper will retry");
      }
    },
    async enqueueOutbox(rows: OutboxRef[]) {
      if (rows.length === 0) return;
      try {
        await producer.enqueueOutbox(rows);
      } catch (err) {
        log.warn({ outbox: rows.length, err: (err as Error).message }, "enqueue failed; the sweeper will retry");
      }
    },
  };

  const deps: AppDeps = { config, db, ledger, calendar, clock, log, ledgerKey, redis, jobs };
  let workers: RunningWorkers | null = null;
  let sweeper: { stop(): void } | null = null;
  let checkpointTimer: NodeJS.Timeout | null = null;
  const checkpoint = () =>
    createCheckpoint(db, ledgerKey, clock).catch((err: unknown) => log.error({ err: (err as Error).message }, "checkpoint failed"));

  return {
    deps,
    iys,
    producer,
    startBackground() {
      workers = startWorkers(
        { db, ledger, clock, log, iys, interpreters: {}, enqueueOutbox: jobs.enqueueOutbox },
        { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX },
      );
      sweeper = startSweeper(
        {
          db,
          log,
          now: () => clock.now().getTime(),
          graceMs: config.SWEEPER_GRACE_SECONDS * 1000,
          enqueueReceipt: (id) => producer.enqueueReceipt(id),
          enqueueOutbox: (rows) => producer.enqueueOutbox(rows),
        },
        config.SWEEPER_INTERVAL_SECONDS * 1000,
      );
      if (config.CHECKPOINT_INTERVAL_SECONDS > 0) {
        checkpointTimer = setInterval(checkpoint, config.CHECKPOINT_INTERVAL_SECONDS * 1000);
        checkpointTimer.unref();
      }
    },
    async close() {
      sweeper?.stop();
      if (checkpointTimer) clearInterval(checkpointTimer);
      await workers?.close();
      await checkpoint();
      await producer.close();
      redis.disconnect();
      db.$client.close();
    },
  };
}
