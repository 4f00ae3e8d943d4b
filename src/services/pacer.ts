import type { Redis } from "ioredis";
import { withTimeout } from "../async";

/** Spaces calls to an API that takes at most `perSecond` requests a second. */
export interface Pacer {
  /** Resolves when this caller may send its request. */
  slot(): Promise<void>;
}

/**
 * Reserves the next free moment `1000 / perSecond` ms after the last one reserved, and waits for it.
 * The schedule lives in Redis under `key` (Redis's own clock), so every hub process sharing it —
 * web, workers, CLI, behind one public address — stays within the budget together. While Redis
 * cannot be asked the process keeps its own schedule (alone within the budget; several processes
 * then could exceed it, and the API's 429 makes their jobs retry).
 */
export class RedisPacer implements Pacer {
  private localNext = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly perSecond: number,
  ) {
    if (!(perSecond > 0)) throw new Error("perSecond must be positive");
  }

  /** Whole milliseconds (rounded up, never over the budget): the schedule is kept as an integer. */
  private get gapMs(): number {
    return Math.ceil(1000 / this.perSecond);
  }

  /** Milliseconds until the slot reserved for this call. */
  async reserve(): Promise<number> {
    if (this.redis.status === "ready") {
      try {
        return Number(await withTimeout(reserveSlot(this.redis)(this.key, this.gapMs), 500, "pacer"));
      } catch {
        // fall through to the local schedule
      }
    }
    const now = Date.now();
    const at = Math.max(now, this.localNext);
    this.localNext = at + this.gapMs;
    return at - now;
  }

  async slot(): Promise<void> {
    const wait = await this.reserve();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** KEYS[1]: the next free moment (ms, Redis's clock); ARGV[1]: the gap. Answers the wait in ms. */
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gap = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
redis.call('SET', KEYS[1], tostring(at + gap), 'PX', math.ceil(at + gap - now) + 1000)
return math.ceil(at - now)`;

const defined = new WeakSet<Redis>();
function reserveSlot(redis: Redis): (key: string, gap: number) => Promise<number> {
  if (!defined.has(redis)) {
    redis.defineCommand("hubReserveSlot", { numberOfKeys: 1, lua: RESERVE });
    defined.add(redis);
  }
  const cmd = (redis as unknown as { hubReserveSlot: (key: string, gap: number) => Promise<number> }).hubReserveSlot;
  return cmd.bind(redis);
}
