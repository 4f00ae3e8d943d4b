import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatIysDate } from "../src/domain/time";
import { verifyReceived, WebhookReceiver } from "./fakes/webhook-receiver";
import { HubProcess, testPort } from "./hub-process";
import { ADMIN_KEY, deletePrefix, REDIS_URL, tempDir, uniquePrefix, waitFor } from "./helpers";

const tmp = tempDir();
const prefix = uniquePrefix();
const receiver = new WebhookReceiver();
const port = testPort();
const hubs: HubProcess[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  await receiver.start();
  env = {
    DATABASE_PATH: join(tmp.dir, "hub.db"),
    LEDGER_KEY_PATH: join(tmp.dir, "key.json"),
    HUB_SECRET_PATH: join(tmp.dir, "hub-secret"),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    HUB_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: "warn",
    SWEEPER_GRACE_SECONDS: "1",
    SWEEPER_INTERVAL_SECONDS: "1",
    CALLBACK_ALLOW_PRIVATE: "true",
    CALLBACK_TIMEOUT_MS: "3000",
    HUB_CRASH_POINTS: "",
  };
});

afterAll(async () => {
  for (const h of hubs) await h.stop();
  await receiver.stop();
  await deletePrefix(prefix);
  tmp.cleanup();
});

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") for (const h of hubs) console.error(`--- hub output ---\n${h.output}`);
});

const rows = (sql: string) => {
  const db = new Database(env.DATABASE_PATH, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
};

describe("a worker killed in the middle of a delivery", () => {
  it("the delivery is retried after the restart and the receiver sees the same webhook-id, validly signed", async () => {
    const crashing = new HubProcess(port, env);
    hubs.push(crashing);
    await crashing.start({ HUB_CRASH_POINTS: "callback-after-response" });
    expect((await crashing.post("/api/v1/brands", { code: "MIGROS", name: "Migros", shortNames: ["MIGROS"] })).status).toBe(201);
    const sub = (await (await crashing.post("/api/v1/subscriptions", { url: `${receiver.base}/crm`, brands: ["MIGROS"] })).json()) as { id: string; secret: string };
    const res = await crashing.post("/api/v1/consents", {
      brand: "MIGROS",
      recipient: "+905320000099",
      type: "MESAJ",
      status: "ONAY",
      source: "HS_WEB",
      consentDate: formatIysDate(new Date(Date.now() - 60_000)),
    });
    expect(res.status).toBe(201);
    // The receiver answered 2xx, then the process died before recording it.
    expect(await crashing.exited()).toMatchObject({ signal: "SIGKILL" });
    expect(receiver.at("/crm")).toHaveLength(1);
    expect(rows("SELECT status FROM outbox WHERE kind = 'callback'")).toEqual([{ status: "pending" }]);
    expect(rows("SELECT * FROM deliveries")).toEqual([]);

    const healthy = new HubProcess(port, env);
    hubs.push(healthy);
    await healthy.start();
    await waitFor(() => (rows("SELECT status FROM outbox WHERE kind = 'callback'")[0] as { status: string }).status === "done", { timeoutMs: 60_000 });
    const seen = receiver.at("/crm");
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers["webhook-id"]).toBe(seen[0]!.headers["webhook-id"]);
    expect(seen.every((r) => verifyReceived(sub.secret, r))).toBe(true);
    expect(rows("SELECT attempt, ok FROM deliveries")).toEqual([{ attempt: 1, ok: 1 }]);
    await healthy.stop();
  }, 120_000);
});
