import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { HttpIysReporter } from "../src/services/iys";
import { RedisHourlyBudget, RedisPacer } from "../src/services/pacer";
import { FakeIys } from "./fakes/iys";
import { ADMIN_KEY, authed, deletePrefix, REDIS_URL, tempDir, testConfig, uniquePrefix, waitFor } from "./helpers";

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

/** A hub with workers and a fake İYS for one describe block, and one brand with İYS codes. */
function hubWithIys(env: Record<string, string>, brand: { code: string; iysCode: string; brandCode: string }) {
  const tmp = tempDir();
  const h = { iys: new FakeIys(), url: "", runtime: undefined as unknown as Runtime };
  beforeAll(async () => {
    h.url = await h.iys.start();
    h.runtime = await createRuntime(testConfig(tmp.dir, { IYS_API_BASE_URL: h.url, IYS_USERNAME: "u", IYS_PASSWORD: "p", ...env }));
    h.runtime.startBackground();
    const res = await createApp(h.runtime.deps).request("/api/v1/brands", authed({ ...brand, name: brand.code, shortNames: [brand.code], numbers: [] }));
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await h.runtime.close();
    await h.iys.stop();
    await deletePrefix(h.runtime.deps.config.QUEUE_PREFIX);
    tmp.cleanup();
  });
  return h;
}

/** Two Redis connections (two hub processes) and a key prefix of their own for one describe block. */
function twoProcesses() {
  const prefix = uniquePrefix();
  const a = new Redis(REDIS_URL);
  const b = new Redis(REDIS_URL);
  afterAll(async () => {
    a.disconnect();
    b.disconnect();
    await deletePrefix(prefix);
  });
  return { prefix, a, b };
}

describe("RedisPacer", () => {
  const { prefix, a, b } = twoProcesses();

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
  const h = hubWithIys({ IYS_MAX_REQUESTS_PER_SECOND: "20" }, { code: "PACE", iysCode: "800001", brandCode: "800002" });

  it("40 movements recorded at once reach İYS at no more than 20 requests a second, all reported", async () => {
    const app = createApp(h.runtime.deps);
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
    const db = h.runtime.deps.db.$client;
    await waitFor(() => {
      const left = (db.prepare(`SELECT count(*) AS n FROM outbox WHERE kind = 'iys_report' AND status = 'pending'`).get() as { n: number }).n;
      return left === 0 && h.iys.writes.length >= 40;
    });
    expect(h.iys.writes).toHaveLength(40);
    // 41 requests (a token and 40 writes) sent as fast as the workers could: paced, they span about
    // 40 gaps of 50 ms. A pause of the process (GC, a loaded machine) fires the timers that fell due
    // during it together, so the bounds leave room for one of ~250 ms; a pacer at 25 a second (a
    // span of 1600 ms) fails them, and unpaced all 41 arrive within ~0.2 s.
    const span = Math.max(...h.iys.arrivals) - Math.min(...h.iys.arrivals);
    expect(span).toBeGreaterThanOrEqual(1700);
    expect(busiestSecond(h.iys.arrivals)).toBeLessThanOrEqual(26);
  });
});

/** Waits out the last 90 seconds of a clock hour, so a test's budget is not reset halfway; answers the next hour's start. */
async function clearOfHourEnd(): Promise<number> {
  const left = 3_600_000 - (Date.now() % 3_600_000);
  if (left < 90_000) await new Promise((r) => setTimeout(r, left + 500));
  return (Math.floor(Date.now() / 3_600_000) + 1) * 3_600_000;
}

describe("RedisHourlyBudget", () => {
  const { prefix, a, b } = twoProcesses();

  it("two processes sharing the key take from one budget an hour; past it they are told how long until the next hour", async () => {
    const nextHour = await clearOfHourEnd();
    const key = `${prefix}:status`;
    const one = new RedisHourlyBudget(a, key, 3);
    const two = new RedisHourlyBudget(b, key, 3);
    await Promise.all([a.ping(), b.ping()]);
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => (i % 2 ? one : two).take()));
    expect(answers.filter((w) => w === null)).toHaveLength(3);
    const toHour = nextHour - Date.now();
    for (const w of answers.filter((x) => x !== null)) {
      expect(w).toBeGreaterThan(toHour - 2000);
      expect(w).toBeLessThanOrEqual(toHour + 2000);
    }
    // Another key has its own budget; marking it spent stops it at once.
    const other = new RedisHourlyBudget(a, `${prefix}:other`, 3);
    expect(await other.take()).toBeNull();
    expect(await other.exhaust()).toBeGreaterThan(0);
    expect(await other.take()).toBeGreaterThan(0);
  });

  it("a low-priority call takes only from the first half of the hour's budget: the rest stays for the others", async () => {
    await clearOfHourEnd();
    const budget = new RedisHourlyBudget(a, `${prefix}:halves`, 4);
    expect([await budget.take({ low: true }), await budget.take({ low: true })]).toEqual([null, null]);
    expect(await budget.take({ low: true })).toBeGreaterThan(0);
    expect([await budget.take(), await budget.take()]).toEqual([null, null]);
    expect(await budget.take()).toBeGreaterThan(0);
    // Alone, without Redis, the same.
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    const local = new RedisHourlyBudget(down, "unused", 2);
    expect(await local.take({ low: true })).toBeNull();
    expect(await local.take({ low: true })).toBeGreaterThan(0);
    expect(await local.take()).toBeNull();
    expect(await local.take()).toBeGreaterThan(0);
    down.disconnect();
  });

  it("without Redis the process counts alone", async () => {
    await clearOfHourEnd();
    const down = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    const local = new RedisHourlyBudget(down, "unused", 2);
    expect([await local.take(), await local.take()]).toEqual([null, null]);
    expect(await local.take()).toBeGreaterThan(0);
    down.disconnect();
  });

  it("refuses a budget that is not a positive whole number", () => {
    expect(() => new RedisHourlyBudget(a, "k", 0)).toThrow(/positive integer/);
    expect(() => new RedisHourlyBudget(a, "k", 1.5)).toThrow(/positive integer/);
  });
});

describe("İYS status queries within their hourly budget (IYS_STATUS_QUERIES_PER_HOUR)", () => {
  const h = hubWithIys({ IYS_STATUS_QUERIES_PER_HOUR: "2" }, { code: "ASK", iysCode: "810001", brandCode: "810002" });

  it("follows past the hour's budget wait for the next hour without asking İYS", async () => {
    const nextHour = await clearOfHourEnd();
    const app = createApp(h.runtime.deps);
    const date = formatIysDate(new Date(Date.now() - 60_000));
    // Refusals of consents the hub never held: each asks İYS whether it holds one (an iys_follow row).
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.request("/api/v1/consents", authed({ brand: "ASK", recipient: `+90534${String(i).padStart(7, "0")}`, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: date }));
      expect(res.status, await res.clone().text()).toBe(201);
      ids.push(((await res.json()) as { event: { id: number } }).event.id);
    }
    const db = h.runtime.deps.db.$client;
    const follows = () =>
      ids.map((id) => db.prepare(`SELECT status, last_error AS lastError, next_attempt_at AS nextAt FROM outbox WHERE event_id = ? AND kind = 'iys_follow'`).get(id)) as {
        status: string;
        lastError: string | null;
        nextAt: number | null;
      }[];
    const settled = (await waitFor(() => {
      const rows = follows();
      return rows.filter((r) => r.status === "done").length === 2 && rows.some((r) => r.lastError?.startsWith("İYS status query waits")) ? rows : null;
    }))!;
    expect(h.iys.statusQueries).toBe(2);
    const waiting = settled.find((r) => r.status === "pending")!;
    expect(waiting.lastError).toMatch(/hourly budget of İYS status queries is spent until/);
    expect(waiting.nextAt).toBeGreaterThanOrEqual(nextHour - 2000);
    expect(waiting.nextAt).toBeLessThanOrEqual(nextHour + 62_000);
  });

  it("İYS's own 429 H086 spends the hour: no status query is sent until the next one", async () => {
    const nextHour = await clearOfHourEnd();
    const redis = new Redis(REDIS_URL);
    const prefix = uniquePrefix();
    try {
      const reporter = new HttpIysReporter({ baseUrl: h.url, username: "u", password: "p", statusBudget: new RedisHourlyBudget(redis, `${prefix}:status`, 1000) });
      const consent = { recipient: "+905340000099", recipientType: "BIREYSEL", type: "MESAJ" };
      const before = h.iys.statusQueries;
      h.iys.refuseStatusNext = 1;
      const refused = await reporter.consentStatus({ iysCode: "810001", brandCode: "810002" }, consent);
      expect(refused).toMatchObject({ ok: false, permanent: false, code: "H086" });
      expect((refused as { retryAt: number }).retryAt).toBeGreaterThanOrEqual(nextHour - 2000);
      const held = await reporter.consentStatus({ iysCode: "810001", brandCode: "810002" }, consent);
      expect(held).toMatchObject({ ok: false, code: "status_budget" });
      expect(h.iys.statusQueries - before).toBe(1);
    } finally {
      redis.disconnect();
      await deletePrefix(prefix);
    }
  });
});

describe("status queries that can wait take from the first half of the hour's budget", () => {
  const h = hubWithIys({ IYS_STATUS_QUERIES_PER_HOUR: "2" }, { code: "HALF", iysCode: "820001", brandCode: "820002" });

  it("refusals too old for İYS over its consents are asked about one an hour here; a fresh refusal's question still goes", async () => {
    await clearOfHourEnd();
    const app = createApp(h.runtime.deps);
    const db = h.runtime.deps.db.$client;
    const yearAgo = formatIysDate(new Date(Date.now() - 365 * 86_400_000));
    const phones = ["+905350000001", "+905350000002"];
    const loaded = await app.request("/api/v1/imports?brand=HALF&registered=true", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" },
      body: `type,recipient,status,source,consentDate,recipientType\n${phones.map((p) => `MESAJ,${p},ONAY,HS_WEB,${yearAgo},BIREYSEL`).join("\n")}\n`,
    });
    expect(loaded.status, await loaded.clone().text()).toBe(200);
    const refuse = async (recipient: string, daysAgo: number) => {
      const consentDate = formatIysDate(new Date(Date.now() - daysAgo * 86_400_000 - 60_000));
      const res = await app.request("/api/v1/consents", authed({ brand: "HALF", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate }));
      expect(res.status, await res.clone().text()).toBe(201);
      return ((await res.json()) as { event: { id: number } }).event.id;
    };
    const follow = (id: number) => db.prepare(`SELECT status, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = 'iys_follow'`).get(id) as { status: string; lastError: string | null };
    const first = await refuse(phones[0]!, 10);
    await waitFor(() => follow(first).status === "done");
    const second = await refuse(phones[1]!, 10);
    await waitFor(() => follow(second).lastError?.startsWith("İYS status query waits"));
    expect(h.iys.statusQueries).toBe(1);
    // A refusal of a consent the hub never held, within İYS's 3 business days: asked at once.
    const fresh = await refuse("+905350000003", 0);
    await waitFor(() => follow(fresh).status === "done");
    expect(h.iys.statusQueries).toBe(2);
    expect(follow(second).status).toBe("pending");
  });
});
