import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import type { Redis } from "ioredis";
import { withTimeout } from "./async";
import { redisScript } from "./redis";

/**
 * The client's IP for per-IP limits: from the header the reverse proxy sets (LINK_CLIENT_IP_HEADER),
 * else the socket; "unknown" when neither is there (in-process requests). Of a list
 * (X-Forwarded-For: client-claimed, …, what our proxy saw) the last entry is the one the proxy
 * appended itself: the entries before it are whatever the client sent, and trusting the first would
 * let every request claim a new address and never be limited.
 */
export function clientIp(c: Context, header: string | undefined): string {
  const forwarded = header ? c.req.header(header)?.split(",").at(-1)?.trim() : undefined;
  if (forwarded) return forwarded;
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

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
   * Many hits in one Redis command (a script: INCRBY per distinct key, PEXPIRE when the key is new),
   * so a batch of webhooks costs one round trip. Answers, per hit in order, whether it is over its
   * limit. Fails open like `hit`. The keys travel as one argument (a few hundred separate ones cost
   * ioredis more to encode than the script costs Redis to run).
   */
  async hitMany(hits: { name: string; subject: string; limit: number; windowMs: number }[], now: number): Promise<boolean[]> {
    if (hits.length === 0) return [];
    if (this.redis.status !== "ready") return hits.map(() => false);
    let spec = "";
    const index = new Map<string, number>();
    const counts: number[] = [];
    const slot = new Array<number>(hits.length);
    const nth = new Array<number>(hits.length);
    for (let k = 0; k < hits.length; k++) {
      const h = hits[k]!;
      const key = `${this.prefix}:rl:${h.name}:${h.subject}:${Math.floor(now / h.windowMs)}`;
      let i = index.get(key);
      if (i === undefined) {
        i = counts.length;
        index.set(key, i);
        counts.push(0);
        spec += `${key}\n${h.windowMs * 2}\n`;
      }
      slot[k] = i;
      nth[k] = ++counts[i]!;
    }
    try {
      const after = (await withTimeout(incrMany(this.redis)(0, spec, counts.join(",")), 1000, "rate limit")) as number[];
      // The nth hit of a key in this batch saw the count before the batch plus n.
      return hits.map((h, k) => after[slot[k]!]! - counts[slot[k]!]! + nth[k]! > h.limit);
    } catch {
      return hits.map(() => false);
    }
  }
}

/** ARGV[1]: "key\nttl\n" per key; ARGV[2]: the increments, comma-separated, in the same order. */
const INCR_MANY = `
local incs = {}
for n in string.gmatch(ARGV[2], '[^,]+') do incs[#incs + 1] = tonumber(n) end
local out = {}
local i = 0
for key, ttl in string.gmatch(ARGV[1], '([^\\n]+)\\n([^\\n]+)\\n') do
  i = i + 1
  local count = redis.call('INCRBY', key, incs[i])
  if count == incs[i] then redis.call('PEXPIRE', key, tonumber(ttl)) end
  out[i] = count
end
return out`;

const incrMany = redisScript<(string | number)[], number[]>("hubIncrMany", INCR_MANY);
