import type { Redis } from "ioredis";
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
 * An error listener for a BullMQ worker (or anything on a reconnecting connection) that logs each
 * distinct error once while the connection stays down, and one line when it is back: without it a
 * Redis outage wrote a line per worker per reconnection attempt (a dozen a second, then one every
 * two seconds per worker, for as long as the outage lasted).
 */
export function logOnceWhileDown(connection: Redis, log: Logger, fields: Record<string, unknown>, message: string): (err: Error) => void {
  const seen = new Set<string>();
  connection.on("ready", () => {
    if (seen.size > 0) log.info(fields, "Redis reachable again");
    seen.clear();
  });
  return (err: Error) => {
    if (seen.has(err.message)) return;
    if (seen.size >= 100) seen.clear();
    seen.add(err.message);
    log.error({ ...fields, err: err.message }, message);
  };
}
