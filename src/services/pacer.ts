import type { Redis } from "ioredis";
import { withTimeout } from "../async";
import { redisScript } from "../redis";

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

const reserveSlot = redisScript<[key: string, gap: number], number>("hubReserveSlot", RESERVE, 1);

/**
 * A number of calls an hour; `take` answers null when the call may go, else the ms until the next
 * hour's budget. A `low` priority call takes only from the first half of the hour's budget, so work
 * that can wait never holds back the rest.
 */
export interface HourlyBudget {
  take(opts?: { low?: boolean }): Promise<number | null>;
  /** The API said this hour's budget is spent (its 429): nothing more is taken before the next hour. Answers the ms until then. */
  exhaust(): Promise<number>;
}

const HOUR_MS = 3_600_000;

/**
 * At most `perHour` calls in each clock hour (Redis's clock), counted in Redis under `key`, so every
 * hub process sharing it stays within the budget together. While Redis cannot be asked the process
 * counts alone (as RedisPacer does).
 */
export class RedisHourlyBudget implements HourlyBudget {
  private local = { hour: -1, used: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly perHour: number,
  ) {
    if (!Number.isInteger(perHour) || perHour < 1) throw new Error("perHour must be a positive integer");
  }

  /** The most a call may find used and still go: the whole budget, or half of it for a low-priority call. */
  private cap(low: boolean): number {
    return low ? Math.max(1, Math.floor(this.perHour / 2)) : this.perHour;
  }

  private async ask(spend: boolean, low = false): Promise<number> {
    if (this.redis.status === "ready") {
      try {
        return Number(await withTimeout(hourlyBudget(this.redis)(this.key, this.perHour, spend ? this.cap(low) : 0), 500, "hourly budget"));
      } catch {
        // fall through to the local count
      }
    }
    const now = Date.now();
    const hour = Math.floor(now / HOUR_MS);
    if (hour !== this.local.hour) this.local = { hour, used: 0 };
    const next = (hour + 1) * HOUR_MS - now;
    if (!spend) {
      this.local.used = this.perHour;
      return next;
    }
    if (this.local.used >= this.cap(low)) return next;
    this.local.used++;
    return -1;
  }

  async take(opts: { low?: boolean } = {}): Promise<number | null> {
    const wait = await this.ask(true, opts.low ?? false);
    return wait < 0 ? null : wait;
  }

  exhaust(): Promise<number> {
    return this.ask(false);
  }
}

/**
 * KEYS[1]: the budget's key (the hour is appended); ARGV[1]: calls an hour; ARGV[2]: 0 to mark the
 * hour spent, else take one if fewer than that many were taken this hour. Answers -1 when the call
 * may go, else the ms until the next hour.
 */
const HOURLY = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hour = math.floor(now / ${HOUR_MS})
local key = KEYS[1] .. ':' .. hour
local next = (hour + 1) * ${HOUR_MS} - now
if ARGV[2] == '0' then
  redis.call('SET', key, ARGV[1], 'PX', next + 60000)
  return next
end
local used = tonumber(redis.call('GET', key) or '0')
if used >= tonumber(ARGV[2]) then return next end
if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, next + 60000) end
return -1`;

const hourlyBudget = redisScript<[key: string, perHour: number, cap: number], number>("hubHourlyBudget", HOURLY, 1);
