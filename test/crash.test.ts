import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatIysDate } from "../src/domain/time";
import { FakeIys } from "./fakes/iys";
import { HubProcess, startedHubs, testPort } from "./hub-process";
import { ADMIN_KEY, deletePrefix, REDIS_URL, tempDir, uniquePrefix, waitFor } from "./helpers";

const tmp = tempDir();
const iys = new FakeIys();
const prefix = uniquePrefix();
let env: Record<string, string>;
const port = testPort();

beforeAll(async () => {
  const iysUrl = await iys.start();
  env = {
    DATABASE_PATH: join(tmp.dir, "hub.db"),
    LEDGER_KEY_PATH: join(tmp.dir, "key.json"),
    HUB_SECRET_PATH: join(tmp.dir, "hub-secret"),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    HUB_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: process.env.CRASH_LOG ?? "warn",
    IYS_API_BASE_URL: iysUrl,
    IYS_USERNAME: "u",
    IYS_PASSWORD: "p",
    SWEEPER_GRACE_SECONDS: "1",
    SWEEPER_INTERVAL_SECONDS: "1",
    HUB_CRASH_POINTS: "",
  };
});

afterAll(async () => {
  await iys.stop();
  for (const p of [prefix, `${prefix}-parser`, `${prefix}-warnings`]) await deletePrefix(p);
  tmp.cleanup();
});

function outboxStatuses(): string[] {
  const db = new Database(env.DATABASE_PATH, { readonly: true });
  try {
    return (db.prepare("SELECT status FROM outbox ORDER BY id").all() as { status: string }[]).map((r) => r.status);
  } finally {
    db.close();
  }
}

describe("crash between the ledger commit and the enqueue", () => {
  it("after a restart the sweeper delivers every outbox row exactly once", async () => {
    const hub = new HubProcess(port, env);
    await hub.start();
    await hub.post("/api/v1/brands", { code: "MIGROS", name: "Migros", iysCode: "1", brandCode: "2", shortNames: ["MIGROS"] });
    await hub.stop();

    // 1. The process dies (SIGKILL) right after COMMIT, before anything reaches Redis.
    const crashing = new HubProcess(port, env);
    await crashing.start({ HUB_CRASH_POINTS: "after-ledger-commit" });
    const bodies = [0, 1, 2].map((i) => ({
      brand: "MIGROS",
      recipient: `+90532000000${i}`,
      type: "MESAJ",
      status: "ONAY",
      source: "HS_WEB",
      consentDate: formatIysDate(new Date(Date.now() - 60_000)),
    }));
    await expect(crashing.post("/api/v1/consents", bodies[0])).rejects.toThrow();
    expect(await crashing.exited()).toMatchObject({ signal: "SIGKILL" });
    expect(outboxStatuses()).toEqual(["pending"]);

    // 2. Redis unreachable while two more are committed: acknowledged, nothing enqueued.
    const noRedis = new HubProcess(port, env);
    await noRedis.start({ REDIS_URL: "redis://127.0.0.1:1", RUN_WORKERS: "false" });
    expect((await noRedis.post("/api/v1/consents", bodies[1])).status).toBe(201);
    expect((await noRedis.post("/api/v1/consents", bodies[2])).status).toBe(201);
    await noRedis.stop();
    expect(outboxStatuses()).toEqual(["pending", "pending", "pending"]);
    expect(iys.writes).toHaveLength(0);

    // 3. Restart: the sweeper finds the three rows and each reaches İYS once.
    const healthy = new HubProcess(port, env);
    await healthy.start();
    await waitFor(() => outboxStatuses().every((s) => s === "done"), { timeoutMs: 20_000 });
    // The client retries the request that died with the process: the same event, no new İYS write.
    const retried = await healthy.post("/api/v1/consents", bodies[0]);
    expect(retried.status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500)); // two more sweeps
    await healthy.stop();

    // 4. Another restart changes nothing.
    const again = new HubProcess(port, env);
    await again.start();
    await new Promise((r) => setTimeout(r, 2500));
    await again.stop();

    expect(iys.writes.map((w) => w.body.recipient).sort()).toEqual(["+905320000000", "+905320000001", "+905320000002"]);
    expect(outboxStatuses()).toEqual(["done", "done", "done"]);
  }, 120_000);
});

describe("crash while taking İYS's pull of recipients' movements", () => {
  const read = <T>(sql: string): T => {
    const db = new Database(env.DATABASE_PATH, { readonly: true });
    try {
      return db.prepare(sql).get() as T;
    } finally {
      db.close();
    }
  };
  const pulled = () => read<{ n: number }>(`SELECT count(*) AS n FROM consent_events e JOIN brands b ON b.id = e.brand_id WHERE b.code = 'PULLCRASH'`).n;
  const pointer = () => read<{ after: string | null } | undefined>(`SELECT after FROM iys_pull_cursors c JOIN brands b ON b.id = c.brand_id WHERE b.code = 'PULLCRASH'`)?.after ?? null;

  it("killed before the commit, nothing is taken; killed after it, the pointer moved with the movements; a restart takes none twice", async () => {
    const pull = { IYS_PULL_INTERVAL_SECONDS: "1" };
    const setup = new HubProcess(port + 2, env);
    await setup.start();
    expect((await setup.post("/api/v1/brands", { code: "PULLCRASH", name: "Pull crash", iysCode: "31", brandCode: "32" })).status).toBe(201);
    await setup.stop();
    for (let i = 0; i < 3; i++) iys.recipientMovement("31", "32", { recipient: `+90532700000${i}`, type: "MESAJ", status: "RET", source: "IYS_WEB" });
    // Only this brand is pulled: the pull of the provider's own movements (source HS) of the brand
    // before it, which has some, would reach the crash points first.
    const db = new Database(env.DATABASE_PATH);
    db.prepare(`UPDATE brands SET iys_code = NULL, brand_code = NULL WHERE code <> 'PULLCRASH'`).run();
    db.close();

    // The process dies inside the transaction, after the ledger's writes and before the pointer's.
    const before = new HubProcess(port + 2, env);
    await before.start({ ...pull, HUB_CRASH_POINTS: "iys-pull-before-commit" }).catch(() => {});
    expect(await before.exited()).toMatchObject({ signal: "SIGKILL" });
    expect(pulled()).toBe(0);
    expect(pointer()).toBeNull();

    // It dies right after the commit, before the callbacks are enqueued.
    const after = new HubProcess(port + 2, env);
    await after.start({ ...pull, HUB_CRASH_POINTS: "iys-pull-after-commit" }).catch(() => {});
    expect(await after.exited()).toMatchObject({ signal: "SIGKILL" });
    expect(pulled()).toBe(3);
    const moved = pointer();
    expect(moved).toMatch(/^\d+_[0-9a-f]{64}$/);

    const healthy = new HubProcess(port + 2, env);
    const queries = iys.changeQueries.length;
    await healthy.start(pull);
    await waitFor(() => iys.changeQueries.length >= queries + 2 || undefined, { timeoutMs: 20_000 });
    await healthy.stop();
    expect(iys.changeQueries.slice(queries).map((q) => q.get("after"))).toContain(moved);
    expect(pulled()).toBe(3);
    expect(pointer()).toBe(moved);
  }, 120_000);
});

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") for (const h of startedHubs) console.error(`--- hub output ---\n${h.output}`);
});

describe("stopping the server", () => {
  it("a request in flight when SIGTERM arrives is still answered, and what it wrote is there after", async () => {
    const hub = new HubProcess(port + 1, env);
    await hub.start();
    expect((await hub.post("/api/v1/brands", { code: "STOPPING", name: "Stopping" })).status).toBe(201);
    // The request's headers and half its body go out, then SIGTERM, then the rest.
    const body = JSON.stringify({ brand: "STOPPING", recipient: "+905321119988", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000)) });
    const socket = (await import("node:net")).createConnection(hub.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(`POST /api/v1/consents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`);
    socket.write(body.slice(0, 20));
    await new Promise((r) => setTimeout(r, 200));
    const exited = hub.exited();
    hub.child!.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    socket.write(body.slice(20));
    await ended;
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    expect((await exited).code).toBe(0);
    const db = new Database(env.DATABASE_PATH, { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) AS n FROM consent_events WHERE recipient = '+905321119988'").get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
  }, 60_000);
});

describe("requests Node's HTTP parser refuses", () => {
  /** Sends raw bytes, answers everything the server wrote until it closed the connection. */
  async function raw(portNumber: number, request: string): Promise<string> {
    const socket = (await import("node:net")).createConnection(portNumber, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
    socket.end(request);
    await closed;
    return answer;
  }

  it("get the hub's JSON error naming what is wrong (Node's own answer was an empty 400), and the server goes on", async () => {
    const hub = new HubProcess(port + 4, { ...env, DATABASE_PATH: join(tmp.dir, "parser.db"), LEDGER_KEY_PATH: join(tmp.dir, "parser-key.json"), QUEUE_PREFIX: `${prefix}-parser` });
    await hub.start();
    try {
      const cases: [string, number, RegExp][] = [
        [`GET /api/v1/brands HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n`, 400, /^the request is not valid HTTP\/1\.1: Invalid header .*\(HPE_INVALID_HEADER_TOKEN\); nothing was done$/],
        [`POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n`, 400, /^the request is not valid HTTP\/1\.1: Invalid character in Content-Length \(HPE_INVALID_CONTENT_LENGTH\)/],
        [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431, /^the request's headers are larger than the server takes \(16 KiB in all\) \(HPE_HEADER_OVERFLOW\)/],
      ];
      for (const [request, status, message] of cases) {
        const answer = await raw(hub.port, request);
        const [head, body] = answer.split("\r\n\r\n");
        expect(head, request.slice(0, 40)).toMatch(new RegExp(`^HTTP/1\\.1 ${status} .*content-type: application/json`, "s"));
        expect(JSON.parse(body!), request.slice(0, 40)).toEqual({ error: { code: "bad_request", message: expect.stringMatching(message), requestId: null } });
      }
      expect((await fetch(`http://127.0.0.1:${hub.port}/healthz`)).status).toBe(200);
    } finally {
      await hub.stop();
    }
  }, 60_000);
});

describe("starting the server", () => {
  it("without IYS_API_BASE_URL it warns that nothing is reported to İYS; with it, it does not", async () => {
    const own = { ...env, DATABASE_PATH: join(tmp.dir, "warnings.db"), LEDGER_KEY_PATH: join(tmp.dir, "warnings-key.json"), QUEUE_PREFIX: `${prefix}-warnings`, LOG_LEVEL: "warn" };
    const warning = "IYS_API_BASE_URL is not set: no movement is reported to İYS";
    const without = new HubProcess(port + 3, own);
    await without.start({ IYS_API_BASE_URL: "", IYS_USERNAME: "", IYS_PASSWORD: "" });
    await without.stop();
    expect(without.output).toContain(warning);
    const withIys = new HubProcess(port + 3, own);
    await withIys.start();
    await withIys.stop();
    // Its warnings are read (no Vonage secret in this environment), this one is not among them.
    expect(withIys.output).toContain("VONAGE_SIGNATURE_SECRET is not set");
    expect(withIys.output).not.toContain(warning);
  }, 60_000);
});
