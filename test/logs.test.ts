import { Writable } from "node:stream";
import twilio from "twilio";
import { redactPath } from "../src/metrics/route";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../src/app";
import { createLogger } from "../src/log";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

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
});

describe("redactPath", () => {
  it("hides numbers however they are written, e-mails and long tokens, and keeps plain words", () => {
    expect(redactPath("/consents/0532-123-45-67")).toBe("/consents/:redacted");
    expect(redactPath("/consents/0532 123 45 67")).toBe("/consents/:redacted");
    expect(redactPath("/consents/+905321234567")).toBe("/consents/:redacted");
    expect(redactPath("/x/a@b.com")).toBe("/x/:redacted");
    expect(redactPath("/api/v1/brands/MIGROS")).toBe("/api/v1/brands/MIGROS");
  });
});

