import { withTimeout } from "./async";
import { prepareSecrets } from "./secrets";
import { smsInterpreter } from "../channels/sms/interpret";
import { voiceInterpreter } from "../channels/ivr/interpret";
import { buildSenders } from "../channels/sms/senders";
import { linkInterpreter } from "../channels/link/interpret";
import { createMailer } from "../channels/email/mailer";
import { hubIdOf, PREFIX_CLAIM_RENEW_MS, queuePrefixProblem, redisDatabaseProblem, redisReady, watchRedisConnection } from "./redis";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Redis } from "ioredis";
import { createCheckpoint, ledgerKeyFor } from "../db/checkpoints";
import { assertHubDatabaseFile, openDatabase, runMigrations, type Db } from "../db/index";
import { Ledger, type OutboxRef } from "../db/ledger";
import { run as applyReceipts, type ConsentApplyDeps } from "../jobs/consent-apply.handler";
import { JobProducer } from "../jobs/producer";
import { startSweeper, startWorkers, type RunningWorkers } from "../jobs/workers";
import type { Config } from "./config";
import { BusinessCalendar, defaultHolidayTable, mergeHolidayTables, type HolidayTable } from "./domain/calendar";
import { normalizeRecipient } from "./domain/address";
import { systemClock, type Clock } from "./domain/time";
import type { AppDeps } from "./env";
import { createLogger, type Logger } from "./log";
import { Metrics } from "./metrics/index";
import { HttpIysReporter, noopIysReporter, type IysReporter } from "./services/iys";
import { RedisHourlyBudget, RedisPacer } from "./services/pacer";
import { callbackPlanner } from "./callbacks/store";
import { enqueueReopened, iysFollowPlanner, iysReportPlanner, reopenSkippedIysReports } from "./iys-reports";
import { startCallbacks, sweepCallbackRows } from "./callbacks/wiring";
import { startIysPull } from "./iys-pull";

export { iysReportPlanner };

export function buildCalendar(config: Pick<Config, "HOLIDAYS_PATH">): BusinessCalendar {
  if (!config.HOLIDAYS_PATH) return new BusinessCalendar(defaultHolidayTable);
  let extra: HolidayTable;
  try {
    extra = JSON.parse(readFileSync(config.HOLIDAYS_PATH, "utf8")) as HolidayTable;
  } catch (err) {
    throw new Error(`HOLIDAYS_PATH ${config.HOLIDAYS_PATH} is not a readable JSON holiday table (${(err as Error).message})`);
  }
  return new BusinessCalendar(mergeHolidayTables(defaultHolidayTable, extra));
}

/** With `redis`, requests are paced across every process sharing it (IYS_MAX_REQUESTS_PER_SECOND). */
export function buildIysReporter(config: Config, redis?: Redis): IysReporter {
  if (!config.IYS_API_BASE_URL) return noopIysReporter;
  return new HttpIysReporter({
    baseUrl: config.IYS_API_BASE_URL,
    username: config.IYS_USERNAME ?? "",
    password: config.IYS_PASSWORD ?? "",
    ...(redis
      ? {
          pacer: new RedisPacer(redis, `${config.QUEUE_PREFIX}:iys:next-request`, config.IYS_MAX_REQUESTS_PER_SECOND),
          statusBudget: new RedisHourlyBudget(redis, `${config.QUEUE_PREFIX}:iys:status-queries`, config.IYS_STATUS_QUERIES_PER_HOUR),
        }
      : {}),
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

/**
 * A database that does not exist beside a ledger signing key that does: the hub's database was lost
 * (deleted, a volume not mounted, a restore left out) or DATABASE_PATH is mistyped. Starting would
 * make a new, empty ledger and take traffic on it (a pre-send check would then know no refusal).
 */
export function assertNotLostDatabase(config: Pick<Config, "DATABASE_PATH" | "LEDGER_KEY_PATH">): void {
  if (config.DATABASE_PATH === ":memory:" || existsSync(config.DATABASE_PATH) || !existsSync(config.LEDGER_KEY_PATH)) return;
  throw new Error(
    `DATABASE_PATH ${resolve(config.DATABASE_PATH)} does not exist, while LEDGER_KEY_PATH ${resolve(config.LEDGER_KEY_PATH)} holds a ledger signing key: the hub's database was lost or DATABASE_PATH is wrong; restore the database from your backup or correct DATABASE_PATH (to start a new, empty ledger signed with that key, as with a key provisioned before the first start, run \`hub migrate --new-ledger\` first)`,
  );
}

/**
 * The hub secret about to be made anew (HUB_SECRET unset, HUB_SECRET_PATH missing) while the
 * database holds what the old one keyed: e-mail links already sent (their tokens signed with a key
 * derived from it, unless LINK_KEYS gives key 1 its own) and callback endpoints (their secrets
 * encrypted with one, unless CALLBACK_SECRETS_KEY is set). A new secret would make every such link
 * a 404 and every such endpoint undeliverable: a restore that left the file out.
 */
function assertSecretKept(config: Config, db: Db): void {
  if (config.HUB_SECRET || existsSync(config.HUB_SECRET_PATH)) return;
  const linkKeyOwn = (config.LINK_KEYS ?? "").split(",").some((pair) => pair.trim().split(":")[0] === "1");
  const c = db.$client;
  // Run before the migrations (a refused start leaves the database as it was): a table missing holds nothing.
  const any = (table: string) => !!c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) && !!c.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get();
  const links = !linkKeyOwn && any("links");
  const endpoints = !config.CALLBACK_SECRETS_KEY && any("endpoints");
  if (!links && !endpoints) return;
  const held = [links ? "e-mail rejection links already sent" : null, endpoints ? "callback endpoints' signing secrets" : null].filter((h) => h !== null);
  const lost = [links ? "those links would answer 404" : null, endpoints ? "those endpoints' deliveries would fail until each gets a new secret" : null].filter((h) => h !== null);
  throw new Error(
    `HUB_SECRET_PATH ${resolve(config.HUB_SECRET_PATH)} does not exist (and HUB_SECRET is unset), while the database holds ${held.join(" and ")}, made with the hub secret: restore the file from the backup it was taken with (hub backup keeps it), or point HUB_SECRET_PATH at it; if it is lost for good, set HUB_SECRET to a new secret of 32 characters or more (${lost.join("; ")})`,
  );
}

/** Opens the database (migrating it), Redis and the queues; the server, the CLI and tests share it. */
export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const log = overrides.log ?? createLogger(config.LOG_LEVEL);
  const clock = overrides.clock ?? systemClock;
  let db: Db;
  if (!overrides.db) {
    assertHubDatabaseFile(config.DATABASE_PATH);
    assertNotLostDatabase(config);
  }
  try {
    db = overrides.db ?? openDatabase(config.DATABASE_PATH, { synchronous: config.SQLITE_SYNCHRONOUS });
  } catch (err) {
    throw new Error(`DATABASE_PATH ${config.DATABASE_PATH} cannot be opened: ${(err as Error).message}`);
  }
  let prepared: ReturnType<typeof prepareSecrets>;
  try {
    assertSecretKept(config, db);
    // Before Redis is touched: a secret that cannot be read stops the start with nothing claimed or
    // queued there (read after, it left the prefix's claim and its queues' keys behind). One made
    // anew is written only once Redis is found to be this hub's (below).
    prepared = prepareSecrets(config.HUB_SECRET, config.HUB_SECRET_PATH, log);
  } catch (err) {
    if (!overrides.db) db.$client.close();
    throw err;
  }
  runMigrations(db);
  const calendar = buildCalendar(config);
  // A new key only for a ledger nothing was signed in yet (a lost or replaced key file is an error, not a fresh start).
  const ledgerKey = await ledgerKeyFor(db, config.LEDGER_KEY_PATH, log);
  const ledger = new Ledger(db, { clock, calendar, planners: [iysReportPlanner] });
  ledger.addPlanner(callbackPlanner(db));
  // Without the İYS API there is nobody to ask what İYS holds of a refusal kept to the hub.
  if (config.IYS_API_BASE_URL) ledger.addPlanner(iysFollowPlanner(db));
  // Producers fail fast while Redis is down: the receipt or outbox row is durable and the sweeper re-enqueues it.
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
  // One log line per outage, not one per reconnection attempt.
  let redisDown = false;
  redis.on("error", (err: Error) => {
    if (!redisDown) log.warn({ err: err.message }, "Redis unreachable; receipts stay durable and are enqueued when it is back");
    redisDown = true;
  });
  redis.on("ready", () => {
    if (redisDown) log.info({}, "Redis reachable again");
    redisDown = false;
  });
  // Give the first connection a moment so the first requests enqueue directly; if Redis is down we
  // start anyway (receipts are durable, the sweeper enqueues them once Redis is back).
  const reachable = await redisReady(redis, 2000).then(
    () => true,
    (err: Error) => (log.warn({ err: err.message }, "starting without Redis"), false),
  );
  const hubId = hubIdOf(db);
  const wrongDatabase = reachable ? await redisDatabaseProblem(redis).catch(() => null) : null;
  const foreignPrefix = reachable && !wrongDatabase ? await queuePrefixProblem(redis, config.QUEUE_PREFIX, hubId).catch(() => null) : null;
  if (wrongDatabase || foreignPrefix) {
    redis.disconnect();
    if (!overrides.db) db.$client.close();
    throw new Error((wrongDatabase ?? foreignPrefix)!);
  }
  try {
    prepared.keep();
  } catch (err) {
    redis.disconnect();
    if (!overrides.db) db.$client.close();
    throw new Error(`HUB_SECRET_PATH ${config.HUB_SECRET_PATH} cannot be written: ${(err as Error).message}`);
  }
  const secrets = prepared.secrets;
  watchRedisConnection(redis, log, { prefix: config.QUEUE_PREFIX, hubId });
  // The claim on QUEUE_PREFIX is renewed while this process runs (it lapses a few minutes after the hub's last process stopped).
  const prefixClaim = setInterval(() => {
    if (redis.status !== "ready") return;
    queuePrefixProblem(redis, config.QUEUE_PREFIX, hubId).then((problem) => problem && log.error({}, problem), () => {});
  }, PREFIX_CLAIM_RENEW_MS);
  prefixClaim.unref();
  const producer = new JobProducer(redis, config.QUEUE_PREFIX);
  const iys = buildIysReporter(config, redis);

  // Enqueueing never holds up an answer: while Redis is down BullMQ would wait for the connection
  // forever, so we skip (the row is durable; the sweeper enqueues it) or give up after a moment.
  const enqueueTimeoutMs = 2000;
  const guard = <T>(p: () => Promise<T>) =>
    redis.status === "ready" ? withTimeout(p(), enqueueTimeoutMs, "enqueue") : Promise.reject(new Error(`Redis ${redis.status}`));
  const jobs = {
    async enqueueReceipt(id: number, opts?: { priority?: number }) {
      try {
        await guard(() => producer.enqueueReceipt(id, opts));
      } catch (err) {
        log.warn({ receiptId: id, err: (err as Error).message }, "enqueue failed; the sweeper will retry");
      }
    },
    /** Throws when Redis is unavailable: callers batching after the answer log it; the sweeper retries. */
    async enqueueReceipts(items: { id: number; priority?: number }[]) {
      if (items.length) await guard(() => producer.enqueueReceipts(items));
    },
    async enqueueOutbox(rows: OutboxRef[], opts: { tag?: string; bulk?: boolean } = {}) {
      if (rows.length === 0) return;
      try {
        await guard(() => producer.enqueueOutbox(rows, opts));
      } catch (err) {
        log.warn({ outbox: rows.length, err: (err as Error).message }, "enqueue failed; the sweeper will retry");
      }
    },
  };

  const senders = buildSenders(config);
  /** How each channel's receipts become ledger actions (the apply job, and apply-on-read). */
  const interpreters: ConsentApplyDeps["interpreters"] = {
    sms: smsInterpreter(db),
    voice: voiceInterpreter(db),
    link: linkInterpreter(db),
  };
  const applyDeps: ConsentApplyDeps = { db, ledger, interpreters, enqueueOutbox: jobs.enqueueOutbox };
  const APPLY_ON_READ_MAX = 10_000;
  const receipts = {
    async applyPending(addresses?: () => Iterable<string>) {
      const channels = Object.keys(interpreters);
      const pending = (limit: number) =>
        (
          db.$client
            .prepare(`SELECT id, from_address AS fromAddress FROM receipts WHERE status = 'received' AND channel IN (${channels.map(() => "?").join(",")}) ORDER BY id LIMIT ?`)
            .all(...channels, limit) as { id: number; fromAddress: string | null }[]
        );
      const apply = async (ids: number[]) => {
        for (let k = 0; k < ids.length; k += 1000) {
          // A receipt that cannot be applied stays pending (its job says why): the answer is then
          // given from the state as it stands, never a 500 for every caller.
          await applyReceipts({ payload: { receiptIds: ids.slice(k, k + 1000) }, deps: applyDeps }).catch((err: unknown) =>
            log.warn({ err: err instanceof Error ? err.message : String(err) }, "apply-on-read left receipts pending"),
          );
        }
      };
      const oldest = pending(APPLY_ON_READ_MAX + 1);
      await apply(oldest.slice(0, APPLY_ON_READ_MAX).map((r) => r.id));
      // Behind a larger backlog, the asked addresses' own receipts still go first: a refusal already
      // stored is honoured whatever waits before it.
      // Receipts keep the sender as the provider spelled it (Vonage's msisdn has no +): compared normalised.
      if (oldest.length > APPLY_ON_READ_MAX && addresses) {
        const wanted = new Set(addresses());
        const asked = (from: string | null) => {
          if (from === null) return false;
          const n = normalizeRecipient(from);
          return n.ok && wanted.has(n.value);
        };
        await apply(pending(Number.MAX_SAFE_INTEGER).filter((r) => asked(r.fromAddress)).map((r) => r.id));
      }
    },
  };
  const mailer = createMailer(config);
  const deps: AppDeps = { config, db, ledger, calendar, clock, log, ledgerKey, redis, hubId, secrets, jobs, receipts };
  deps.queues = producer.queues;
  deps.metrics = new Metrics({ processMetrics: true }).bind({ db, queues: producer.queues, calendar, clock });
  let workers: RunningWorkers | null = null;
  let sweeper: { stop(): void } | null = null;
  let callbacks: { close(): Promise<void> } | null = null;
  let checkpointTimer: NodeJS.Timeout | null = null;
  let iysPull: { stop(): Promise<void> } | null = null;
  const checkpoint = () =>
    createCheckpoint(db, ledgerKey, clock).catch((err: unknown) => log.error({ err: (err as Error).message }, "checkpoint failed"));

  return {
    deps,
    iys,
    producer,
    startBackground() {
      workers = startWorkers(
        {
          db,
          ledger,
          clock,
          log,
          iys,
          senders,
          interpreters,
          mailer,
          enqueueOutbox: jobs.enqueueOutbox,
          iysBatchPollMs: config.IYS_BATCH_POLL_SECONDS * 1000,
          iysRetryBaseMs: config.IYS_RETRY_BASE_SECONDS * 1000,
          scheduleOutbox: (row, delayMs, at) => guard(() => producer.enqueueOutboxAt(row, delayMs, at)),
          metrics: deps.metrics,
        },
        { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX },
      );
      sweeper = startSweeper(
        {
          db,
          log,
          now: () => clock.now().getTime(),
          graceMs: config.SWEEPER_GRACE_SECONDS * 1000,
          enqueueReceipts: (rows, tag) => producer.enqueueReceipts(rows, { tag, lifo: true }),
          oldestWaiting: (queue) => producer.oldestWaiting(queue),
          redisReady: () => redis.status === "ready",
          enqueueOutbox: async (rows, tag) => {
            await producer.enqueueOutbox(rows.filter((r) => r.kind !== "callback"), { single: true, tag, lifo: true });
            await sweepCallbackRows(db, producer, rows.filter((r) => r.kind === "callback"));
          },
        },
        config.SWEEPER_INTERVAL_SECONDS * 1000,
      );
      if (iys.configured) {
        // What was skipped while İYS was not configured here (or a brand lacked its codes) and İYS would still take.
        try {
          const now = clock.now().getTime();
          const reopened = reopenSkippedIysReports(db, calendar, now);
          if (reopened.length > 0) {
            log.info({ iysReportsReopened: reopened.length }, "skipped İYS reports reopened: İYS is configured now");
            void enqueueReopened(jobs.enqueueOutbox, reopened, now);
          }
        } catch (err) {
          // The database busy past its timeout (another process's long write): the next start tries again.
          log.warn({ err: (err as Error).message }, "could not reopen skipped İYS reports");
        }
      }
      callbacks = startCallbacks(config, { db, clock, log, secrets, producer, enqueueOutbox: jobs.enqueueOutbox, metrics: deps.metrics });
      if (iys.configured && config.IYS_PULL_INTERVAL_SECONDS > 0) {
        iysPull = startIysPull({ db, ledger, iys, clock, log, redis, prefix: config.QUEUE_PREFIX, enqueueOutbox: jobs.enqueueOutbox }, config.IYS_PULL_INTERVAL_SECONDS * 1000);
      }
      if (config.CHECKPOINT_INTERVAL_SECONDS > 0) {
        checkpointTimer = setInterval(checkpoint, config.CHECKPOINT_INTERVAL_SECONDS * 1000);
        checkpointTimer.unref();
      }
    },
    async close() {
      clearInterval(prefixClaim);
      sweeper?.stop();
      if (checkpointTimer) clearInterval(checkpointTimer);
      await iysPull?.stop();
      // Bounded: with Redis gone BullMQ's close would wait for a connection that never comes. Longer
      // than a callback's timeout, so a delivery in flight is recorded rather than sent again later.
      await withTimeout(Promise.all([workers?.close(), callbacks?.close()]), config.CALLBACK_TIMEOUT_MS + 5000, "closing workers").catch((err: Error) => log.warn({ err: err.message }, "workers did not close cleanly"));
      await checkpoint();
      await withTimeout(producer.close(), 2000, "closing queues").catch(() => {});
      redis.disconnect();
      mailer?.close();
      // A database handed in (the CLI's, a test's shared one) is its owner's to close.
      if (!overrides.db) db.$client.close();
    },
  };
}
