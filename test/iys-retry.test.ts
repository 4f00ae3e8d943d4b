import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LedgerEvent } from "../db/ledger";
import { createApp, type App } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { HttpIysReporter } from "../src/services/iys";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeIys } from "./fakes/iys";
import { authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

/**
 * An İYS outage longer than a job's quick retries does not end a report, a consent's movements
 * reach İYS in ledger order, and one token request serves every report waiting on it: real Redis,
 * SQLite, workers and a fake İYS over HTTP.
 */
const tmp = tempDir();
const iys = new FakeIys();
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  const url = await iys.start();
  runtime = await createRuntime(
    // Retries 20 ms apart, doubled each time: nine failures in a row take ~10 s instead of ~1.5 h.
    testConfig(tmp.dir, { IYS_API_BASE_URL: url, IYS_USERNAME: "api@hs.example", IYS_PASSWORD: "secret", IYS_RETRY_BASE_SECONDS: "0.02" }),
  );
  runtime.startBackground();
  app = createApp(runtime.deps);
  const res = await app.request("/api/v1/brands", authed({ code: "RETRY", name: "Retry", iysCode: "710001", brandCode: "710002", shortNames: ["RETRY"], numbers: [] }));
  expect(res.status).toBe(201);
});

afterAll(async () => {
  await runtime.close();
  await iys.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const db = () => runtime.deps.db.$client;
const consent = async (recipient: string, status: "ONAY" | "RET", secondsAgo: number) => {
  const res = await app.request(
    "/api/v1/consents",
    authed({ brand: "RETRY", recipient, type: "MESAJ", status, source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - secondsAgo * 1000)) }),
  );
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { event: { id: number } }).event.id;
};
const report = (eventId: number) =>
  db().prepare("SELECT status, attempts, last_error AS lastError FROM outbox WHERE event_id = ? AND kind = 'iys_report'").get(eventId) as {
    status: string;
    attempts: number;
    lastError: string | null;
  };

describe("İYS reports through trouble", () => {
  it("nine 503s in a row (more than a job's 8 quick attempts) delay the report, they do not end it", async () => {
    iys.failNext = 9;
    const writes = iys.writes.length;
    const id = await consent("+905321110101", "ONAY", 60);
    await waitFor(() => report(id).attempts >= 2);
    expect(report(id)).toMatchObject({ status: "pending", lastError: "İYS report failed: ERR-SYS-0002" });
    await waitFor(() => report(id).status === "done", { timeoutMs: 60_000 });
    expect(report(id)).toMatchObject({ status: "done", attempts: 10 });
    expect(iys.failNext).toBe(0);
    expect(iys.writes.length - writes).toBe(1); // the accepted write; the 503s are not counted as writes
  });

  it("a RET waits for the ONAY before it that İYS has not taken yet, so İYS gets them in order", async () => {
    const recipient = "+905321110202";
    iys.failNext = 3;
    const onay = await consent(recipient, "ONAY", 120);
    const ret = await consent(recipient, "RET", 60);
    await waitFor(() => report(onay).status === "done" && report(ret).status === "done", { timeoutMs: 60_000 });
    const order = iys.writes.filter((w) => w.body.recipient === recipient).map((w) => w.body.status);
    expect(order).toEqual(["ONAY", "RET"]);
  });

  it("reports waiting on a token share one token request", async () => {
    const reporter = new HttpIysReporter({ baseUrl: runtime.deps.config.IYS_API_BASE_URL!, username: "api@hs.example", password: "secret" });
    const before = iys.tokenRequests;
    const event = (i: number): LedgerEvent => ({
      id: 900_000 + i,
      brandId: 1,
      recipient: `+90532220${String(i).padStart(4, "0")}`,
      recipientType: "BIREYSEL",
      type: "MESAJ",
      status: "ONAY",
      source: "HS_WEB",
      consentDate: Date.now() - 60_000,
      retailerCode: null,
      origin: "api",
      receiptId: null,
      idempotencyKey: null,
      effect: "movement",
      receivedAt: Date.now(),
      prevHash: "0".repeat(64),
      hash: "0".repeat(64),
    });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => reporter.report({ iysCode: "710001", brandCode: "710002" }, event(i))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(iys.tokenRequests - before).toBe(1);
  });
});
