import type { Redis } from "ioredis";
import { withTimeout } from "./async";

export interface RateLimitResult {
  /** Calls in the current window, this one included; null when Redis could not be asked. */
  count: number | null;
  limited: boolean;
}

/**
 * Fixed-window counters in Redis under the queue prefix. Fails open: while Redis is down nothing is
 * limited (the action itself must never be lost to a limiter). Keys hold pseudonyms, never numbers.
 */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async hit(name: string, subject: string, limit: number, windowMs: number, now: number): Promise<RateLimitResult> {
    if (this.redis.status !== "ready") return { count: null, limited: false };
    const window = Math.floor(now / windowMs);
    const key = `${this.prefix}:rl:${name}:${subject}:${window}`;
    try {
      const res = await withTimeout(this.redis.multi().incr(key).pexpire(key, windowMs * 2).exec(), 500, "rate limit");
      const count = Number(res?.[0]?.[1] ?? 0);
      return { count, limited: count > limit };
    } catch {
      return { count: null, limited: false };
    }
  }
}
