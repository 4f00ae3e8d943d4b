import type { Redis } from "ioredis";

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
