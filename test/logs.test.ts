import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { EventEmitter } from "node:events";
import { serve } from "@hono/node-server";
import { Writable } from "node:stream";
import type { Redis } from "ioredis";
import { logOnceWhileDown } from "../src/redis";
import twilio from "twilio";
import { redactPath } from "../src/metrics/route";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp, type App } from "../src/app";
import { createLogger } from "../src/log";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { ADMIN_KEY, authed, deletePrefix, REDIS_URL, tempDir, testConfig, waitFor } from "./helpers";

const ACCOUNT_SID = `AC${"d4".repeat(16)}`;
const AUTH_TOKEN = "twilio-logs-test-token";
const BASE = "https://hub.example.com";
const PHONE = "+905327771122";
const EMAIL = "gizli.kisi@ornek.com.tr";
const BODY = "RET MIGROS lütfen";

const tmp = tempDir();
const fakeTwilio = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
const lines: Record<string, unknown>[] = [];
const raw: string[] = [];
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  // Every line the process writes, as written (the destination pino would give stdout).
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const config = testConfig(tmp.dir, { LOG_LEVEL: "info", TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN, TWILIO_API_BASE_URL: await fakeTwilio.start() });
  runtime = await createRuntime(config, { log: createLogger("info", sink) });
  runtime.startBackground();
  app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros", shortNames: ["MİGROS"], numbers: [{ number: "3434", provider: "twilio" }] }));
  expect(res.status).toBe(201);
}, 30_000);

afterAll(async () => {
  await runtime.close();
  await fakeTwilio.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

describe("logs", () => {
  it("an SMS webhook, a link click and their jobs log one line per request and per job, with ids and without addresses, bodies or link tokens", async () => {
    const sid = `SM${"7".repeat(32)}`;
    const params = { MessageSid: sid, SmsSid: sid, AccountSid: ACCOUNT_SID, From: PHONE, To: "3434", Body: BODY, NumSegments: "1" };
    const sms = await app.request("/sms/twilio", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${BASE}/sms/twilio`, params) },
      body: new URLSearchParams(params).toString(),
    });
    expect(sms.status).toBe(200);
    const smsRequestId = sms.headers.get("x-request-id");

    const issued = await app.request("/api/v1/links", authed({ brand: "MIGROS", recipient: EMAIL }));
    expect(issued.status).toBe(200);
    const path = new URL(((await issued.json()) as { url: string }).url).pathname;
    const token = path.split("/").pop()!;
    expect(token.length).toBeGreaterThan(8);
    expect((await app.request(path)).status).toBe(200);
    const click = await app.request(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" });
    expect(click.status).toBe(200);
    // A mistyped link (404) is logged with its route pattern; a path no route knows, with long segments redacted.
    expect((await app.request(`${path}/extra`)).status).toBe(404);
    expect((await app.request(`/x/${token}`)).status).toBe(404);

    // Both receipts applied, the SMS confirmation sent: the consent and confirmation jobs have run.
    await waitFor(() => fakeTwilio.sent.some((s) => s.to === PHONE));
    await waitFor(() => lines.filter((l) => l.queue === "consent" && l.jobId).length >= 2 && lines.some((l) => l.queue === "confirmations" && l.jobId));

    const requests = lines.filter((l) => l.msg === "request");
    const smsLines = requests.filter((l) => l.requestId === smsRequestId);
    expect(smsLines).toHaveLength(1);
    expect(smsLines[0]).toMatchObject({ method: "POST", route: "/sms/twilio", status: 200 });
    expect(requests.filter((l) => l.route === "/r/:token").map((l) => l.method)).toEqual(["GET", "POST"]);
    const notFound = requests.filter((l) => l.status === 404);
    expect(notFound).toHaveLength(2);
    expect(notFound[0]).toMatchObject({ route: "/r/*" });
    expect(notFound[0]).not.toHaveProperty("path");
    expect(notFound[1]).toMatchObject({ route: "unmatched", path: "/x/:redacted" });
    for (const l of requests) expect(typeof l.requestId === "string" && typeof l.ms === "number").toBe(true);
    const jobs = lines.filter((l) => l.jobId !== undefined);
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const j of jobs) expect(j).toMatchObject({ queue: expect.any(String), job: expect.any(String), ms: expect.any(Number) });

    const all = raw.join("\n");
    if (process.env.SHOW_LOGS) console.log(all);
    for (const secret of [PHONE, PHONE.slice(1), PHONE.slice(3), "5327771122", EMAIL, "gizli.kisi", BODY, "lütfen", token]) {
      expect(all, `the logs contain ${secret}`).not.toContain(secret);
    }
  }, 60_000);

  it("a caller's X-Request-Id is kept, unless it holds a phone number or an e-mail (then the hub makes its own)", async () => {
    const asked = async (id: string) => (await app.request("/api/v1/brands", { headers: { authorization: `Bearer ${ADMIN_KEY}`, "x-request-id": id } })).headers.get("x-request-id");
    // Ids with digit runs that are no phone number are kept (a UUID, a dated counter).
    for (const id of ["crm-batch-42.a", "550e8400-e29b-41d4-a716-446655440000", "req-20261203-1234567", "1796301234525", "order-1234567890"]) expect(await asked(id)).toBe(id);
    for (const id of ["rid-05321119998", "05321119998", "0532-111-99-98", "905321119998", "crm-0212-555-12-12", "rid-4915112345678", "rid-00905321119998", "ali.veli@ornek.com", "ali.veli%40ornek.com"]) {
      expect(await asked(id)).toMatch(/^[0-9a-f-]{36}$/);
    }
    const all = raw.join("\n");
    for (const id of ["05321119998", "ali.veli"]) expect(all).not.toContain(id);
  });
});

describe("request lines", () => {
  it("an error answer's line names its code and field (a 422 by its İYS code); probes and scrapes that succeed are not logged at info", async () => {
    const from = lines.length;
    const old = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: PHONE, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: "2020-01-01 10:00:00" }));
    expect(old.status).toBe(422);
    const bad = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: PHONE, type: "FAKS", status: "ONAY", source: "HS_WEB", consentDate: "2020-01-01 10:00:00" }));
    expect(bad.status).toBe(400);
    // A field the caller made up, named like an address: masked in the line.
    const madeUp = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: PHONE, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: "2020-01-01 10:00:00", [EMAIL]: 1 }));
    expect(madeUp.status).toBe(400);
    for (const probe of ["/healthz", "/readyz"]) expect((await app.request(probe)).status).toBe(200);
    const requests = lines.slice(from).filter((l) => l.msg === "request");
    expect(requests.map((l) => [l.route, l.status, l.error, l.field])).toEqual([
      ["/api/v1/consents", 422, (await old.json()).error.code, "consentDate"],
      ["/api/v1/consents", 400, "bad_request", "type"],
      ["/api/v1/consents", 400, "bad_request", "g***@ornek.com.tr"],
    ]);
    expect(raw.slice(from).join("\n")).not.toContain(EMAIL);
    expect(raw.slice(from).join("\n")).not.toContain(PHONE.slice(-7));
  });
});

describe("an unhandled error", () => {
  it("is logged with the addresses its message and stack quote masked, and answered as a generic 500", async () => {
    const boom = createApp(runtime.deps);
    boom.get("/boom", () => {
      throw new Error(`cannot apply ${PHONE} for ${EMAIL}`);
    });
    const res = await boom.request("/boom");
    expect(res.status).toBe(500);
    const line = lines.find((l) => l.msg === "unhandled error" && JSON.stringify(l).includes("cannot apply"));
    expect(line).toBeDefined();
    const text = JSON.stringify(line);
    expect(text).not.toContain(PHONE.slice(3));
    expect(text).not.toContain("gizli.kisi");
  });
});

describe("redactPath", () => {
  it("a client that goes away in the middle of its body is a 400 in the request line, not an unhandled error: a webhook and an import upload over a real node server", async () => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const { port } = server.address() as AddressInfo;
    const cut = (path: string, headers: string) =>
      new Promise<void>((resolve) => {
        const socket: Socket = connect(port, "127.0.0.1", () => {
          // 3 bytes of a declared 1000, then the connection drops.
          socket.write(`POST ${path} HTTP/1.1\r\nHost: hub.example.com\r\n${headers}Content-Length: 1000\r\n\r\nabc`);
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 100);
        });
      });
    try {
      const from = lines.length;
      await cut("/sms/twilio", "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: x\r\n");
      await cut("/api/v1/imports?brand=MIGROS", `Authorization: Bearer ${ADMIN_KEY}\r\nContent-Type: text/csv\r\n`);
      const requests = () => lines.slice(from).filter((l) => l.msg === "request");
      await waitFor(() => requests().length === 2 || undefined);
      expect(requests().map((l) => [l.route, l.status]).sort()).toEqual([["/api/v1/imports", 400], ["/sms/twilio", 400]]);
      expect(lines.slice(from).filter((l) => l.level === 50)).toEqual([]);
    } finally {
      (server as import("node:http").Server).closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("hides numbers however they are written, e-mails and long tokens, and keeps plain words", () => {
    expect(redactPath("/consents/0532-123-45-67")).toBe("/consents/:redacted");
    expect(redactPath("/consents/0532 123 45 67")).toBe("/consents/:redacted");
    expect(redactPath("/consents/+905321234567")).toBe("/consents/:redacted");
    expect(redactPath("/x/a@b.com")).toBe("/x/:redacted");
    expect(redactPath("/api/v1/brands/MIGROS")).toBe("/api/v1/brands/MIGROS");
    // A number split across segments, an @ encoded twice.
    expect(redactPath("/x/0532/111/22/33")).toBe("/:redacted");
    expect(redactPath("/x/ali%2540example.com")).toBe("/x/:redacted");
    expect(redactPath("/api/v1/imports/2026/x")).toBe("/api/v1/imports/2026/x");
  });
});


/** A TCP proxy in front of the test Redis that can be cut (connections dropped, new ones refused) and restored on the same port. */
async function redisProxy() {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    async cut() {
      await new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      });
    },
    restore: () => new Promise<void>((r) => server.listen(port, "127.0.0.1", r)),
  };
}

describe("logs during a Redis outage", () => {
  it("each worker logs the outage once and its end once, not a line per reconnection attempt", async () => {
    const proxy = await redisProxy();
    const dir = tempDir();
    const seen: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString("utf8").split("\n")) if (line) seen.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const config = testConfig(dir.dir, { LOG_LEVEL: "info", REDIS_URL: proxy.url, SWEEPER_INTERVAL_SECONDS: "1" });
    const rt = await createRuntime(config, { log: createLogger("info", sink) });
    try {
      rt.startBackground();
      await waitFor(() => rt.deps.redis.status === "ready");
      await new Promise((r) => setTimeout(r, 500));
      const from = seen.length;
      await proxy.cut();
      // Several seconds of reconnection attempts by every connection (ioredis retries from 50 ms).
      await new Promise((r) => setTimeout(r, 4000));
      const during = seen.slice(from);
      const errors = during.filter((l) => l.msg === "worker error");
      const queues = ["consent", "confirmations", "iys-reports", "callbacks"];
      expect(new Set(errors.map((l) => l.queue))).toEqual(new Set(queues));
      expect(errors.length).toBeLessThanOrEqual(queues.length * 2); // a refused connection, perhaps a closed one first
      expect(during.filter((l) => l.msg === "sweep failed")).toEqual([]);
      await proxy.restore();
      await waitFor(() => seen.filter((l) => l.msg === "Redis reachable again").length >= queues.length + 1, { timeoutMs: 20_000 });
      expect(new Set(seen.filter((l) => l.msg === "Redis reachable again").map((l) => l.queue ?? "producer"))).toEqual(new Set([...queues, "producer"]));
    } finally {
      await rt.close();
      await deletePrefix(config.QUEUE_PREFIX);
      dir.cleanup();
    }
  }, 60_000);
});

describe("logOnceWhileDown", () => {
  it("while connected, an error that keeps recurring is logged once a minute with the number of repeats, never silenced", () => {
    const seen: Record<string, unknown>[] = [];
    const log = createLogger("info", { write: (s: string) => void seen.push(JSON.parse(s) as Record<string, unknown>) });
    const connection = Object.assign(new EventEmitter(), { status: "ready" });
    const onError = logOnceWhileDown(connection as unknown as Redis, log, { queue: "consent" }, "worker error");
    vi.useFakeTimers({ now: Date.parse("2026-11-25T10:00:00Z") });
    try {
      for (let i = 0; i < 1000; i++) onError(new Error("READONLY You can't write against a read only replica."));
      expect(seen).toHaveLength(1);
      vi.setSystemTime(Date.parse("2026-11-25T10:01:01Z"));
      onError(new Error("READONLY You can't write against a read only replica."));
      expect(seen).toHaveLength(2);
      expect(seen[1]).toMatchObject({ queue: "consent", msg: "worker error", repeatsSinceLastLine: 999 });
      // Down: each distinct error once, however long it lasts; one line when it is back.
      connection.status = "reconnecting";
      for (let i = 0; i < 50; i++) onError(new Error("connect ECONNREFUSED 127.0.0.1:6379"));
      expect(seen).toHaveLength(3);
      connection.status = "ready";
      connection.emit("ready");
      expect(seen.at(-1)).toMatchObject({ msg: "Redis reachable again" });
    } finally {
      vi.useRealTimers();
    }
  });
});
