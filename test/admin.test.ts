import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { openDatabase, runMigrations } from "../db/index";
import { Ledger } from "../db/ledger";
import { finishOutbox } from "../jobs/outbox";
import { reportsToIysNow, unreportedMovements } from "../src/admin/data";
import { createBrand } from "../src/brands";
import { IYS_SKIP_NOTES, iysReportPlanner } from "../src/iys-reports";
import { BusinessCalendar } from "../src/domain/calendar";
import { createQueueBoard } from "../src/admin/queues";
import { SESSION_COOKIE, SessionTokens } from "../src/admin/session";
import { createApp, type App } from "../src/app";
import { statementToAction } from "../src/consents";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { ADMIN_KEY, TestClock, authed, deletePrefix, silentLog, tempDir, testConfig, waitFor } from "./helpers";

const ACCOUNT_SID = `AC${"b2".repeat(16)}`;
const AUTH_TOKEN = "twilio-admin-test-token";
const BASE = "https://hub.example.com";
const METRICS_TOKEN = "metrics-token-0123456789";
/** Monday 16 November 2026, 10:00 in Istanbul. */
const MONDAY = new Date("2026-11-16T07:00:00Z");
const REFUSED_BY_IYS = "+905559990000";

const tmp = tempDir();
const clock = new TestClock(MONDAY.getTime());
const fakeTwilio = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
let iysServer: Server;
let runtime: Runtime;
let app: App;

/** A minimal İYS: tokens, and consent writes accepted except for one recipient it refuses (H120). */
async function startIys(): Promise<string> {
  iysServer = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/oauth2/token") return res.end(JSON.stringify({ access_token: "t", refresh_token: "r", expires_in: 7200, token_type: "bearer" }));
      const parsed = JSON.parse(body) as { recipient?: string };
      if (parsed.recipient === REFUSED_BY_IYS) {
        res.statusCode = 422;
        return res.end(JSON.stringify({ errors: [{ code: "H120", message: "Alıcı formatı hatalı." }] }));
      }
      res.end(JSON.stringify({ transactionId: "tx", creationDate: "2026-11-16 10:00:00" }));
    });
  });
  await new Promise<void>((r) => iysServer.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(iysServer.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const config = testConfig(tmp.dir, {
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_BASE_URL: await fakeTwilio.start(),
    IYS_API_BASE_URL: await startIys(),
    IYS_USERNAME: "u",
    IYS_PASSWORD: "p",
    METRICS_TOKEN,
    ADMIN_SESSION_MINUTES: "60",
    LINK_CLIENT_IP_HEADER: "x-forwarded-for",
  });
  runtime = await createRuntime(config, { clock });
  runtime.startBackground();
  app = createApp(runtime.deps);
  for (const brand of [
    { code: "MIGROS", name: "Migros", shortNames: ["MİGROS"], iysCode: "100", brandCode: "200", numbers: [{ number: "3434", provider: "twilio" }] },
    { code: "KOTON", name: "Koton", shortNames: ["KOTON"] },
  ]) {
    const res = await app.request("/api/v1/brands", authed(brand));
    expect(res.status, await res.clone().text()).toBe(201);
  }
}, 30_000);

afterAll(async () => {
  await runtime.close();
  await fakeTwilio.stop();
  await new Promise<void>((r) => iysServer.close(() => r()));
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;

function twilioSms(from: string, body: string, sid: string) {
  const params = { MessageSid: sid, SmsSid: sid, AccountSid: ACCOUNT_SID, From: from, To: "3434", Body: body, NumSegments: "1" };
  return app.request("/sms/twilio", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${BASE}/sms/twilio`, params) },
    body: new URLSearchParams(params).toString(),
  });
}

function login(key: string, origin: string | null = BASE) {
  return app.request("/admin/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(origin ? { origin } : {}) },
    body: new URLSearchParams({ key }).toString(),
  });
}

/** The session cookie's value from a login answer. */
function sessionFrom(res: Response): string {
  const m = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(res.headers.get("set-cookie") ?? "");
  if (!m) throw new Error("no session cookie");
  return m[1]!;
}

const withCookie = (token: string, init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), cookie: `${SESSION_COOKIE}=${token}` } });
const asAdmin: RequestInit = { headers: { authorization: `Bearer ${ADMIN_KEY}` } };

/** Prometheus text format → samples keyed by `name{label="v",…}` (labels sorted). */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(labels.length ? `${m[1]}{${labels.join(",")}}` : m[1]!, Number(m[3]));
  }
  return out;
}

async function scrape(): Promise<Map<string, number>> {
  const res = await app.request("/metrics", { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe("operator login", () => {
  it("a browser without a session is sent to the login form; an API client gets 401", async () => {
    const browser = await app.request("/admin", { headers: { accept: "text/html" } });
    expect(browser.status).toBe(303);
    expect(browser.headers.get("location")).toBe("/admin/login");
    const form = await app.request("/admin/login");
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form class="login" method="post" action="/admin/login">');
    const api = await app.request("/admin");
    expect(api.status).toBe(401);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  });

  it("a wrong key is refused with 401 and no cookie", async () => {
    const res = await login("not-the-key");
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await res.text()).toContain("Wrong key / Anahtar hatalı.");
  });

  it("the admin key gives an HttpOnly, Secure, SameSite=Strict session cookie without the key in it; logout clears it", async () => {
    const res = await login(ADMIN_KEY);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin");
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/admin/);
    expect(cookie).toMatch(/Max-Age=3600/);
    const token = sessionFrom(res);
    expect(token).not.toContain(ADMIN_KEY);
    expect(Buffer.from(token.split(".").join(""), "base64url").toString("latin1")).not.toContain(ADMIN_KEY);

    const page = await app.request("/admin", withCookie(token));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("İYS consent hub — operations");

    const out = await app.request("/admin/logout", withCookie(token, { method: "POST", headers: { origin: BASE } }));
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/admin/login");
    expect(out.headers.get("set-cookie")).toMatch(new RegExp(`${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it("a tampered, forged or expired session cookie is refused", async () => {
    const token = sessionFrom(await login(ADMIN_KEY));
    expect((await app.request("/admin", withCookie(token))).status).toBe(200);
    const [v, exp, nonce, mac] = token.split(".") as [string, string, string, string];
    const flipped = `${v}.${exp}.${nonce}.${mac.slice(0, -2)}${mac.at(-2) === "A" ? "B" : "A"}${mac.at(-1)}`;
    const longer = `${v}.${Number(exp) + 86_400_000}.${nonce}.${mac}`;
    const otherSecret = new SessionTokens(Buffer.alloc(32, 7), ADMIN_KEY).issue(clock.now().getTime(), 3_600_000);
    const otherKey = new SessionTokens(runtime.deps.secrets.derive("admin-session"), "another-admin-key").issue(clock.now().getTime(), 3_600_000);
    for (const bad of [flipped, longer, otherSecret, otherKey, "v1.9999999999999.AAAAAAAAAAAAAAAA.x", ADMIN_KEY]) {
      expect((await app.request("/admin", withCookie(bad))).status, bad).toBe(401);
    }
    // The same token from our own secret and key is accepted until it expires.
    const own = new SessionTokens(runtime.deps.secrets.derive("admin-session"), ADMIN_KEY).issue(clock.now().getTime(), 3_600_000);
    expect((await app.request("/admin", withCookie(own))).status).toBe(200);
    clock.advance(61 * 60_000);
    expect((await app.request("/admin", withCookie(token))).status).toBe(401);
    expect((await app.request("/admin", withCookie(own))).status).toBe(401);
  });

  it("login and logout posted from another origin, or with no origin, are refused with 403", async () => {
    for (const origin of ["https://evil.example", "http://hub.example.com", null]) {
      const res = await login(ADMIN_KEY, origin);
      expect(res.status, String(origin)).toBe(403);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    const token = sessionFrom(await login(ADMIN_KEY));
    const res = await app.request("/admin/logout", withCookie(token, { method: "POST", headers: { origin: "https://evil.example" } }));
    expect(res.status).toBe(403);
    // A Referer from our origin is enough when a browser leaves Origin out.
    expect((await app.request("/admin/login", { method: "POST", headers: { referer: `${BASE}/admin/login`, "content-type": "application/x-www-form-urlencoded" }, body: `key=${ADMIN_KEY}` })).status).toBe(303);
  });

  it("after 10 login attempts from one client in 15 minutes the form answers 429, even with the right key; other clients are unaffected", async () => {
    const attempt = (ip: string, key: string) =>
      app.request("/admin/login", { method: "POST", headers: { origin: BASE, "x-forwarded-for": ip, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ key }).toString() });
    for (let i = 0; i < 10; i++) expect((await attempt("203.0.113.9", `guess-${i}`)).status).toBe(401);
    const limited = await attempt("203.0.113.9", ADMIN_KEY);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("set-cookie")).toBeNull();
    expect((await attempt("203.0.113.10", ADMIN_KEY)).status).toBe(303);
  });

  it("Authorization: Bearer with the admin key opens the dashboard; another key is 401", async () => {
    expect((await app.request("/admin", asAdmin)).status).toBe(200);
    expect((await app.request("/admin", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
  });

  it("after 20 different wrong bearer keys from one client in 15 minutes (API, dashboard and /metrics together) its keys are refused with 429, the admin key too; other clients and a key repeated are unaffected", async () => {
    const from = (ip: string, key: string, path = "/api/v1/brands") => app.request(path, { headers: { authorization: `Bearer ${key}`, "x-forwarded-for": ip } });
    for (let i = 0; i < 10; i++) expect((await from("198.51.100.7", `guess-${i}-0123456789abcdef`)).status).toBe(401);
    for (let i = 10; i < 20; i++) expect((await from("198.51.100.7", `guess-${i}-0123456789abcdef`, "/admin")).status).toBe(401);
    const limited = await from("198.51.100.7", "guess-20-0123456789abcdef");
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited", message: expect.stringContaining("more than 20 different wrong API keys from this client") } });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    for (const path of ["/api/v1/brands", "/admin"]) expect((await from("198.51.100.7", ADMIN_KEY, path)).status).toBe(429);
    expect((await from("198.51.100.8", ADMIN_KEY)).status).toBe(200);
    // The window over, the client is heard again.
    clock.advance(15 * 60_000);
    try {
      expect((await from("198.51.100.7", ADMIN_KEY)).status).toBe(200);
    } finally {
      clock.advance(-15 * 60_000);
    }
    // One wrong key sent over and over (a platform polling with a revoked key) is one guess: it
    // never locks out the callers sharing its address.
    for (let i = 0; i < 40; i++) expect((await from("198.51.100.9", "revoked-key-0123456789abcdef")).status).toBe(401);
    expect((await from("198.51.100.9", ADMIN_KEY)).status).toBe(200);
    // /metrics takes the admin key too: its wrong tokens count, and a blocked client's right key is a 429 there.
    for (let i = 0; i < 20; i++) expect((await from("198.51.100.11", `token-guess-${i}-0123456789`, "/metrics")).status).toBe(401);
    expect((await from("198.51.100.11", "token-guess-20-0123456789", "/metrics")).status).toBe(429);
    expect((await from("198.51.100.11", ADMIN_KEY, "/metrics")).status).toBe(429);
    expect((await from("198.51.100.11", METRICS_TOKEN, "/metrics")).status).toBe(429);
    expect((await from("198.51.100.12", METRICS_TOKEN, "/metrics")).status).toBe(200);
  });

  it("the dashboard is sent with a CSP without external sources, no-store and frame-ancestors 'none'", async () => {
    for (const path of ["/admin", "/admin/login"]) {
      const res = await app.request(path, asAdmin);
      const csp = res.headers.get("content-security-policy")!;
      expect(csp).toMatch(/default-src 'none'/);
      expect(csp).toMatch(/frame-ancestors 'none'/);
      expect(csp).not.toMatch(/https?:|\*/);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
    const html = await (await app.request("/admin", asAdmin)).text();
    expect(html).not.toMatch(/<script|<link|src="http/);
  });
});

describe("dashboard content", () => {
  it("shows counts per brand and channel, the last events with masked addresses and the queue depths", async () => {
    expect((await twilioSms("+905321112233", "RET MIGROS", `SM${"1".padStart(32, "0")}`)).status).toBe(200);
    const api = await app.request("/api/v1/consents", authed({ brand: "KOTON", recipient: "ayse@example.com", type: "EPOSTA", status: "ONAY", source: "HS_WEB", consentDate: "2026-11-16 09:00:00" }));
    expect(api.status, await api.clone().text()).toBe(201);
    await waitFor(() => (db().prepare("SELECT count(*) AS n FROM consent_events WHERE recipient = '+905321112233'").get() as { n: number }).n === 1);

    const html = await (await app.request("/admin", asAdmin)).text();
    const section = (id: string) => new RegExp(`<section id="${id}"[^]*?</section>`).exec(html)![0];
    expect(section("counts")).toContain("<td>MIGROS</td><td>sms</td><td class=\"num\">0</td><td class=\"num\">1</td>");
    expect(section("counts")).toContain("<td>KOTON</td><td>api</td><td class=\"num\">1</td><td class=\"num\">0</td>");
    const recent = section("recent");
    expect(recent).toContain("+90532*****33");
    expect(recent).toContain("a***@example.com");
    expect(html).not.toContain("5321112233");
    expect(html).not.toContain("ayse@");
    const queues = section("queues");
    for (const q of ["consent", "confirmations", "callbacks", "iys-reports"]) expect(queues).toContain(`<td>${q}</td>`);
    expect(queues).toMatch(/<td class="num" data-state="waiting">\d+<\/td>/);
  });

  it("queue depths count jobs waiting in Redis", async () => {
    const queue = runtime.producer.queues.callbacks;
    await queue.add("callback.deliver", { outboxIds: [999_999] }, { jobId: "admin-test-depth", delay: 3_600_000 });
    const depths = await runtime.deps.metrics!.queueDepths();
    expect(depths.callbacks!.delayed).toBeGreaterThanOrEqual(1);
    const html = await (await app.request("/admin", asAdmin)).text();
    const row = /<tr><td>callbacks<\/td>(.*?)<\/tr>/.exec(html)![1]!;
    expect(Number(/data-state="delayed">(\d+)</.exec(row)![1])).toBe(depths.callbacks!.delayed);
    await queue.remove("admin-test-depth");
  });

  it("a paused queue shows on the dashboard and in /metrics (nothing is taken from it)", async () => {
    const queue = runtime.producer.queues["iys-reports"];
    expect((await scrape()).get('queue_paused{queue="iys-reports"}')).toBe(0);
    expect((await scrape()).get("redis_up")).toBe(1);
    await queue.pause();
    try {
      const html = await (await app.request("/admin", asAdmin)).text();
      expect(html).toMatch(/<td>iys-reports<strong class="err" data-paused="true">[^<]*paused \/ duraklatıldı<\/strong><\/td>/);
      expect(html).not.toMatch(/<td>consent<strong/);
      expect((await scrape()).get('queue_paused{queue="iys-reports"}')).toBe(1);
    } finally {
      await queue.resume();
    }
    expect((await scrape()).get('queue_paused{queue="iys-reports"}')).toBe(0);
  });

  it("a RET whose İYS report is not done shows as near its 3-business-day deadline, then past it", async () => {
    const onay = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: REFUSED_BY_IYS, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(clock.now()) }));
    expect(onay.status, await onay.clone().text()).toBe(201);
    // The RET's report waits while the ONAY's is on its way (a consent's movements reach İYS in
    // order, looked at again after a while of this test's stopped clock): let İYS refuse it first.
    const onayId = ((await onay.json()) as { event: { id: number } }).event.id;
    await waitFor(() => (db().prepare("SELECT status FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(onayId) as { status: string }).status === "failed");
    clock.advance(2000);
    const t0 = clock.now().getTime();
    const res = await app.request("/api/v1/consents", authed({ brand: "MIGROS", recipient: REFUSED_BY_IYS, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(clock.now()) }));
    expect(res.status, await res.clone().text()).toBe(201);
    const eventId = ((await res.json()) as { event: { id: number } }).event.id;
    const row = () => db().prepare("SELECT status, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(eventId) as { status: string; lastError: string };
    await waitFor(() => row()?.status === "failed");
    expect(row().lastError).toContain("H120");
    const deadlines = async () => /<section id="deadlines"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0];
    const deadlineRow = async () => new RegExp(`<tr><td><span class="badge (\\w+)">\\w+</span></td><td class="num">${eventId}</td>.*?</tr>`).exec(await deadlines());

    // Received Monday ~11:00: deadline is the end of Thursday; "near" from the end of Wednesday.
    expect(await deadlineRow()).toBeNull();
    clock.set(new Date(t0 + 2 * 86_400_000)); // Wednesday, more than one business day left
    expect(await deadlineRow()).toBeNull();
    clock.set(new Date("2026-11-19T09:00:00Z")); // Thursday noon
    const near = await deadlineRow();
    expect(near?.[1]).toBe("near");
    // /metrics counts it as the dashboard shows it (alerts need no dashboard): near now, past tomorrow.
    const atRisk = async () => {
      const m = await scrape();
      return { near: m.get('refusal_deadline_work{state="near"}'), past: m.get('refusal_deadline_work{state="past"}') };
    };
    const whenNear = await atRisk();
    expect(whenNear.near).toBeGreaterThanOrEqual(1);
    expect(near![0]).toContain("+90555*****00");
    expect(near![0]).toContain("2026-11-19 23:59:59");
    expect(near![0]).toContain("H120");
    clock.set(new Date("2026-11-20T09:00:00Z")); // Friday
    expect((await deadlineRow())?.[1]).toBe("past");
    const whenPast = await atRisk();
    expect(whenPast.past).toBeGreaterThanOrEqual(whenNear.past! + 1);
    expect((await scrape()).get("nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
  });

  it("an imported RET whose list İYS has not accepted is listed too, from its consentDate, and stays listed past 30 days", async () => {
    clock.set(new Date("2026-11-20T09:00:00Z")); // Friday 12:00 in Istanbul
    const recipient = "+905321234500";
    const upload = async (csv: string) => {
      const res = await app.request("/api/v1/imports?brand=MIGROS", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "text/csv" }, body: csv });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.json()).toMatchObject({ recorded: 1 });
    };
    // Two imports, so each movement goes in a list of its own (this İYS does not answer lists: they stay open).
    await upload(`type,recipient,status,source,consentDate\nMESAJ,${recipient},ONAY,HS_WEB,2026-11-18 09:00:00\n`);
    await upload(`type,recipient,status,source,consentDate\nMESAJ,${recipient},RET,HS_WEB,2026-11-18 10:00:00\n`);
    const eventId = (db().prepare("SELECT max(id) AS id FROM consent_events WHERE recipient = ? AND status = 'RET'").get(recipient) as { id: number }).id;
    expect(db().prepare("SELECT kind FROM outbox WHERE event_id = ?").all(eventId)).toEqual([{ kind: "iys_batch" }]);
    const row = async () =>
      new RegExp(`<tr><td><span class="badge (\\w+)">\\w+</span></td><td class="num">${eventId}</td>.*?</tr>`).exec(
        /<section id="deadlines"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0],
      );
    // Dated Wednesday: the deadline is the end of Monday (counted from its arrival on Friday it would be Wednesday's).
    clock.set(new Date("2026-11-24T07:00:00Z")); // Tuesday 10:00
    const past = await row();
    expect(past?.[1]).toBe("past");
    expect(past![0]).toContain("2026-11-23 23:59:59");
    expect(past![0]).toContain("iys_batch");
    clock.set(new Date("2027-01-05T07:00:00Z")); // six weeks later, still not reported
    expect((await row())?.[1]).toBe("past");
  });

  it("each brand's pulls of its movements on İYS (recipients', provider's own) show as ok, late after a day, losing after 6 (İYS lists 7) or never, with the last error; /metrics has when each last succeeded", async () => {
    const now = clock.now().getTime();
    const hour = 3_600_000;
    for (const [code, ageHours, error] of [["PULLOK", 1, null], ["PULLLATE", 30, "H353: brandCode, kullanıcı izinleriyle eşleştirilemiyor"], ["PULLLOSS", 150, null], ["PULLNEW", null, null]] as const) {
      const res = await app.request("/api/v1/brands", authed({ code, name: code, shortNames: [code], iysCode: "300", brandCode: `4${code.length}${code.charCodeAt(4)}` }));
      expect(res.status, await res.clone().text()).toBe(201);
      if (ageHours === null) continue;
      // What pullIysChanges writes (tested in iys-pull.test.ts), dated by this test's clock.
      db()
        .prepare(`INSERT INTO iys_pull_cursors (brand_id, after, movements, pulled_at, last_error, updated_at) SELECT id, '1_x', 7, ?, ?, ? FROM brands WHERE code = ?`)
        .run(now - ageHours * hour, error, now, code);
    }
    const html = await (await app.request("/admin", asAdmin)).text();
    const section = /<section id="iys-pull"[^]*?<\/section>/.exec(html)![0];
    const row = (code: string, source = "IYS") => new RegExp(`<tr data-pull="${code}" data-source="${source}">[^]*?</tr>`).exec(section)?.[0] ?? "";
    expect(row("PULLOK")).toMatch(/<span class="badge done">ok<\/span>.*<td class="num">7<\/td>/);
    expect(row("PULLLATE")).toMatch(/<span class="badge near">late<\/span>.*H353: brandCode/);
    expect(row("PULLLOSS")).toMatch(/<span class="badge past">losing<\/span>/);
    expect(row("PULLNEW")).toMatch(/<span class="badge past">never<\/span>.*<td class="num">0<\/td>/);
    expect(row("KOTON")).toBe(""); // no İYS codes: nothing to pull
    // The pull of the provider's own movements has its own standing: these brands never ran it.
    expect(row("PULLOK", "HS")).toMatch(/<span class="badge past">never<\/span>.*<td>provider \(HS\)<\/td>/);
    db().prepare(`UPDATE iys_pull_cursors SET hs_pulled_at = ?, hs_movements = 3, hs_last_error = 'HTTP_503: Service Unavailable' WHERE brand_id = (SELECT id FROM brands WHERE code = 'PULLOK')`).run(now - hour);
    const again = /<section id="iys-pull"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0];
    expect(new RegExp(`<tr data-pull="PULLOK" data-source="HS">[^]*?</tr>`).exec(again)![0]).toMatch(/<span class="badge done">ok<\/span>.*<td class="num">3<\/td><td class="err">HTTP_503/);

    const metrics = await scrape();
    expect(metrics.get('iys_pull_last_success_timestamp_seconds{brand="PULLOK",source="IYS"}')).toBe((now - hour) / 1000);
    expect(metrics.get('iys_pull_last_success_timestamp_seconds{brand="PULLOK",source="HS"}')).toBe((now - hour) / 1000);
    expect(metrics.get('iys_pull_failing{brand="PULLLATE",source="IYS"}')).toBe(1);
    expect(metrics.get('iys_pull_failing{brand="PULLOK",source="IYS"}')).toBe(0);
    expect(metrics.get('iys_pull_failing{brand="PULLOK",source="HS"}')).toBe(1);
    expect(metrics.has('iys_pull_last_success_timestamp_seconds{brand="PULLNEW",source="IYS"}')).toBe(false);
  });

  it("a failed İYS report is listed among the failures with its error", async () => {
    const html = await (await app.request("/admin", asAdmin)).text();
    const failures = /<section id="failures"[^]*?<\/section>/.exec(html)![0];
    expect(failures).toMatch(/<td>outbox<\/td><td class="num">\d+<\/td><td>iys_report<\/td><td><\/td><td><span class="badge failed">failed<\/span><\/td>.*H120: Alıcı formatı hatalı\./);
  });
  it("work left undone on purpose (skipped) or done since (a callback replayed) is not overdue; past 500 rows the oldest are counted, not shown", async () => {
    const created = await app.request("/api/v1/brands", authed({ code: "DEADL", name: "Deadlines", shortNames: ["DEADL"], numbers: [] }));
    expect(created.status, await created.clone().text()).toBe(201);
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'DEADL'").get() as { id: number }).id;
    clock.set(new Date("2026-11-02T09:00:00Z")); // a Monday, weeks before
    const refusals = Array.from({ length: 520 }, (_, i) => {
      const r = statementToAction({ brandId, recipient: `+90536${String(i).padStart(7, "0")}`, recipientType: "BIREYSEL", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - 600_000 + i * 1000)), origin: "api" });
      if (!r.ok) throw new Error(r.code);
      return r.action;
    });
    // Suppressions (no consent before, a brand without İYS codes): no work planned. Each gets a
    // follow that failed (open work), except one whose report was skipped on purpose, and one whose
    // callback was exhausted and then replayed, done.
    const ids = runtime.deps.ledger.apply(refusals).outcomes.map((o) => (o.kind === "recorded" ? o.event.id : 0));
    const [skipped, replayed, oldest, newest] = [ids[518]!, ids[519]!, ids[0]!, ids[517]!];
    const row = db().prepare("INSERT INTO outbox (kind, event_id, target, status, last_error, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 'test', 0, 0, 0)");
    db().transaction(() => {
      for (const id of ids.slice(0, 518)) row.run("iys_follow", id, null, "failed");
      row.run("iys_report", skipped, null, "skipped");
      row.run("callback", replayed, "ep_test", "exhausted");
      row.run("callback", replayed, "ep_test", "done");
    })();
    clock.set(new Date("2026-11-20T09:00:00Z"));
    const section = /<section id="deadlines"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0];
    const listed = (id: number) => new RegExp(`<td class="num">${id}</td>`).test(section);
    expect(listed(skipped)).toBe(false);
    expect(listed(replayed)).toBe(false);
    expect(listed(newest)).toBe(true);
    expect(listed(oldest)).toBe(false);
    const notShown = Number(/and (\d+) older ones not shown/.exec(section)?.[1]);
    expect(notShown).toBeGreaterThanOrEqual(18);
    expect((section.match(/<tr><td><span class="badge/g) ?? []).length).toBe(500);
  });
});

describe("a refusal İYS refused as older (H178)", () => {
  it("leaves the deadlines once the follow took İYS's newer record, and stays while it has not", async () => {
    const created = await app.request("/api/v1/brands", authed({ code: "NEWER", name: "Newer", shortNames: ["NEWER"], numbers: [] }));
    expect(created.status, await created.clone().text()).toBe(201);
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'NEWER'").get() as { id: number }).id;
    clock.set(new Date("2026-11-30T08:00:00Z")); // Monday
    const refusals = [0, 1].map((n) => {
      const r = statementToAction({ brandId, recipient: `+90538${String(n).padStart(7, "0")}`, recipientType: "BIREYSEL", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - 60_000)), origin: "api" });
      if (!r.ok) throw new Error(r.code);
      return r.action;
    });
    const [taken, waiting] = runtime.deps.ledger.apply(refusals).outcomes.map((o) => (o.kind === "recorded" ? o.event.id : 0));
    const row = db().prepare("INSERT INTO outbox (kind, event_id, target, status, last_error, attempts, created_at, updated_at) VALUES (?, ?, NULL, ?, ?, 1, 0, 0)");
    db().transaction(() => {
      for (const id of [taken!, waiting!]) row.run("iys_report", id, "failed", "İYS refused the movement: H178: Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz.; İYS's record is taken by an iys_follow row");
      row.run("iys_follow", taken, "done", null);
      row.run("iys_follow", waiting, "pending", null);
    })();
    clock.set(new Date("2026-12-09T07:00:00Z")); // the next Wednesday: past the deadline
    const section = /<section id="deadlines"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0];
    const listed = (id: number) => new RegExp(`<tr><td><span class="badge \\w+">\\w+</span></td><td class="num">${id}</td>`).test(section);
    expect(taken).toBeGreaterThan(0);
    expect(listed(taken!)).toBe(false);
    expect(listed(waiting!)).toBe(true);
  });
});

describe("overdue refusals behind many newer ones", () => {
  it("thousands of refusals not yet near their deadline never hide an overdue one", async () => {
    const created = await app.request("/api/v1/brands", authed({ code: "CROWD", name: "Crowd", shortNames: ["CROWD"], numbers: [] }));
    expect(created.status, await created.clone().text()).toBe(201);
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'CROWD'").get() as { id: number }).id;
    const refuse = (n: number, at: string) => {
      clock.set(new Date(at));
      const r = statementToAction({ brandId, recipient: `+90537${String(n).padStart(7, "0")}`, recipientType: "BIREYSEL", type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - 60_000)), origin: "api" });
      if (!r.ok) throw new Error(r.code);
      return r.action;
    };
    // Monday 2026-11-30 11:00 Istanbul: due by the end of Thursday, past by Wednesday of the next week.
    const [overdue] = runtime.deps.ledger.apply([refuse(0, "2026-11-30T08:00:00Z")]).outcomes.map((o) => (o.kind === "recorded" ? o.event.id : 0));
    // 2100 refusals of the next Monday evening: on Wednesday morning not near their deadline yet.
    const crowd = runtime.deps.ledger.apply(Array.from({ length: 2100 }, (_, i) => refuse(i + 1, "2026-12-07T17:00:00Z"))).outcomes.map((o) => (o.kind === "recorded" ? o.event.id : 0));
    const row = db().prepare("INSERT INTO outbox (kind, event_id, target, status, last_error, attempts, created_at, updated_at) VALUES ('iys_follow', ?, NULL, 'failed', 'test', 0, 0, 0)");
    db().transaction(() => {
      for (const id of [overdue!, ...crowd]) row.run(id);
    })();
    clock.set(new Date("2026-12-09T07:00:00Z")); // Wednesday 10:00 Istanbul
    const section = /<section id="deadlines"[^]*?<\/section>/.exec(await (await app.request("/admin", asAdmin)).text())![0];
    expect(section).toMatch(new RegExp(`<span class="badge past">\\w+</span></td><td class="num">${overdue}</td>`));
    expect(section).not.toMatch(new RegExp(`<td class="num">${crowd[0]}</td>`));
  });
});

describe("movements the hub does not report to İYS", () => {
  it("a brand without İYS codes is listed with its movements due by other means, the earliest deadline, and refusals past it; İYS's own records are not counted", async () => {
    const created = await app.request("/api/v1/brands", authed({ code: "UNREP", name: "Unreported", shortNames: ["UNREP"], numbers: [] }));
    expect(created.status, await created.clone().text()).toBe(201);
    clock.set(new Date("2026-11-23T07:00:00Z")); // Monday 10:00 in Istanbul
    const write = async (recipient: string, status: "ONAY" | "RET") => {
      const res = await app.request("/api/v1/consents", authed({ brand: "UNREP", recipient, type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(clock.now()) }));
      expect(res.status, await res.clone().text()).toBe(201);
      clock.advance(1000);
    };
    await write("+905301110001", "ONAY");
    await write("+905301110001", "RET");
    await write("+905301110002", "ONAY");
    // A refusal with no consent before is a local suppression (nothing to report): not counted.
    await write("+905301110003", "RET");
    // İYS's own record (what a pull takes): İYS has it already.
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'UNREP'").get() as { id: number }).id;
    const fromIys = statementToAction({ brandId, recipient: "+905301110004", recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(clock.now()), origin: "iys" });
    if (!fromIys.ok) throw new Error(fromIys.code);
    expect(runtime.deps.ledger.apply([{ ...fromIys.action, writer: "iys" }]).outcomes[0]!.kind).toBe("recorded");

    const row = async () => {
      const html = await (await app.request("/admin", asAdmin)).text();
      const section = /<section id="unreported"[^]*?<\/section>/.exec(html)?.[0] ?? "";
      const tr = new RegExp('<tr data-brand="UNREP">(.*?)</tr>').exec(section)?.[1];
      return { section, cells: tr ? [...tr.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1]) : null };
    };
    const monday = await row();
    // MIGROS has its İYS codes and İYS is configured: its movements go to İYS and it is not listed.
    expect(monday.section).not.toContain('data-brand="MIGROS"');
    expect(monday.cells).toEqual(["UNREP", "brand has no iysCode/brandCode", "1", "2", "2026-11-26 23:59:59", "0"]);
    clock.set(new Date("2026-11-27T07:00:00Z")); // Friday: Thursday's deadline has passed
    expect((await row()).cells).toEqual(["UNREP", "brand has no iysCode/brandCode", "0", "0", "—", "1"]);
    clock.set(new Date("2026-12-10T07:00:00Z")); // past the 14 days counted
    expect((await row()).cells).toEqual(["UNREP", "brand has no iysCode/brandCode", "0", "0", "—", "0"]);
  });

  it("past the events a page view reads, the oldest due are the ones counted: the earliest deadline stays right and the counts say ≥", async () => {
    const created = await app.request("/api/v1/brands", authed({ code: "CAPPED", name: "Capped", shortNames: ["CAPPED"], numbers: [] }));
    expect(created.status, await created.clone().text()).toBe(201);
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'CAPPED'").get() as { id: number }).id;
    const apply = (recipient: string, status: "ONAY" | "RET") => {
      const r = statementToAction({ brandId, recipient, recipientType: "BIREYSEL", type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(clock.now()), origin: "api" });
      if (!r.ok) throw new Error(r.code);
      expect(runtime.deps.ledger.apply([r.action]).outcomes[0]!.kind).toBe("recorded");
    };
    clock.set(new Date("2027-02-24T07:00:00Z")); // Wednesday: due by the end of Monday 1 March
    apply("+905302220001", "ONAY");
    clock.advance(1000);
    apply("+905302220001", "RET");
    clock.set(new Date("2027-03-01T07:00:00Z")); // Monday: 6 consents this morning
    for (let i = 2; i < 8; i++) apply(`+90530222000${i}`, "ONAY");
    const d = { db: runtime.deps.db, calendar: runtime.deps.calendar, now: clock.now().getTime() + 60_000, iysConfigured: true };
    const all = unreportedMovements(d).find((r) => r.brand === "CAPPED");
    expect(all).toMatchObject({ refusalsDue: 1, consentsDue: 7, nextDeadline: new Date("2027-03-01T20:59:59.999Z").getTime(), capped: false });
    const capped = unreportedMovements(d, 4).find((r) => r.brand === "CAPPED");
    expect(capped).toMatchObject({ refusalsDue: 1, consentsDue: 3, nextDeadline: new Date("2027-03-01T20:59:59.999Z").getTime(), capped: true, dueCapped: true });
    // Later, all of them past their deadline: only the scan of past refusals is cut short.
    expect(unreportedMovements({ ...d, now: new Date("2027-03-06T09:00:00Z").getTime() }, 4).find((r) => r.brand === "CAPPED")).toMatchObject({ consentsDue: 0, capped: true, dueCapped: false });
    // Exactly as many events as are read: nothing left out.
    expect(unreportedMovements(d, 8).find((r) => r.brand === "CAPPED")).toMatchObject({ consentsDue: 7, capped: false, dueCapped: false });
    // Past the end of the holiday table (no 2027 here) the deadlines are unknown: every movement of
    // the last 14 days is counted as due, none dropped.
    const shortTable = new BusinessCalendar({ fixed: [], years: { "2026": { ramazanArife: "2026-03-19", ramazan: ["2026-03-20"], kurbanArife: "2026-05-26", kurban: ["2026-05-27"] } } } as never);
    expect(unreportedMovements({ ...d, calendar: shortTable }).find((r) => r.brand === "CAPPED")).toMatchObject({ refusalsDue: 1, consentsDue: 7, nextDeadline: null });
  });

  it("without the İYS API every brand is listed, naming IYS_API_BASE_URL; with its codes and the API, none", async () => {
    const d = { db: runtime.deps.db, calendar: runtime.deps.calendar, now: new Date("2026-11-23T12:00:00Z").getTime() };
    const off = unreportedMovements({ ...d, iysConfigured: false });
    expect(off.find((r) => r.brand === "MIGROS")?.reason).toBe("İYS API not configured (IYS_API_BASE_URL)");
    expect(off.find((r) => r.brand === "UNREP")).toMatchObject({ reason: "İYS API not configured (IYS_API_BASE_URL)", refusalsDue: 1, consentsDue: 2 });
    const on = unreportedMovements({ ...d, iysConfigured: true });
    expect(on.map((r) => r.brand)).not.toContain("MIGROS");
    expect(on.map((r) => r.brand)).toContain("UNREP");
  });
});

describe("whether the hub reports to İYS, as the dashboard tells it", () => {
  it("the workers' latest finished report says so; before any, this process's own IYS_API_BASE_URL", () => {
    const dir = tempDir();
    const db = openDatabase(join(dir.dir, "reports.db"));
    try {
      runMigrations(db);
      const at = Date.parse("2026-11-25T09:00:00Z");
      const brandId = createBrand(db, { code: "WEB", name: "Web", iysCode: "1", brandCode: "2", shortNames: ["WEB"], numbers: [] }, at).id;
      const ledger = new Ledger(db, { clock: new TestClock(at), calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
      const consent = (recipient: string) => {
        const r = statementToAction({ brandId, recipient, recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(at - 60_000)), origin: "api" });
        if (!r.ok) throw new Error(r.code);
        return ledger.apply([r.action]).outbox[0]!.id;
      };
      const first = consent("+905303330001");
      // Only a pending report: nothing learnt yet.
      expect([reportsToIysNow(db, true), reportsToIysNow(db, false)]).toEqual([true, false]);
      // The workers have no İYS API, whatever the web process has.
      finishOutbox(db, first, "skipped", at, IYS_SKIP_NOTES.unconfigured);
      expect(reportsToIysNow(db, true)).toBe(false);
      // A brand without codes says nothing against the API; a report done says the workers have it.
      const second = consent("+905303330002");
      finishOutbox(db, second, "done", at);
      expect(reportsToIysNow(db, false)).toBe(true);
      finishOutbox(db, consent("+905303330003"), "skipped", at, IYS_SKIP_NOTES.noCodes);
      expect(reportsToIysNow(db, false)).toBe(true);
    } finally {
      db.$client.close();
      dir.cleanup();
    }
  });
});

describe("/metrics", () => {
  it("requires METRICS_TOKEN or the admin key", async () => {
    expect((await app.request("/metrics")).status).toBe(401);
    expect((await app.request("/metrics", { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    expect((await app.request("/metrics", asAdmin)).status).toBe(200);
    expect((await app.request("/metrics", { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
  });

  it("counts receipts, ledger events, finished outbox rows, job and request durations by route pattern, and queue depths", async () => {
    const before = await scrape();
    const get = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
    expect((await twilioSms("+905321112244", "RET MIGROS", `SM${"2".padStart(32, "0")}`)).status).toBe(200);
    expect((await twilioSms("+905321112255", "ONAY MIGROS", `SM${"3".padStart(32, "0")}`)).status).toBe(200);
    await waitFor(() => (db().prepare("SELECT count(*) AS n FROM outbox o JOIN receipts r ON r.id = o.receipt_id WHERE r.from_address IN ('+905321112244', '+905321112255') AND o.status = 'done'").get() as { n: number }).n === 2);
    await app.request("/r/this-is-a-link-token-that-must-not-be-a-label");
    const after = await scrape();

    const delta = (k: string) => get(after, k) - get(before, k);
    expect(delta('receipts_total{channel="sms",status="applied"}')).toBe(2);
    expect(delta('events_total{effect="suppression",origin="sms",status="RET"}')).toBe(1);
    expect(delta('events_total{effect="movement",origin="sms",status="ONAY"}')).toBe(1);
    expect(delta('confirmations_total{kind="confirmation",status="done"}')).toBe(2);
    expect(delta('outbox_finished_total{kind="confirmation",status="done"}')).toBe(2);
    // Matches the database exactly; confirmations_total counts confirmations only.
    const iysFailed = (db().prepare("SELECT count(*) AS n FROM outbox WHERE kind = 'iys_report' AND status = 'failed'").get() as { n: number }).n;
    expect(get(after, 'outbox_finished_total{kind="iys_report",status="failed"}')).toBe(iysFailed);
    const finished = (db().prepare("SELECT count(*) AS n FROM outbox WHERE status <> 'pending'").get() as { n: number }).n;
    expect([...after].filter(([k]) => k.startsWith("outbox_finished_total{")).reduce((s, [, v]) => s + v, 0)).toBe(finished);
    expect([...after.keys()].filter((k) => k.startsWith("confirmations_total{") && !/kind="(email_)?confirmation"/.test(k))).toEqual([]);
    const events = (db().prepare("SELECT count(*) AS n FROM consent_events").get() as { n: number }).n;
    expect([...after].filter(([k]) => k.startsWith("events_total{")).reduce((s, [, v]) => s + v, 0)).toBe(events);

    expect(get(after, 'job_duration_seconds_count{job="consent.apply",outcome="ok",queue="consent"}')).toBeGreaterThanOrEqual(2);
    expect(get(after, 'job_duration_seconds_count{job="iys.report",outcome="ok",queue="iys-reports"}')).toBeGreaterThanOrEqual(1);
    expect(delta('http_request_duration_seconds_count{method="POST",route="/sms/twilio",status="200"}')).toBe(2);
    const labels = [...after.keys()].join("\n");
    expect(labels).toContain('route="/r/:token"');
    expect(labels).not.toContain("this-is-a-link-token");
    expect(labels).not.toMatch(/\+90532/);
    for (const q of ["consent", "confirmations", "callbacks", "iys-reports"]) {
      for (const s of ["waiting", "active", "delayed", "failed"]) expect(after.has(`queue_jobs{queue="${q}",state="${s}"}`), `${q} ${s}`).toBe(true);
    }
  });
});

describe("/admin/queues", () => {
  it("serves the bull-board page, its assets and its API for every queue, behind the admin login", async () => {
    expect((await app.request("/admin/queues")).status).toBe(401);
    expect((await app.request("/admin/queues/api/queues")).status).toBe(401);
    const token = sessionFrom(await login(ADMIN_KEY));
    const page = await app.request("/admin/queues", withCookie(token));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    const slash = await app.request("/admin/queues/", withCookie(token));
    expect([slash.status, slash.headers.get("location")]).toEqual([301, "/admin/queues"]);
    const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)![1]!;
    const asset = await app.request(`/admin/queues/${script}`, withCookie(token));
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/javascript/);
    const api = await app.request("/admin/queues/api/queues", withCookie(token));
    expect(api.status).toBe(200);
    const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
    expect(names).toEqual(["callbacks", "confirmations", "consent", "iys-reports"]);
    // Adding a job or editing one's data is refused: jobs are the hub's own (idempotent ids, no personal data).
    const consent = runtime.producer.queues.consent;
    const before = await consent.getJobCounts();
    const add = await app.request("/admin/queues/api/queues/consent/add", {
      method: "POST",
      headers: { ...withCookie(token).headers, "content-type": "application/json", origin: "https://hub.example.com" },
      body: JSON.stringify({ name: "apply", data: { recipient: "+905321234567" } }),
    });
    expect(add.status).toBe(403);
    expect((await add.json()).error).toMatch(/turned off/);
    expect(await consent.getJobCounts()).toEqual(before);
    // bull-board 9 edits a job's data with PATCH.
    const edit = await app.request("/admin/queues/api/queues/consent/1/update-data", {
      method: "PATCH",
      headers: { ...withCookie(token).headers, "content-type": "application/json", origin: "https://hub.example.com" },
      body: JSON.stringify({ data: {} }),
    });
    expect(edit.status).toBe(403);
    // Nor may a queue be paused, emptied or slowed, or a job held back: refusals would wait unseen.
    const post = (path: string, method = "PUT", body: unknown = {}) =>
      app.request(`/admin/queues/api/queues/${path}`, {
        method,
        headers: { ...withCookie(token).headers, "content-type": "application/json", origin: "https://hub.example.com" },
        body: JSON.stringify(body),
      });
    for (const [path, method] of [["pause", "PUT"], ["consent/pause", "PUT"], ["consent/empty", "PUT"], ["consent/obliterate", "PUT"], ["consent/concurrency", "PUT"], ["consent/rate-limit", "PUT"], ["consent/1/delay", "PUT"], ["consent/1/priority", "PUT"], ["consent/clean/delayed", "PUT"], ["consent/clean/wait", "PUT"], ["consent/clean/prioritized", "PUT"]] as const) {
      const res = await post(path, method, { concurrency: 1, max: 1, duration: 60_000, delay: 60_000 });
      expect(res.status, path).toBe(403);
      expect((await res.json()).error, path).toMatch(/turned off/);
    }
    expect(await consent.isPaused()).toBe(false);
    expect(await consent.getJobCounts()).toEqual(before);
    // Resuming stays allowed (a queue paused by other means), as do cleaning finished jobs and reading the rate limit.
    expect((await post("consent/resume")).status).toBe(200);
    expect((await post("consent/clean/completed")).status).toBe(200);
    expect((await app.request("/admin/queues/api/queues/consent/rate-limit", withCookie(token))).status).toBe(200);
  });

  it("answers 503 naming the missing assets when the bull-board UI is not installed, without failing the app", async () => {
    const board = createQueueBoard(Object.values(runtime.producer.queues), "/admin/queues", silentLog, null);
    const res = await board.request("/");
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("@bull-board/ui");
  });
});
