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

  /**
   * Many hits in one Redis command (a script: INCRBY and PEXPIRE per distinct key), so a batch of
   * webhooks costs one round trip. Answers, per hit in order, whether it is over its limit.
   * Fails open like `hit`.
   */
  async hitMany(hits: { name: string; subject: string; limit: number; windowMs: number }[], now: number): Promise<boolean[]> {
    if (hits.length === 0) return [];
    if (this.redis.status !== "ready") return hits.map(() => false);
    const keys: string[] = [];
    const index = new Map<string, number>();
    const counts: number[] = [];
    const ttls: number[] = [];
    const slot = hits.map((h) => {
      const key = `${this.prefix}:rl:${h.name}:${h.subject}:${Math.floor(now / h.windowMs)}`;
      let i = index.get(key);
      if (i === undefined) {
        i = keys.length;
        index.set(key, i);
        keys.push(key);
        counts.push(0);
        ttls.push(h.windowMs * 2);
      }
      counts[i]! += 1;
      return { i, nth: counts[i]! };
    });
    try {
      const after = (await withTimeout(
        incrMany(this.redis)(keys.length, ...keys, ...counts, ...ttls),
        1000,
        "rate limit",
      )) as number[];
      // The nth hit of a key in this batch saw the count before the batch plus n.
      return hits.map((h, k) => after[slot[k]!.i]! - counts[slot[k]!.i]! + slot[k]!.nth > h.limit);
    } catch {
      return hits.map(() => false);
    }
  }
}

const INCR_MANY = `
local n = #KEYS
local out = {}
for i = 1, n do
  out[i] = redis.call('INCRBY', KEYS[i], tonumber(ARGV[i]))
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[n + i]))
end
return out`;

const defined = new WeakSet<Redis>();
/** The script as an ioredis command: sent by EVALSHA (its text travels once per connection). */
function incrMany(redis: Redis): (...args: (string | number)[]) => Promise<number[]> {
  if (!defined.has(redis)) {
    redis.defineCommand("hubIncrMany", { lua: INCR_MANY });
    defined.add(redis);
  }
  const cmd = (redis as unknown as { hubIncrMany: (...args: (string | number)[]) => Promise<number[]> }).hubIncrMany;
  return cmd.bind(redis);
}
