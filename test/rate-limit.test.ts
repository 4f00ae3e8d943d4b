import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimiter } from "../src/rate-limit";
import { loadSecrets } from "../src/secrets";
import { REDIS_URL, deletePrefix, tempDir, uniquePrefix } from "./helpers";

describe("RateLimiter.hitMany (real Redis)", () => {
  const prefix = uniquePrefix();
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    await redis.ping();
  });
  afterAll(async () => {
    await redis.quit();
    await deletePrefix(prefix);
  });

  const hit = (subject: string, limit = 2, name = "t", windowMs = 60_000) => ({ name, subject, limit, windowMs });

  it("counts repeats within a batch and across batches, per key, in order", async () => {
    const limiter = new RateLimiter(redis, prefix);
    const now = 1_800_000_000_000;
    expect(await limiter.hitMany([hit("a"), hit("b"), hit("a"), hit("a"), hit("b", 5)], now)).toEqual([false, false, false, true, false]);
    expect(await limiter.hitMany([hit("b"), hit("a", 10), hit("c")], now)).toEqual([true, false, false]);
    const window = Math.floor(now / 60_000);
    expect(await redis.get(`${prefix}:rl:t:a:${window}`)).toBe("4");
    expect(await redis.get(`${prefix}:rl:t:b:${window}`)).toBe("3");
    // A new window starts from zero.
    expect(await limiter.hitMany([hit("a")], now + 60_000)).toEqual([false]);
  });

  it("a key gets twice its window as expiry when created, and a later hit does not extend it", async () => {
    const limiter = new RateLimiter(redis, prefix);
    const now = 1_800_000_000_000;
    await limiter.hitMany([hit("ttl", 5, "x", 3_600_000)], now);
    const key = `${prefix}:rl:x:ttl:${Math.floor(now / 3_600_000)}`;
    const first = await redis.pttl(key);
    expect(first).toBeGreaterThan(7_100_000);
    expect(first).toBeLessThanOrEqual(7_200_000);
    await redis.pexpire(key, 50_000);
    await limiter.hitMany([hit("ttl", 5, "x", 3_600_000)], now);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(50_000);
  });

  it("fails open while Redis is not ready", async () => {
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const limiter = new RateLimiter(down, prefix);
    expect(await limiter.hitMany([hit("z", 0), hit("z", 0)], Date.now())).toEqual([false, false]);
    down.disconnect();
  });
});

describe("pseudonyms", () => {
  it("are stable per secret and purpose, differ across either, and do not contain the value", () => {
    const t = tempDir();
    try {
      const a = loadSecrets("secret-a", `${t.dir}/s`);
      const b = loadSecrets("secret-b", `${t.dir}/s`);
      const p = a.pseudonym("rate-limit", "+905321234567");
      expect(p).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(a.pseudonym("rate-limit", "+905321234567")).toBe(p);
      expect(a.pseudonym("other", "+905321234567")).not.toBe(p);
      expect(b.pseudonym("rate-limit", "+905321234567")).not.toBe(p);
      expect(a.pseudonym("rate-limit", "+905321234568")).not.toBe(p);
      expect(p).not.toContain("5321234567");
    } finally {
      t.cleanup();
    }
  });

  it("a hub secret file that is empty, cut or edited stops the start naming it (an empty one was taken as a zero-byte secret); the one the hub writes loads again", () => {
    const t = tempDir();
    try {
      const path = `${t.dir}/data/hub-secret`;
      const made = loadSecrets(undefined, path).pseudonym("rate-limit", "x");
      expect(readFileSync(path, "utf8")).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      expect(readdirSync(`${t.dir}/data`)).toEqual(["hub-secret"]);
      expect(loadSecrets(undefined, path).pseudonym("rate-limit", "x")).toBe(made);
      const good = readFileSync(path, "utf8");
      for (const bad of ["", "\n", good.slice(0, 20), `${good.trim()}!`, "not base64url at all, spaces"]) {
        writeFileSync(path, bad);
        expect(() => loadSecrets(undefined, path), JSON.stringify(bad)).toThrow(/HUB_SECRET_PATH .*hub-secret does not hold a hub secret/);
      }
    } finally {
      t.cleanup();
    }
  });
});
