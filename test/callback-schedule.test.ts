import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallbackDelivery, releaseWaitingRows } from "../jobs/deliver-callback.handler";
import { createApp, type App } from "../src/app";
import { callbackSecretsKey } from "../src/callbacks/crypto";
import { createWebhookClient } from "../src/callbacks/http";
import { formatIysDate, systemClock } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { WebhookReceiver } from "./fakes/webhook-receiver";
import { authed, deletePrefix, silentLog, tempDir, testConfig } from "./helpers";

// The runtime's workers are not started: the test drives one delivery by hand, with a Redis that fails.
const tmp = tempDir();
const receiver = new WebhookReceiver();
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  await receiver.start();
  runtime = await createRuntime(testConfig(tmp.dir, { CALLBACK_ALLOW_PRIVATE: "true" }));
  app = createApp(runtime.deps);
  expect((await app.request("/api/v1/brands", authed({ code: "MIGROS", name: "Migros", shortNames: ["MIGROS"] }))).status).toBe(201);
});

afterAll(async () => {
  await runtime.close();
  await receiver.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

/** A delivery driven by hand on the runtime's database, with this schedule (and a 2 s timeout); nothing scheduled unless asked. */
function handDelivery(schedule: number[], over: Partial<ConstructorParameters<typeof CallbackDelivery>[0]> = {}): CallbackDelivery {
  return new CallbackDelivery({
    db: runtime.deps.db,
    clock: systemClock,
    log: silentLog,
    client: createWebhookClient({ timeoutMs: 2000, allowPrivate: true }),
    secretsKey: callbackSecretsKey(runtime.deps.config, runtime.deps.secrets),
    schedule,
    timeoutMs: 2000,
    disableAfterMs: 1e12,
    scheduleAttempt: async () => {},
    enqueueOutbox: async () => {},
    ...over,
  });
}

describe("a callback retry that cannot be scheduled", () => {
  it("is no failed attempt of its own: each refused POST counts once, the schedule is walked whole, and the sweeper's due time stands", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/down`, brands: ["MIGROS"] }))).json()) as { id: string };
    receiver.down.add("/down");
    const consent = { brand: "MIGROS", recipient: "+905331234567", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000)) };
    expect((await app.request("/api/v1/consents", authed(consent))).status).toBe(201);
    const db = runtime.deps.db;
    const { id } = db.$client.prepare("SELECT id FROM outbox WHERE kind = 'callback' AND target = ?").get(sub.id) as { id: number };
    const schedule = [0, 5_000, 300_000, 1_800_000];
    const delivery = handDelivery(schedule, { scheduleAttempt: () => Promise.reject(new Error("Connection is closed.")) });
    for (let k = 1; k <= 2; k++) {
      db.$client.prepare("UPDATE outbox SET next_attempt_at = NULL WHERE id = ?").run(id); // due now
      const before = Date.now();
      expect(await delivery.deliver(id)).toBe("to retry");
      const row = db.$client.prepare("SELECT status, attempts, last_error AS lastError, next_attempt_at AS nextAttemptAt FROM outbox WHERE id = ?").get(id) as {
        status: string; attempts: number; lastError: string; nextAttemptAt: number;
      };
      expect(row).toMatchObject({ status: "pending", attempts: k, lastError: expect.stringMatching(/503/) });
      expect(row.nextAttemptAt).toBeGreaterThanOrEqual(before + schedule[k]!);
      expect(receiver.at("/down")).toHaveLength(k);
    }
    expect(db.$client.prepare("SELECT attempt FROM deliveries WHERE outbox_id = ? ORDER BY attempt").pluck().all(id)).toEqual([1, 2]);
  });
});

describe("an endpoint's rows while it fails, driven by hand", () => {
  const schedule = [0, 60_000, 3_600_000, 86_400_000];
  const enqueued: { ids: number[]; tag?: string; bulk?: boolean }[] = [];
  const delivery = () =>
    handDelivery(schedule, { enqueueOutbox: async (rows, opts) => void enqueued.push({ ids: rows.map((r) => r.id), tag: opts?.tag, bulk: opts?.bulk }) });
  let seq = 0;
  async function rowFor(subId: string, recipient: string): Promise<number> {
    const consent = { brand: "MIGROS", recipient, type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 60_000 + ++seq)) };
    expect((await app.request("/api/v1/consents", authed(consent))).status).toBe(201);
    return (runtime.deps.db.$client.prepare("SELECT max(id) FROM outbox WHERE kind = 'callback' AND target = ?").pluck().get(subId) as number);
  }
  const row = (id: number) =>
    runtime.deps.db.$client.prepare("SELECT status, attempts, next_attempt_at AS nextAttemptAt FROM outbox WHERE id = ?").get(id) as { status: string; attempts: number; nextAttemptAt: number | null };

  it("a change the receiver refuses keeps its retry schedule when others get through (it is not pulled forward to use up its attempts)", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/picky`, brands: ["MIGROS"] }))).json()) as { id: string };
    receiver.answerWith.set("/picky", (body) => (JSON.parse(body).data.recipient === "+905330000001" ? 400 : undefined));
    const d = delivery();
    const refused = await rowFor(sub.id, "+905330000001");
    expect(await d.run([refused])).toBe("to retry: 1");
    for (let k = 2; k <= 4; k++) expect(await d.run([await rowFor(sub.id, `+90533000000${k}`)])).toBe("delivered: 1");
    expect(row(refused).attempts).toBe(1);
    expect(row(refused).nextAttemptAt).toBeGreaterThan(Date.now() + 50_000);
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("a new row of an endpoint that failed waits without an attempt; the first success sends it, under a new job id", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/flaky`, brands: ["MIGROS"] }))).json()) as { id: string };
    receiver.down.add("/flaky");
    const d = delivery();
    const first = await rowFor(sub.id, "+905330000011");
    expect(await d.run([first])).toBe("to retry: 1");
    const waiting = await rowFor(sub.id, "+905330000012");
    expect(await d.run([waiting])).toBe("waiting for a failing endpoint: 1");
    expect(row(waiting)).toMatchObject({ status: "pending", attempts: 0 });
    expect(row(waiting).nextAttemptAt).toBeGreaterThan(Date.now() + 30_000);
    expect(receiver.at("/flaky")).toHaveLength(1);
    // Up again: the failed row, due now, gets through; the one that waited is sent, as a job of its own.
    receiver.down.delete("/flaky");
    runtime.deps.db.$client.prepare("UPDATE outbox SET next_attempt_at = NULL WHERE id = ?").run(first);
    enqueued.length = 0;
    expect(await d.run([first])).toBe("delivered: 1");
    expect(row(waiting).nextAttemptAt).toBeLessThanOrEqual(Date.now());
    expect(enqueued).toEqual([{ ids: [waiting], tag: expect.stringMatching(/^released-\d+$/), bulk: true }]);
    expect(await d.run([waiting])).toBe("delivered: 1");
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("a process with no memory of the endpoint's failures (a restarted worker) probes it with one row; the rest of its first wave waits for that attempt", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/hanging`, brands: ["MIGROS"] }))).json()) as { id: string };
    receiver.slowMs.set("/hanging", 30_000); // past the 2 s timeout: a dealer that never answers
    expect(await delivery().run([await rowFor(sub.id, "+905330000031")])).toBe("to retry: 1");
    const wave: number[] = [];
    for (let k = 2; k <= 6; k++) wave.push(await rowFor(sub.id, `+90533000003${k}`));
    const restarted = delivery();
    // One job a row, all at once, as BullMQ's concurrency runs them.
    const outcomes = await Promise.all(wave.map((id) => restarted.run([id])));
    expect(outcomes.sort()).toEqual(["to retry: 1", ...Array(4).fill("waiting for a failing endpoint: 1")]);
    expect(receiver.at("/hanging")).toHaveLength(2);
    for (const id of wave) expect(row(id).nextAttemptAt).toBeGreaterThan(Date.now());
    receiver.slowMs.delete("/hanging");
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("a long outage's backlog is released in chunks, each enqueued before the next is moved (one UPDATE of it all held the event loop)", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/backlog`, brands: ["MIGROS"] }))).json()) as { id: string };
    const c = runtime.deps.db.$client;
    const now = Date.now();
    const insert = c.prepare(
      `INSERT INTO outbox (kind, target, status, attempts, created_at, updated_at, next_attempt_at) VALUES ('callback', ?, 'pending', ?, ?, ?, ?) RETURNING id`,
    ).pluck();
    // 4500 rows that waited, among rows of another endpoint and one in its retry schedule (kept).
    const waited = c.transaction(() =>
      Array.from({ length: 4500 }, (_, i) => {
        if (i % 3 === 0) insert.get("another-endpoint", 0, now, now, now + 3_600_000);
        return insert.get(sub.id, 0, now, now, now + 3_600_000) as number;
      }),
    )();
    const retrying = insert.get(sub.id, 2, now, now, now + 3_600_000) as number;
    const chunks: number[][] = [];
    const released = await releaseWaitingRows(
      { db: runtime.deps.db, log: silentLog, enqueueOutbox: async (rows) => void chunks.push(rows.map((r) => r.id)) },
      sub.id,
      now,
    );
    expect(released).toBe(4500);
    expect(chunks.map((ids) => ids.length)).toEqual([2000, 2000, 500]);
    expect(chunks.flat().sort((a, b) => a - b)).toEqual(waited);
    expect(c.prepare(`SELECT count(*) FROM outbox WHERE target = ? AND next_attempt_at = ?`).pluck().get(sub.id, now)).toBe(4500);
    expect(row(retrying).nextAttemptAt).toBe(now + 3_600_000);
    c.prepare(`UPDATE outbox SET status = 'skipped' WHERE target IN (?, 'another-endpoint') AND kind = 'callback' AND status = 'pending'`).run(sub.id);
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("once the endpoint answers again, a change held behind an earlier one's retry (after the endpoint's failures) goes with it now, not on that retry's schedule", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/held`, brands: ["MIGROS"] }))).json()) as { id: string };
    receiver.down.add("/held");
    const recipient = "+905330000021";
    const onay = await rowFor(sub.id, recipient);
    expect(await delivery().run([onay])).toBe("to retry: 1");
    const ret = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 1000)) }),
    );
    expect(ret.status).toBe(201);
    const retRow = runtime.deps.db.$client.prepare("SELECT max(id) FROM outbox WHERE kind = 'callback' AND target = ?").pluck().get(sub.id) as number;
    receiver.down.delete("/held");
    // Another process (no memory of the failures) gets another change through: the endpoint is up.
    const other = delivery();
    expect(await other.run([await rowFor(sub.id, "+905330000022")])).toBe("delivered: 1");
    expect(await other.run([retRow])).toBe("waiting for an earlier change: 1");
    expect(row(onay).nextAttemptAt).toBeLessThanOrEqual(Date.now());
    expect(row(retRow).nextAttemptAt).toBeLessThan(Date.now() + 5000);
    expect(await other.run([onay])).toBe("delivered: 1");
    runtime.deps.db.$client.prepare("UPDATE outbox SET next_attempt_at = NULL WHERE id = ?").run(retRow);
    expect(await other.run([retRow])).toBe("delivered: 1");
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("an earlier change whose last attempt failed before sending is not pulled forward by the newer one behind it (it used up its schedule in seconds)", async () => {
    const sub = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/presend`, brands: ["MIGROS"] }))).json()) as { id: string };
    const recipient = "+905330000041";
    const onay = await rowFor(sub.id, recipient);
    // Its first attempt threw before the POST (as a secret that no longer decrypts does): counted, no delivery row.
    const d = delivery();
    const failing = handDelivery(schedule, { secretsKey: Buffer.alloc(32, 7) });
    expect(await failing.deliver(onay)).toBe("to retry");
    expect(row(onay).attempts).toBe(1);
    const retryAt = row(onay).nextAttemptAt!;
    expect(retryAt).toBeGreaterThan(Date.now() + 50_000);
    const ret = await app.request(
      "/api/v1/consents",
      authed({ brand: "MIGROS", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(Date.now() - 1000)) }),
    );
    expect(ret.status).toBe(201);
    const retRow = runtime.deps.db.$client.prepare("SELECT max(id) FROM outbox WHERE kind = 'callback' AND target = ?").pluck().get(sub.id) as number;
    for (let k = 0; k < 3; k++) {
      runtime.deps.db.$client.prepare("UPDATE outbox SET next_attempt_at = NULL WHERE id = ?").run(retRow);
      expect(await d.run([retRow])).toBe("waiting for an earlier change: 1");
    }
    expect(row(onay)).toMatchObject({ attempts: 1, nextAttemptAt: retryAt });
    expect(receiver.at("/presend")).toHaveLength(0);
    await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "DELETE"));
  });

  it("a PATCH that sends the same URL again keeps the endpoint's failing streak; a new URL ends it", async () => {
    const created = (await (await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}/same`, brands: ["MIGROS"] }))).json()) as { id: string };
    runtime.deps.db.$client.prepare("UPDATE endpoints SET failing_since = 1 WHERE id = ?").run(created.id);
    const since = () => runtime.deps.db.$client.prepare("SELECT failing_since FROM endpoints WHERE id = ?").pluck().get(created.id);
    expect((await app.request(`/api/v1/subscriptions/${created.id}`, authed({ url: `${receiver.base}/same`, description: "again" }, "PATCH"))).status).toBe(200);
    expect(since()).toBe(1);
    expect((await app.request(`/api/v1/subscriptions/${created.id}`, authed({ url: `${receiver.base}/other` }, "PATCH"))).status).toBe(200);
    expect(since()).toBeNull();
    await app.request(`/api/v1/subscriptions/${created.id}`, authed(undefined, "DELETE"));
  });
});
