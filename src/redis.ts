import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Db } from "../db/index";
import type { Logger } from "./log";

/**
 * Resolves when the connection is ready, rejects after `ms`. Our producer connection has no offline
 * queue (commands fail fast while Redis is down), so callers that can afford to wait use this first.
 */
export function redisReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`Redis not ready after ${ms} ms (status ${redis.status})`));
    }, ms);
    function onReady() {
      clearTimeout(timer);
      resolve();
    }
    redis.once("ready", onReady);
  });
}

/**
 * Whether the connection is on the database its URL names: a Redis without that database (an index
 * past its `databases`), or one that does not allow SELECT (a proxy, an ACL without it), answers the
 * connection's SELECT with an error that ioredis only emits, and carries on in database 0, where
 * another application's keys may live. Null when it is (database 0 is where a connection starts:
 * PING only), else the problem to show. Throws what the connection throws otherwise (Redis unreachable).
 */
export async function redisDatabaseProblem(redis: Redis): Promise<string | null> {
  const db = redis.options.db ?? 0;
  if (db === 0) {
    await redis.ping();
    return null;
  }
  try {
    await redis.select(db);
    return null;
  } catch (err) {
    const message = (err as Error).message;
    if (!/DB index|invalid DB|SELECT is not allowed|unknown command|NOPERM/i.test(message)) throw err;
    return `REDIS_URL names database ${db}, which this Redis refuses (${message}): use a database it has (0 to its "databases" setting less one), or database 0 where SELECT is not allowed (a cluster, a proxy)`;
  }
}

/**
 * This database's hub id, made at its first start (hub_meta): the same for every process of one hub
 * (web, workers, the CLI), another for another database, a restored copy's the original's.
 */
export function hubIdOf(db: Db): string {
  db.$client.prepare("INSERT OR IGNORE INTO hub_meta (key, value) VALUES ('hub_id', ?)").run(randomUUID());
  return db.$client.prepare("SELECT value FROM hub_meta WHERE key = 'hub_id'").pluck().get() as string;
}

/** How long a claim on QUEUE_PREFIX outlives its hub's last renewal (every PREFIX_CLAIM_RENEW_MS while it runs). */
export const PREFIX_CLAIM_TTL_S = 180;
export const PREFIX_CLAIM_RENEW_MS = 60_000;

// Takes the claim when it is free, renews it when it is this hub's; answers the holder otherwise.
const claimPrefix = redisScript<[string, string, number], string | null>(
  "hubClaimPrefix",
  `local held = redis.call('GET', KEYS[1])
   if held == false or held == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return nil end
   return held`,
  1,
);

/**
 * Claims QUEUE_PREFIX on this Redis for this database (`<prefix>:hub-id`, renewed while the hub
 * runs, lapsing PREFIX_CLAIM_TTL_S after its last process stopped): null when it is this hub's (or
 * was free), else the problem to show. Two hubs with their own databases on one prefix (a staging
 * copy or a test instance on the default `hub`) took each other's jobs: a job for a row the other
 * database does not have ended "already finished", and the owner's work waited for its sweeper.
 */
export async function queuePrefixProblem(redis: Redis, prefix: string, hubId: string): Promise<string | null> {
  const key = `${prefix}:hub-id`;
  const holder = await claimPrefix(redis)(key, hubId, PREFIX_CLAIM_TTL_S);
  if (holder === null) return null;
  return `QUEUE_PREFIX ${prefix} is another hub's on this Redis (its database's hub id ${holder}; this database's is ${hubId}): two hubs on one prefix take each other's jobs; give each hub its own QUEUE_PREFIX (or Redis database); a hub's claim lapses ${PREFIX_CLAIM_TTL_S / 60} minutes after it stopped (or delete the Redis key ${key} if that hub is gone for good)`;
}

/**
 * Logs a problem each time the connection is (re)established: one made while Redis was down at the
 * start is checked when it comes up.
 */
export function watchRedisConnection(redis: Redis, log: Logger, claim?: { prefix: string; hubId: string }): void {
  redis.on("ready", () => {
    redisDatabaseProblem(redis).then(
      (problem) => problem && log.error({}, `${problem}; the hub's queues are in database 0 until REDIS_URL is fixed (/readyz answers 503)`),
      () => {},
    );
    if (claim) queuePrefixProblem(redis, claim.prefix, claim.hubId).then((problem) => problem && log.error({}, problem), () => {});
  });
}

/**
 * A Lua script as a command of each connection it is used on: defined once per connection, then
 * sent by EVALSHA (its text travels once). `numberOfKeys` omitted: the caller passes it first.
 */
export function redisScript<A extends (string | number)[], R>(name: string, lua: string, numberOfKeys?: number): (redis: Redis) => (...args: A) => Promise<R> {
  const defined = new WeakSet<Redis>();
  return (redis) => {
    if (!defined.has(redis)) {
      redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
      defined.add(redis);
    }
    const cmd = (redis as unknown as Record<string, (...args: A) => Promise<R>>)[name]!;
    return cmd.bind(redis);
  };
}

/** While connected, how often an error that keeps recurring is logged again (with a count of the repeats). */
const REPEAT_LOG_MS = 60_000;

/**
 * An error listener for a BullMQ worker (or anything on a reconnecting connection). While the
 * connection is down each distinct error is logged once, and one line says when it is back: without
 * it a Redis outage wrote a line per worker per reconnection attempt (a dozen a second, then one
 * every two seconds per worker, for as long as the outage lasted). While it is up, an error that
 * keeps recurring (READONLY after a failover, OOM at maxmemory) is logged at most once a minute with
 * the number of repeats, never silenced.
 */
export function logOnceWhileDown(connection: Redis, log: Logger, fields: Record<string, unknown>, message: string): (err: Error) => void {
  const down = new Set<string>();
  const up = new Map<string, { at: number; repeats: number }>();
  connection.on("ready", () => {
    if (down.size > 0) log.info(fields, "Redis reachable again");
    down.clear();
  });
  return (err: Error) => {
    if (connection.status !== "ready") {
      if (down.has(err.message)) return;
      if (down.size >= 100) down.clear();
      down.add(err.message);
      log.error({ ...fields, err: err.message }, message);
      return;
    }
    const now = Date.now();
    const last = up.get(err.message);
    if (last && now - last.at < REPEAT_LOG_MS) {
      last.repeats++;
      return;
    }
    if (up.size >= 100) up.clear();
    up.set(err.message, { at: now, repeats: 0 });
    log.error({ ...fields, err: err.message, ...(last?.repeats ? { repeatsSinceLastLine: last.repeats } : {}) }, message);
  };
}
