import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import type { ConsentAction } from "../db/ledger";
import { loadConfig, type Config } from "../src/config";
import type { Origin } from "../src/domain/consent";
import { createLogger } from "../src/log";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const ADMIN_KEY = "test-admin-key-0123456789";

/** A fresh folder for one test file's SQLite file and ledger key. */
export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "hub-test-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A queue prefix no other test (or developer) uses; tests delete only keys under it. */
export function uniquePrefix(): string {
  return `hubtest-${randomBytes(6).toString("hex")}`;
}

export function testConfig(dir: string, over: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: "test",
    DATABASE_PATH: join(dir, "hub.db"),
    LEDGER_KEY_PATH: join(dir, "ledger-key.json"),
    HUB_SECRET: "test-hub-secret-0123456789abcdefghij",
    REDIS_URL,
    QUEUE_PREFIX: uniquePrefix(),
    HUB_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: "silent",
    CHECKPOINT_INTERVAL_SECONDS: "0",
    // Tests of İYS's pull turn it on; elsewhere its requests would only add to the fake İYS's counts.
    IYS_PULL_INTERVAL_SECONDS: "0",
    PUBLIC_BASE_URL: "https://hub.example.com",
    ...over,
  });
}

export const silentLog = createLogger("silent");

/** Deletes this test's keys only (never FLUSHDB a shared Redis). */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const r = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== "0");
  } finally {
    r.disconnect();
  }
}

export function authed(body?: unknown, method = "POST"): RequestInit {
  return {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  };
}

export async function waitFor<T>(fn: () => T | Promise<T>, { timeoutMs = 60_000, intervalMs = 50 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`waitFor timed out${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A clock tests can pin and move. */
export class TestClock {
  constructor(private t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  set(d: Date | string) {
    this.t = new Date(d).getTime();
  }
  advance(ms: number) {
    this.t += ms;
  }
}

/**
 * Every byte SQLite holds for a database: the file and its WAL (a checkpoint may leave committed
 * pages in the WAL while a reader holds an older snapshot, so the file alone can miss them).
 */
export function databaseBytes(path: string): Buffer {
  const parts = [readFileSync(path)];
  if (existsSync(`${path}-wal`)) parts.push(readFileSync(`${path}-wal`));
  return Buffer.concat(parts);
}

/** The n-th of a run of Turkish mobiles (+90532…), consenting to SMS (HS_WEB): bulk ledger data for tests and benches. */
export function mobileOnay(brandId: number, n: number, consentDate: number, origin: Origin = "api"): ConsentAction {
  return {
    brandId,
    recipient: `+90532${String(n).padStart(7, "0")}`,
    recipientKind: "phone",
    phoneKind: "mobile",
    recipientType: "BIREYSEL",
    type: "MESAJ",
    status: "ONAY",
    source: "HS_WEB",
    consentDate,
    origin,
  };
}
