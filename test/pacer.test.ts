import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { RedisPacer } from "../src/services/pacer";
import { FakeIys } from "./fakes/iys";
import { authed, deletePrefix, REDIS_URL, tempDir, testConfig, uniquePrefix, waitFor } from "./helpers";

/** The most requests that arrived within any one second. */
function busiestSecond(times: number[]): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; j < t.length; j++) {
    while (t[j]! - t[i]! >= 1000) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

describe("RedisPacer", () => {
  const prefix = uniquePrefix();
  const a = new Redis(REDIS_URL);
  const b = new Redis(REDIS_URL);

  afterAll(async () => {
    a.disconnect();
    b.disconnect();
    await deletePrefix(prefix);
  });

  it("two processes sharing the key get slots 1/perSecond apart from one schedule", async () => {
    const key = `${prefix}:iys:next-request`;
    const one = new RedisPacer(a, key, 20);
    const two = new RedisPacer(b, key, 20);
    await Promise.all([a.ping(), b.ping()]);
    const waits = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? one : two).reserve()));
    const sorted = [...waits].sort((x, y) => x - y);
    // 30 reservations made within a few ms: the last is 29 gaps of 50 ms out, no two share a slot.
    expect(sorted[0]).toBeLessThan(50);
    expect(sorted[29]).toBeGreaterThanOrEqual(29 * 50 - 100);
    for (let i = 1; i < 30; i++) expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(40);
    // Another key (another hub) has its own schedule.
    expect(await new RedisPacer(a, `${prefix}:other`, 20).reserve()).toBeLessThan(50);
  });

  it("without Redis the process keeps its own schedule", async () => {
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    const local = new RedisPacer(down, "unused", 10);
    const waits = [await local.reserve(), await local.reserve(), await local.reserve()];
    expect(waits[0]).toBe(0);
    expect(waits[1]).toBeGreaterThan(80);
    expect(waits[2]).toBeGreaterThan(180);
    down.disconnect();
  });

  it("refuses a non-positive rate", () => {
    expect(() => new RedisPacer(a, "k", 0)).toThrow(/positive/);
  });
});

describe("İYS reports are paced (IYS_MAX_REQUESTS_PER_SECOND)", () => {
  const tmp = tempDir();
  const iys = new FakeIys();
  let runtime: Runtime;

  beforeAll(async () => {
    const url = await iys.start();
    runtime = await createRuntime(
      testConfig(tmp.dir, { IYS_API_BASE_URL: url, IYS_USERNAME: "u", IYS_PASSWORD: "p", IYS_MAX_REQUESTS_PER_SECOND: "20" }),
    );
    runtime.startBackground();
    const res = await createApp(runtime.deps).request("/api/v1/brands", authed({ code: "PACE", name: "Pace", iysCode: "800001", brandCode: "800002", shortNames: ["PACE"], numbers: [] }));
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await runtime.close();
    await iys.stop();
    await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
    tmp.cleanup();
  });

  it("40 movements recorded at once reach İYS at no more than 20 requests a second, all reported", async () => {
    const app = createApp(runtime.deps);
    const date = formatIysDate(new Date(Date.now() - 60_000));
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        app.request(
          "/api/v1/consents",
          authed({ brand: "PACE", recipient: `+90533${String(i).padStart(7, "0")}`, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: date }),
        ),
      ),
    );
    expect(answers.map((r) => r.status).filter((s) => s >= 300)).toEqual([]);
    const db = runtime.deps.db.$client;
    await waitFor(() => {
      const left = (db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'iys_report' AND status = 'pending'`).get() as { n: number }).n;
      return left === 0 && iys.writes.length >= 40;
    });
    expect(iys.writes).toHaveLength(40);
    // 41 requests (a token and 40 writes) sent as fast as the workers could: paced, they span at
    // least 40 gaps of 50 ms; a network or event-loop delay can only push them later, never bunch
    // them beyond a request or two.
    const span = Math.max(...iys.arrivals) - Math.min(...iys.arrivals);
    expect(span).toBeGreaterThanOrEqual(40 * 50 - 100);
    expect(busiestSecond(iys.arrivals)).toBeLessThanOrEqual(22);
  });
});
