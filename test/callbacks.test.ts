import { execFile } from "node:child_process";
import { promisify } from "node:util";
import twilio from "twilio";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signWebhook } from "../src/callbacks/crypto";
import { checkTarget, isPrivateAddress } from "../src/callbacks/target";
import { createApp, type App } from "../src/app";
import { formatIysDate } from "../src/domain/time";
import { createRuntime, type Runtime } from "../src/runtime";
import { FakeTwilio } from "./fakes/sms-providers";
import { verifyReceived, verifyStandardWebhook, WebhookReceiver, type ReceivedWebhook } from "./fakes/webhook-receiver";
import { ADMIN_KEY, databaseBytes, authed, deletePrefix, tempDir, testConfig, waitFor } from "./helpers";

const ACCOUNT_SID = `AC${"c3".repeat(16)}`;
const AUTH_TOKEN = "twilio-callbacks-token";

/** Real time moved by an offset, so BullMQ's real delays and the hub's clock agree, and days can pass. */
const clock = {
  offset: 0,
  now: () => new Date(Date.now() + clock.offset),
};

const tmp = tempDir();
const receiver = new WebhookReceiver();
const fakeTwilio = new FakeTwilio(ACCOUNT_SID, AUTH_TOKEN);
let runtime: Runtime;
let app: App;

beforeAll(async () => {
  await receiver.start();
  const config = testConfig(tmp.dir, {
    CALLBACK_ALLOW_PRIVATE: "true",
    CALLBACK_RETRY_SCHEDULE: "0,1,1,1",
    SWEEPER_GRACE_SECONDS: "1",
    SWEEPER_INTERVAL_SECONDS: "1",
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_BASE_URL: await fakeTwilio.start(),
  });
  runtime = await createRuntime(config, { clock });
  runtime.startBackground();
  app = createApp(runtime.deps);
  for (const brand of [
    { code: "MIGROS", name: "Migros", shortNames: ["MİGROS"], numbers: [{ number: "3434", provider: "twilio" }] },
    { code: "KOTON", name: "Koton", shortNames: ["KOTON"] },
    { code: "LCW", name: "LC Waikiki", shortNames: ["LCW"] },
  ]) {
    const res = await app.request("/api/v1/brands", authed(brand));
    expect(res.status, await res.clone().text()).toBe(201);
  }
});

afterAll(async () => {
  await runtime.close();
  await receiver.stop();
  await fakeTwilio.stop();
  await deletePrefix(runtime.deps.config.QUEUE_PREFIX);
  tmp.cleanup();
});

const created: string[] = [];
afterEach(async () => {
  // Each test's subscriptions go, so later tests' events and notices do not reach them.
  for (const id of created.splice(0)) await app.request(`/api/v1/subscriptions/${id}`, authed(undefined, "DELETE"));
});

let pathSeq = 0;
const newPath = (name: string) => `/${name}-${++pathSeq}`;
let recipientSeq = 0;
const newRecipient = () => `+90533${String(1_000_000 + ++recipientSeq).padStart(7, "0")}`;

async function subscribe(body: Record<string, unknown>): Promise<{ id: string; secret: string; path: string }> {
  const path = newPath("sub");
  const res = await app.request("/api/v1/subscriptions", authed({ url: `${receiver.base}${path}`, ...body }));
  expect(res.status, await res.clone().text()).toBe(201);
  const json = (await res.json()) as { id: string; secret: string };
  created.push(json.id);
  return { ...json, path };
}

/** A consent change through the provider API; `secondsAgo` keeps successive changes of one address in order. */
async function change(brand: string, recipient: string, status: "ONAY" | "RET", secondsAgo = 60, type = "MESAJ") {
  const res = await app.request(
    "/api/v1/consents",
    authed({ brand, recipient, type, status, source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - secondsAgo * 1000)) }),
  );
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { event: { id: number; hash: string } }).event;
}

const data = (r: ReceivedWebhook) => JSON.parse(r.body) as { type: string; timestamp: string; data: Record<string, unknown> };
const delivered = (path: string) => receiver.at(path).filter((r) => r.answered >= 200 && r.answered < 300);
const db = () => runtime.deps.db.$client;
const outboxOf = (endpointId: string) =>
  db().prepare(`SELECT id, status, attempts, last_error AS lastError FROM outbox WHERE kind = 'callback' AND target = ? ORDER BY id`).all(endpointId) as {
    id: number;
    status: string;
    attempts: number;
    lastError: string | null;
  }[];

describe("signatures", () => {
  const vector = { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: "1614265330", body: '{"test": 2432232314}' };
  const expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

  it("the test's own Standard Webhooks verifier accepts the published vector and refuses a changed body", () => {
    expect(verifyStandardWebhook(vector.secret, { ...vector, signature: expected }, vector.body)).toBe(true);
    expect(verifyStandardWebhook(vector.secret, { ...vector, signature: expected }, '{"test": 2432232315}')).toBe(false);
    expect(verifyStandardWebhook(vector.secret, { ...vector, signature: `v1,bogus ${expected}` }, vector.body)).toBe(true);
  });

  it("the hub's signer produces the published signature", () => {
    expect(signWebhook(vector.secret, vector.id, Number(vector.timestamp), vector.body)).toBe(expected);
  });
});

describe("subscriptions", () => {
  it("a subscription's whsec_ secret is shown once; the database file holds only ciphertext", async () => {
    const sub = await subscribe({ brands: ["MIGROS"], description: "CRM" });
    expect(sub.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    const got = (await (await app.request(`/api/v1/subscriptions/${sub.id}`, authed(undefined, "GET"))).json()) as Record<string, unknown>;
    expect(got).toMatchObject({ id: sub.id, brands: ["MIGROS"], events: ["consent.changed"], status: "active", description: "CRM" });
    expect(got).not.toHaveProperty("secret");
    const file = databaseBytes(runtime.deps.config.DATABASE_PATH);
    expect(file.includes(Buffer.from(sub.secret.slice(6)))).toBe(false);
    expect(file.includes(Buffer.from(sub.id))).toBe(true);
  });

  it("non-http URLs, unknown brands and unknown events are 400s naming the field", async () => {
    for (const [body, field] of [
      [{ url: "ftp://example.com/x" }, "url"],
      [{ url: "http://user:pw@example.com/x" }, "url"],
      [{ url: `${receiver.base}/x`, brands: ["NOPE"] }, "brands[0]"],
      [{ url: `${receiver.base}/x`, events: ["consent.deleted"] }, "events[0]"],
    ] as const) {
      const res = await app.request("/api/v1/subscriptions", authed(body));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { field: string } }).error.field).toBe(field);
    }
    expect((await app.request("/api/v1/subscriptions", { method: "POST", body: "{}" })).status).toBe(401);
  });

  it("private, loopback and link-local targets, and http, are refused unless allowed", async () => {
    for (const url of ["http://127.0.0.1/x", "http://10.1.2.3/", "http://169.254.169.254/latest", "http://[::1]/", "http://[fe80::1]/", "http://[::ffff:192.168.1.1]/", "http://localhost:8080/"]) {
      expect(await checkTarget(url, false), url).toMatchObject({ ok: false });
      expect(await checkTarget(url, true), url).toMatchObject({ ok: true });
    }
    expect(isPrivateAddress("8.8.8.8")).toBe(false);
    expect(isPrivateAddress("2606:4700:4700::1111")).toBe(false);
    expect(await checkTarget("https://93.184.215.14/hook", false)).toMatchObject({ ok: true });
    // Deliveries carry recipients' addresses: no clear text to a public address either.
    expect(await checkTarget("http://93.184.215.14/hook", false)).toMatchObject({ ok: false, reason: expect.stringContaining("only https") });
    expect(await checkTarget("http://93.184.215.14/hook", true)).toMatchObject({ ok: true });
  });
});

describe("delivery", () => {
  it("a change reaches the brand's subscriptions signed, with the documented body; another brand's subscription gets nothing", async () => {
    const migros = await subscribe({ brands: ["MIGROS"] });
    const all = await subscribe({ brands: "*" });
    const koton = await subscribe({ brands: ["KOTON"] });
    const recipient = newRecipient();
    const event = await change("MIGROS", recipient, "ONAY");
    await waitFor(() => delivered(migros.path).length === 1 && delivered(all.path).length === 1);
    const [r] = delivered(migros.path);
    expect(verifyReceived(migros.secret, r!)).toBe(true);
    expect(verifyReceived(all.secret, r!)).toBe(false);
    expect(r!.headers["webhook-id"]).toBe(`evt_${event.id}_${migros.id}`);
    expect(Number(r!.headers["webhook-timestamp"])).toBeGreaterThan(1_600_000_000);
    expect(data(r!)).toEqual({
      type: "consent.changed",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: {
        brand: "MIGROS",
        recipient,
        recipientType: "BIREYSEL",
        type: "MESAJ",
        status: "ONAY",
        source: "HS_WEB",
        consentDate: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
        eventId: event.id,
        ledgerHash: event.hash,
      },
    });
    expect(verifyReceived(all.secret, delivered(all.path)[0]!)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at(koton.path)).toEqual([]);
    const log = (await (await app.request(`/api/v1/subscriptions/${migros.id}/deliveries`, authed(undefined, "GET"))).json()) as {
      deliveries: { ok: boolean; responseCode: number; attempt: number; eventId: number }[];
    };
    expect(log.deliveries).toMatchObject([{ ok: true, responseCode: 204, attempt: 1, eventId: event.id }]);
  });

  it("an endpoint that fails then recovers gets every change exactly once, in order, each under one webhook-id", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    receiver.failNext.set(sub.path, 3);
    const recipient = newRecipient();
    const events = [await change("MIGROS", recipient, "ONAY", 50), await change("MIGROS", recipient, "RET", 40), await change("MIGROS", recipient, "ONAY", 30)];
    await waitFor(() => outboxOf(sub.id).length === 3 && outboxOf(sub.id).every((o) => o.status === "done"), { timeoutMs: 20_000 });
    const ok = delivered(sub.path);
    expect(ok.map((r) => data(r).data.eventId)).toEqual(events.map((e) => e.id));
    expect(ok.map((r) => data(r).data.status)).toEqual(["ONAY", "RET", "ONAY"]);
    // The failed attempts were the first change, retried under the same id before anything newer went out.
    const all = receiver.at(sub.path);
    expect(all.slice(0, 4).map((r) => r.headers["webhook-id"])).toEqual(Array(4).fill(`evt_${events[0]!.id}_${sub.id}`));
    expect(all.every((r) => verifyReceived(sub.secret, r))).toBe(true);
    expect(outboxOf(sub.id)[0]!.attempts).toBe(4);
  });

  it("a change its receiver refuses (a 422 for that body) does not hold the consent's newer change: the RET goes at once, the ONAY ends failed saying why", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const recipient = newRecipient();
    receiver.answerWith.set(sub.path, (body) => (JSON.parse(body).data.status === "ONAY" ? 422 : undefined));
    const onay = await change("MIGROS", recipient, "ONAY", 50);
    await waitFor(() => receiver.at(sub.path).length === 1, { timeoutMs: 10_000 });
    const ret = await change("MIGROS", recipient, "RET", 40);
    await waitFor(() => delivered(sub.path).length === 1 && outboxOf(sub.id).every((o) => o.status !== "pending"), { timeoutMs: 10_000 });
    // The ONAY was tried once (the schedule would have tried it four times before the RET went).
    expect(receiver.at(sub.path).map((r) => [data(r).data.eventId, r.answered])).toEqual([
      [onay.id, 422],
      [ret.id, 204],
    ]);
    expect(outboxOf(sub.id).map((o) => [o.status, o.lastError])).toEqual([
      ["failed", `refused by the endpoint (HTTP 422); event ${ret.id}, a newer change of the same consent, goes instead`],
      ["done", null],
    ]);
  });

  it("a refused change another process is sending right now (its claim's lease, whatever its length) still holds the newer one; once that attempt is over, the newer goes", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const recipient = newRecipient();
    receiver.answerWith.set(sub.path, (body) => (JSON.parse(body).data.status === "ONAY" ? 422 : undefined));
    await change("MIGROS", recipient, "ONAY", 50);
    await waitFor(() => receiver.at(sub.path).length === 1 && outboxOf(sub.id)[0]?.attempts === 1, { timeoutMs: 10_000 });
    const onayRow = outboxOf(sub.id)[0]!.id;
    // Claimed by another process, one with another CALLBACK_TIMEOUT_MS (60 s: a lease of 65 s).
    const t = clock.now().getTime();
    db().prepare("UPDATE outbox SET next_attempt_at = ?, claimed_until = ?, updated_at = ? WHERE id = ?").run(t + 65_000, t + 65_000, t, onayRow);
    const ret = await change("MIGROS", recipient, "RET", 40);
    await waitFor(() => outboxOf(sub.id).length === 2, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(outboxOf(sub.id).map((o) => o.status)).toEqual(["pending", "pending"]);
    expect(receiver.at(sub.path)).toHaveLength(1);
    // That attempt ended (refused again; its retry an hour away): the RET goes when it is next tried, and the ONAY ends.
    const t2 = clock.now().getTime();
    db().prepare("UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE id = ?").run(t2 + 3_600_000, t2, onayRow);
    const retRow = outboxOf(sub.id)[1]!.id;
    db().prepare("UPDATE outbox SET next_attempt_at = ? WHERE id = ?").run(t2, retRow);
    await runtime.deps.jobs.enqueueOutbox([{ id: retRow, kind: "callback" }], { tag: "test" });
    await waitFor(() => delivered(sub.path).length === 1, { timeoutMs: 10_000 });
    expect(data(delivered(sub.path)[0]!).data.eventId).toBe(ret.id);
    expect(outboxOf(sub.id).map((o) => o.status)).toEqual(["failed", "done"]);
  });

  it("a change answered 429 (too many requests) still holds the newer one until it is delivered, in order", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const recipient = newRecipient();
    let busy = 2;
    receiver.answerWith.set(sub.path, () => (busy-- > 0 ? 429 : undefined));
    const onay = await change("MIGROS", recipient, "ONAY", 50);
    await waitFor(() => receiver.at(sub.path).length === 1, { timeoutMs: 10_000 });
    const ret = await change("MIGROS", recipient, "RET", 40);
    await waitFor(() => outboxOf(sub.id).length === 2 && outboxOf(sub.id).every((o) => o.status === "done"), { timeoutMs: 10_000 });
    expect(delivered(sub.path).map((r) => data(r).data.eventId)).toEqual([onay.id, ret.id]);
    expect(receiver.at(sub.path).slice(0, 2).map((r) => [data(r).data.eventId, r.answered])).toEqual([
      [onay.id, 429],
      [onay.id, 429],
    ]);
  });

  it("an endpoint down for the whole schedule ends exhausted, is disabled after failing for 5 days, and the other subscriptions hear endpoint.disabled", async () => {
    const down = await subscribe({ brands: ["KOTON"] });
    const other = await subscribe({ brands: ["LCW"], events: ["consent.changed", "endpoint.disabled"] });
    const uninterested = await subscribe({ brands: ["LCW"], events: ["consent.changed"] });
    receiver.down.add(down.path);
    await change("KOTON", newRecipient(), "ONAY");
    // Five days pass between the third attempt and the last (the real schedule spans about 28 h of them).
    await waitFor(() => outboxOf(down.id)[0]?.attempts === 3, { timeoutMs: 10_000 });
    expect(runtime.deps.db.$client.prepare("SELECT status FROM endpoints WHERE id = ?").get(down.id)).toEqual({ status: "active" });
    clock.offset += 5 * 24 * 3_600_000 + 60_000;
    await waitFor(() => outboxOf(down.id)[0]?.status === "exhausted", { timeoutMs: 20_000 });
    expect(outboxOf(down.id)[0]).toMatchObject({ attempts: 4, lastError: "HTTP 503" });
    expect(receiver.at(down.path)).toHaveLength(4);
    const sub = (await (await app.request(`/api/v1/subscriptions/${down.id}`, authed(undefined, "GET"))).json()) as { status: string; disabledReason: string };
    expect(sub.status).toBe("disabled");
    expect(sub.disabledReason).toMatch(/^failing since /);
    await waitFor(() => delivered(other.path).length === 1);
    const notice = delivered(other.path)[0]!;
    expect(verifyReceived(other.secret, notice)).toBe(true);
    expect(data(notice)).toMatchObject({ type: "endpoint.disabled", data: { endpointId: down.id, url: `${receiver.base}${down.path}` } });
    // Its id names this notice (a second disabling would be a new message, not a repeat).
    expect(notice.headers["webhook-id"]).toMatch(new RegExp(`^msg_disabled_${down.id}_${other.id}_\\d+$`));
    // Replayed (twice: a replay of the replay), it comes again under the same id, as a replay promises.
    const notices = () => db().prepare("SELECT id, status FROM outbox WHERE kind = 'callback' AND target LIKE ? ORDER BY id").all(`${other.id}/endpoint.disabled/%`) as { id: number; status: string }[];
    await waitFor(() => notices()[0]?.status === "done");
    for (let k = 2; k <= 3; k++) {
      const last = notices().at(-1)!;
      expect((await app.request(`/api/v1/deliveries/${last.id}/replay`, authed({}))).status).toBe(202);
      await waitFor(() => delivered(other.path).length === k && notices().at(-1)!.status === "done");
      expect(delivered(other.path)[k - 1]!.headers["webhook-id"]).toBe(notice.headers["webhook-id"]);
      expect(verifyReceived(other.secret, delivered(other.path)[k - 1]!)).toBe(true);
    }

    // Nothing more goes to a disabled endpoint.
    await change("KOTON", newRecipient(), "ONAY");
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.at(down.path)).toHaveLength(4);
    // A subscription that did not ask for endpoint.disabled heard nothing of it.
    expect(receiver.at(uninterested.path)).toHaveLength(0);
  });

  it("a delivery that ran out of attempts ends the endpoint's failing streak: a failure days later does not disable it", async () => {
    const sub = await subscribe({ brands: ["KOTON"] });
    receiver.down.add(sub.path);
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => outboxOf(sub.id)[0]?.status === "exhausted", { timeoutMs: 10_000 });
    const endpoint = () => db().prepare("SELECT status, failing_since AS failingSince FROM endpoints WHERE id = ?").get(sub.id) as { status: string; failingSince: number | null };
    expect(endpoint()).toEqual({ status: "active", failingSince: null });
    clock.offset += 5 * 24 * 3_600_000 + 60_000;
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => outboxOf(sub.id)[1]?.attempts === 1, { timeoutMs: 10_000 });
    expect(endpoint()).toMatchObject({ status: "active", failingSince: expect.any(Number) });
    receiver.down.delete(sub.path);
    await waitFor(() => outboxOf(sub.id)[1]?.status === "done", { timeoutMs: 10_000 });

    // A notice still to go to the endpoint is something else to deliver: the streak goes on.
    receiver.down.add(sub.path);
    const notice = db()
      .prepare(`INSERT INTO outbox (kind, target, status, attempts, next_attempt_at, created_at, updated_at) VALUES ('callback', ?, 'pending', 0, ?, ?, ?) RETURNING id`)
      .pluck()
      .get(`${sub.id}/endpoint.disabled/ep_elsewhere`, clock.now().getTime() + 3_600_000, clock.now().getTime(), clock.now().getTime()) as number;
    try {
      await change("KOTON", newRecipient(), "ONAY");
      await waitFor(() => outboxOf(sub.id)[2]?.status === "exhausted", { timeoutMs: 10_000 });
      expect(endpoint()).toMatchObject({ status: "active", failingSince: expect.any(Number) });
    } finally {
      db().prepare("UPDATE outbox SET status = 'skipped' WHERE id = ?").run(notice);
      receiver.down.delete(sub.path);
    }
  });

  it("an attempt that fails before sending (a secret that no longer decrypts) is counted and retried, not left pending unseen", async () => {
    const broken = await subscribe({ brands: ["KOTON"] });
    runtime.deps.db.$client.prepare("UPDATE endpoints SET secret_enc = 'v1.not-a-secret' WHERE id = ?").run(broken.id);
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => (outboxOf(broken.id)[0]?.attempts ?? 0) >= 1, { timeoutMs: 10_000 });
    const row = runtime.deps.db.$client.prepare("SELECT status, last_error AS lastError, next_attempt_at AS nextAttemptAt FROM outbox WHERE kind = 'callback' AND target = ?").get(broken.id) as {
      status: string;
      lastError: string;
      nextAttemptAt: number | null;
    };
    expect(row.status).toBe("pending");
    expect(row.lastError).toBeTruthy();
    expect(row.nextAttemptAt).not.toBeNull();
    expect(receiver.at(broken.path)).toHaveLength(0);
  });

  it("a receiver answering after 20 s is a failure at the 15 s timeout (it gets the request, the attempt counts as failed)", async () => {
    const slow = await subscribe({ brands: ["LCW"] });
    receiver.slowMs.set(slow.path, 20_000);
    await change("LCW", newRecipient(), "ONAY");
    await waitFor(() => outboxOf(slow.id)[0]?.attempts === 1, { timeoutMs: 25_000 });
    expect(receiver.at(slow.path)).toHaveLength(1);
    expect(outboxOf(slow.id)[0]).toMatchObject({ status: "pending", lastError: "timeout after 15000 ms" });
    receiver.slowMs.delete(slow.path);
    await waitFor(() => outboxOf(slow.id)[0]?.status === "done", { timeoutMs: 10_000 });
    expect(new Set(receiver.at(slow.path).map((r) => r.headers["webhook-id"])).size).toBe(1);
  }, 40_000);

  it("an endpoint that does not answer holds up no other endpoint: after its first failures its new rows wait for it without an attempt, and it is tried one row at a time", async () => {
    const healthy = await subscribe({ brands: ["KOTON"] });
    const dead = await subscribe({ brands: ["KOTON"] });
    // Past the 15 s timeout: every attempt to it keeps a worker slot for 15 s.
    receiver.slowMs.set(dead.path, 20_000);
    try {
      const changes = 64; // two waves of the worker's 32 slots
      for (let i = 0; i < changes; i++) await change("KOTON", newRecipient(), "ONAY");
      await waitFor(() => delivered(healthy.path).length === changes, { timeoutMs: 80_000 });
      // Every job kept its slot for a whole timeout before: the dead endpoint had been tried once for
      // every change by the time the healthy one had them all (the second wave waited 15 s).
      const tried = receiver.at(dead.path).length;
      expect(tried).toBeGreaterThanOrEqual(1);
      expect(tried).toBeLessThanOrEqual(40);
      const rows = outboxOf(dead.id);
      expect(rows).toHaveLength(changes);
      expect(rows.filter((r) => r.status === "pending" && r.attempts === 0).length).toBeGreaterThanOrEqual(changes - 40);
      // Answering again: the first attempt that gets through sends every row that waited, each once.
      receiver.slowMs.delete(dead.path);
      await waitFor(() => outboxOf(dead.id).every((r) => r.status === "done"), { timeoutMs: 60_000 });
      // (The receiver still answers the requests the hub gave up on, late: the hub's own record counts.)
      const ok = db().prepare("SELECT outbox_id AS id FROM deliveries WHERE endpoint_id = ? AND ok = 1").all(dead.id) as { id: number }[];
      expect(new Set(ok.map((d) => d.id)).size).toBe(changes);
      expect(ok).toHaveLength(changes);
    } finally {
      receiver.slowMs.delete(dead.path);
    }
  }, 160_000);

  it("a rotated secret signs alongside the old one during the overlap", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const res = await app.request(`/api/v1/subscriptions/${sub.id}/rotate-secret`, authed({}));
    expect(res.status).toBe(200);
    const { secret, previousSecretValidUntil } = (await res.json()) as { secret: string; previousSecretValidUntil: string };
    expect(secret).not.toBe(sub.secret);
    expect(Date.parse(previousSecretValidUntil) - clock.now().getTime()).toBeGreaterThan(23 * 3_600_000);
    await change("MIGROS", newRecipient(), "ONAY");
    await waitFor(() => delivered(sub.path).length === 1);
    const r = delivered(sub.path)[0]!;
    expect(String(r.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    expect(verifyReceived(secret, r)).toBe(true);
    expect(verifyReceived(sub.secret, r)).toBe(true);
  });

  it("a delivery replayed, alone or since a time, arrives again under the same webhook-id", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const start = clock.now().toISOString();
    await change("MIGROS", newRecipient(), "ONAY");
    await waitFor(() => delivered(sub.path).length === 1);
    // The receiver has it before the worker marks the row done (a replay of a pending row is a 409).
    await waitFor(() => outboxOf(sub.id)[0]?.status === "done");
    // The callbacks queue's jobs are timed in /metrics like every other queue's.
    const metrics = async () => (await app.request("/metrics", { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    await waitFor(async () => /job_duration_seconds_count\{queue="callbacks",job="callback\.deliver",outcome="ok"\} [1-9]/.test(await metrics()), { timeoutMs: 10_000 });
    const [row] = outboxOf(sub.id);
    const one = await app.request(`/api/v1/deliveries/${row!.id}/replay`, authed({}));
    expect(one.status).toBe(202);
    await waitFor(() => delivered(sub.path).length === 2);
    const since = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: start, only: "all" }));
    expect(await since.json()).toMatchObject({ replayed: 1 });
    await waitFor(() => delivered(sub.path).length === 3);
    expect(new Set(delivered(sub.path).map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect((await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: "yesterday" }))).status).toBe(400);
    expect((await app.request(`/api/v1/deliveries/999999/replay`, authed({}))).status).toBe(404);
  });

  it("a replay never leaves the receiver on a change the hub has left: an older change missed while disabled is skipped as superseded once a newer one was delivered", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const start = clock.now().toISOString();
    const r = newRecipient();
    await change("MIGROS", r, "ONAY", 240);
    await change("MIGROS", r, "RET", 180);
    await waitFor(() => outboxOf(sub.id).filter((o) => o.status === "done").length === 2);
    expect((await app.request(`/api/v1/subscriptions/${sub.id}`, authed({ status: "disabled" }, "PATCH"))).status).toBe(200);
    await change("MIGROS", r, "ONAY", 120); // missed: its row is skipped
    await waitFor(() => outboxOf(sub.id).length === 3 && outboxOf(sub.id)[2]!.status === "skipped");
    expect((await app.request(`/api/v1/subscriptions/${sub.id}`, authed({ status: "active" }, "PATCH"))).status).toBe(200);
    await change("MIGROS", r, "RET", 60);
    await waitFor(() => delivered(sub.path).length === 3);
    const replay = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: start }));
    expect(await replay.json()).toMatchObject({ replayed: 1 });
    await waitFor(() => outboxOf(sub.id).length === 5 && outboxOf(sub.id)[4]!.status !== "pending");
    expect(outboxOf(sub.id)[4]).toMatchObject({ status: "skipped" });
    const statuses = delivered(sub.path).map((d) => (JSON.parse(d.body) as { data: { status: string } }).data.status);
    expect(statuses).toEqual(["ONAY", "RET", "RET"]);
    // Replaying everything since then sends the changes again in order, the newest last.
    const all = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: start, only: "all" }));
    expect((await all.json()) as { replayed: number }).toMatchObject({ replayed: expect.any(Number) });
    await waitFor(() => outboxOf(sub.id).every((o) => o.status !== "pending"));
    const after = delivered(sub.path).map((d) => (JSON.parse(d.body) as { data: { status: string } }).data.status);
    expect(after.at(-1)).toBe("RET");
  });
});

describe("replays of changes a newer one overtook", () => {
  it("two older changes replayed after newer ones were delivered are both superseded: the receiver never ends on the older ONAY", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const start = clock.now().toISOString();
    const r = newRecipient();
    receiver.down.add(sub.path);
    await change("MIGROS", r, "ONAY", 240);
    await change("MIGROS", r, "RET", 200);
    await waitFor(() => outboxOf(sub.id).length === 2 && outboxOf(sub.id).every((o) => o.status === "exhausted"), { timeoutMs: 30_000 });
    receiver.down.delete(sub.path);
    await change("MIGROS", r, "ONAY", 120);
    await change("MIGROS", r, "RET", 60);
    await waitFor(() => delivered(sub.path).length === 2);
    const replay = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: start }));
    expect(await replay.json()).toMatchObject({ replayed: 2 });
    await waitFor(() => outboxOf(sub.id).length === 6 && outboxOf(sub.id).every((o) => o.status !== "pending"), { timeoutMs: 20_000 });
    // The ONAY of the replay went out while its RET was still to go, and the RET was then skipped: ONAY last.
    expect(delivered(sub.path).map((d) => (JSON.parse(d.body) as { data: { status: string } }).data.status)).toEqual(["ONAY", "RET"]);
    expect(outboxOf(sub.id).slice(4).map((o) => o.status)).toEqual(["skipped", "skipped"]);
  });
});

describe("replay since a time", () => {
  it("counts from when the change was recorded, not from when a replay last sent it", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    const start = clock.now().getTime();
    await change("MIGROS", newRecipient(), "ONAY");
    await waitFor(() => outboxOf(sub.id)[0]?.status === "done");
    clock.offset += 3_600_000;
    const first = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: new Date(start).toISOString(), only: "all" }));
    expect(await first.json()).toMatchObject({ replayed: 1 });
    await waitFor(() => outboxOf(sub.id).length === 2 && outboxOf(sub.id)[1]!.status === "done");
    // Half an hour after the change, before the replay: nothing has changed since.
    const later = await app.request(`/api/v1/subscriptions/${sub.id}/replay`, authed({ since: new Date(start + 1_800_000).toISOString(), only: "all" }));
    expect(await later.json()).toMatchObject({ replayed: 0 });
  });
});

describe("operations", () => {
  it("hub deliveries lists an endpoint's attempts, and with --failed only the failed ones", async () => {
    const sub = await subscribe({ brands: ["MIGROS"] });
    receiver.failNext.set(sub.path, 1);
    await change("MIGROS", newRecipient(), "ONAY");
    await waitFor(() => outboxOf(sub.id)[0]?.status === "done", { timeoutMs: 10_000 });
    const hub = (...args: string[]) =>
      promisify(execFile)(process.execPath, ["bin/hub.mjs", "deliveries", "--endpoint", sub.id, ...args], {
        env: { ...process.env, DATABASE_PATH: runtime.deps.config.DATABASE_PATH, LOG_LEVEL: "warn" },
      });
    const all = (await hub()).stdout.trim().split("\n");
    expect(all).toHaveLength(2);
    expect(all[0]).toMatch(new RegExp(`\t${sub.id}\toutbox #\\d+\tattempt 2\tok\t204\t`));
    const failed = (await hub("--failed")).stdout.trim().split("\n");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/attempt 1\tFAILED\t500\t.*HTTP 500$/);
    // --json as the API gives a delivery (ok a boolean, at an ISO date), with its endpoint.
    const json = JSON.parse((await hub("--json")).stdout) as Record<string, unknown>[];
    expect(json[0]).toMatchObject({ endpointId: sub.id, attempt: 2, ok: true, responseCode: 204, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
    expect(json[1]).toMatchObject({ attempt: 1, ok: false });
    // An endpoint that does not exist is said, not answered with "no deliveries".
    const unknown = await promisify(execFile)(process.execPath, ["bin/hub.mjs", "deliveries", "--endpoint", "ep_nope"], {
      env: { ...process.env, DATABASE_PATH: runtime.deps.config.DATABASE_PATH, LOG_LEVEL: "warn" },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining("unknown endpoint ep_nope") });
  });
});

describe("partners", () => {
  async function addPartner(brand: string, retailerCode: string, withUrl = true) {
    const path = newPath(`p${retailerCode}`);
    const res = await app.request(`/api/v1/brands/${brand}/partners`, authed({ retailerCode, name: `Bayi ${retailerCode}`, ...(withUrl ? { url: `${receiver.base}${path}` } : {}) }));
    expect(res.status, await res.clone().text()).toBe(201);
    const json = (await res.json()) as { secret: string; apiKey: string; endpointId: string };
    return { ...json, path, retailerCode };
  }

  function report(retailerCode: string, key: string, body: Record<string, unknown>) {
    return app.request(`/api/v1/partners/${retailerCode}/consents`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  it("a partner's report is recorded with its retailerCode and reaches the brand's subscribers and every other partner, not itself", async () => {
    const sub = await subscribe({ brands: ["KOTON"] });
    const [a, b, c] = [await addPartner("KOTON", "10000001"), await addPartner("KOTON", "10000002"), await addPartner("KOTON", "10000003")];
    const recipient = newRecipient();
    const res = await report(a.retailerCode, a.apiKey, {
      brand: "KOTON",
      recipient,
      type: "MESAJ",
      status: "ONAY",
      source: "HS_FIZIKSEL_ORTAM",
      consentDate: formatIysDate(new Date(clock.now().getTime() - 60_000)),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ event: { origin: "partner", retailerCode: "10000001" } });
    await waitFor(() => delivered(sub.path).length === 1 && delivered(b.path).length === 1 && delivered(c.path).length === 1);
    expect(verifyReceived(b.secret, delivered(b.path)[0]!)).toBe(true);
    expect(verifyReceived(c.secret, delivered(c.path)[0]!)).toBe(true);
    expect(data(delivered(sub.path)[0]!).data).toMatchObject({ recipient, retailerCode: "10000001" });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at(a.path)).toEqual([]);
  });

  it("a report with another partner's key, a wrong key or no key is a 401, another brand a 403, and records nothing", async () => {
    const a = await addPartner("LCW", "20000001");
    const b = await addPartner("LCW", "20000002", false);
    const recipient = newRecipient();
    const body = { brand: "LCW", recipient, type: "MESAJ", status: "RET", source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - 60_000)) };
    expect((await report(a.retailerCode, b.apiKey, body)).status).toBe(401);
    expect((await report(a.retailerCode, "pk_wrong", body)).status).toBe(401);
    // A good key naming a brand it is no partner of: a 403 naming the brand, not "invalid key".
    const other = await report(a.retailerCode, a.apiKey, { ...body, brand: "KOTON" });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string; field: string } }).error).toMatchObject({ field: "brand", message: expect.stringContaining("not for brand KOTON") });
    expect((await app.request(`/api/v1/partners/${a.retailerCode}/consents`, { method: "POST", body: JSON.stringify(body) })).status).toBe(401);
    // The provider's admin key is not a partner key.
    expect((await report(a.retailerCode, ADMIN_KEY, body)).status).toBe(401);
    expect(db().prepare("SELECT count(*) AS n FROM consent_events WHERE recipient = ?").get(recipient)).toEqual({ n: 0 });
    expect((await report(a.retailerCode, a.apiKey, { ...body, retailerCode: "20000002" })).status).toBe(400);
    expect((await report(a.retailerCode, a.apiKey, body)).status).toBe(201);
    // Guessing a partner key: past 20 wrong keys from a client, its keys are a 429, the right one too.
    // A pinned clock: the guesses are counted in 15-minute windows, and one must not end among them.
    const pinned = clock.now();
    const behindProxy = createApp({ ...runtime.deps, clock: { now: () => pinned }, config: { ...runtime.deps.config, LINK_CLIENT_IP_HEADER: "x-forwarded-for" } });
    const guess = (key: string, ip = "192.0.2.44") =>
      behindProxy.request(`/api/v1/partners/${a.retailerCode}/consents`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-forwarded-for": ip },
        body: JSON.stringify({ ...body, recipient: newRecipient() }),
      });
    for (let i = 0; i < 20; i++) expect((await guess(`pk_guess_${i}`)).status).toBe(401);
    expect((await guess("pk_guess_20")).status).toBe(429);
    expect((await guess(a.apiKey)).status).toBe(429);
    expect((await guess(a.apiKey, "192.0.2.45")).status).toBe(201);
  });

  it("partners are listed without secrets; a duplicate retailerCode is a 409; a bad one a 400; a brand takes at most 3000", async () => {
    await addPartner("LCW", "30000001");
    expect((await app.request("/api/v1/brands/LCW/partners", authed({ retailerCode: "30000001", name: "x" }))).status).toBe(409);
    const bad = await app.request("/api/v1/brands/LCW/partners", authed({ retailerCode: "123", name: "x" }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { field: "retailerCode" } });
    const list = (await (await app.request("/api/v1/brands/LCW/partners", authed(undefined, "GET"))).json()) as { partners: Record<string, unknown>[] };
    expect(list.partners.map((p) => p.retailerCode)).toContain("30000001");
    expect(JSON.stringify(list)).not.toMatch(/whsec_|pk_/);
    const brandId = (db().prepare("SELECT id FROM brands WHERE code = 'LCW'").get() as { id: number }).id;
    const have = (db().prepare("SELECT count(*) AS n FROM partners WHERE brand_id = ?").get(brandId) as { n: number }).n;
    const insert = db().prepare("INSERT INTO partners (brand_id, retailer_code, name, created_at) VALUES (?, ?, 'bulk', 0)");
    db().transaction(() => {
      for (let i = have; i < 2999; i++) insert.run(brandId, String(40_000_000 + i));
    })();
    expect((await app.request("/api/v1/brands/LCW/partners", authed({ retailerCode: "49999999", name: "last" }))).status).toBe(201);
    const over = await app.request("/api/v1/brands/LCW/partners", authed({ retailerCode: "49999998", name: "one too many" }));
    expect(over.status).toBe(409);
    expect(((await over.json()) as { error: { message: string } }).error.message).toContain("3000");
    expect((await app.request("/api/v1/brands/LCW/partners/49999999", authed(undefined, "DELETE"))).status).toBe(204);
    expect((await app.request("/api/v1/brands/LCW/partners/49999999", authed(undefined, "GET"))).status).toBe(404);
  });

  const patchPartner = (brand: string, retailerCode: string, body: Record<string, unknown>) =>
    app.request(`/api/v1/brands/${brand}/partners/${retailerCode}`, authed(body, "PATCH"));

  it("a partner's name and URL change through PATCH: a first URL creates its endpoint (secret shown then), null stops deliveries", async () => {
    const p = await addPartner("KOTON", "60000001", false);
    expect(p.endpointId).toBeNull();
    expect((await patchPartner("KOTON", p.retailerCode, { status: "active" })).status).toBe(409);
    const first = newPath("p60000001");
    const added = await patchPartner("KOTON", p.retailerCode, { url: `${receiver.base}${first}`, name: "Bayi Moda" });
    expect(added.status, await added.clone().text()).toBe(200);
    const withUrl = (await added.json()) as { secret: string; endpointId: string; name: string; endpointStatus: string };
    expect(withUrl).toMatchObject({ name: "Bayi Moda", endpointStatus: "active" });
    expect(withUrl.secret).toMatch(/^whsec_/);
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => delivered(first).length === 1);
    expect(verifyReceived(withUrl.secret, delivered(first)[0]!)).toBe(true);

    // A new URL keeps the endpoint and its secret (none in the answer).
    const second = newPath("p60000001");
    const moved = await patchPartner("KOTON", p.retailerCode, { url: `${receiver.base}${second}` });
    expect(moved.status).toBe(200);
    const movedJson = (await moved.json()) as Record<string, unknown>;
    expect(movedJson).toMatchObject({ endpointId: withUrl.endpointId, url: `${receiver.base}${second}` });
    expect(movedJson).not.toHaveProperty("secret");
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => delivered(second).length === 1);
    expect(verifyReceived(withUrl.secret, delivered(second)[0]!)).toBe(true);
    expect(delivered(first)).toHaveLength(1);

    const removed = await patchPartner("KOTON", p.retailerCode, { url: null });
    expect(await removed.json()).toMatchObject({ url: null, endpointId: null, endpointStatus: null });
    await change("KOTON", newRecipient(), "ONAY");
    await new Promise((r) => setTimeout(r, 500));
    expect(delivered(second)).toHaveLength(1);

    const bad = await patchPartner("KOTON", p.retailerCode, { secret: "mine" });
    expect(bad.status).toBe(400);
    expect((await patchPartner("KOTON", p.retailerCode, { url: "ftp://bayi.example.com" })).status).toBe(400);
    expect((await patchPartner("KOTON", "69999999", { name: "x" })).status).toBe(404);
    expect((await app.request(`/api/v1/brands/KOTON/partners/${p.retailerCode}`, authed(undefined, "GET"))).status).toBe(200);
  });

  it("a partner's secret rotates with an overlap; a replaced API key refuses the old one at once", async () => {
    const p = await addPartner("KOTON", "61000001");
    const rotated = await app.request(`/api/v1/brands/KOTON/partners/${p.retailerCode}/rotate-secret`, authed({}));
    expect(rotated.status).toBe(200);
    const { secret, previousSecretValidUntil } = (await rotated.json()) as { secret: string; previousSecretValidUntil: string };
    expect(secret).not.toBe(p.secret);
    expect(Date.parse(previousSecretValidUntil)).toBeGreaterThan(clock.now().getTime());
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => delivered(p.path).length === 1);
    expect(verifyReceived(secret, delivered(p.path)[0]!)).toBe(true);
    expect(verifyReceived(p.secret, delivered(p.path)[0]!)).toBe(true);

    const keyed = await app.request(`/api/v1/brands/KOTON/partners/${p.retailerCode}/rotate-key`, authed({}));
    const { apiKey } = (await keyed.json()) as { apiKey: string };
    expect(apiKey).not.toBe(p.apiKey);
    const body = { brand: "KOTON", recipient: newRecipient(), type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: formatIysDate(new Date(clock.now().getTime() - 60_000)) };
    expect((await report(p.retailerCode, p.apiKey, body)).status).toBe(401);
    expect((await report(p.retailerCode, apiKey, body)).status).toBe(201);

    const bare = await addPartner("KOTON", "61000002", false);
    expect((await app.request(`/api/v1/brands/KOTON/partners/${bare.retailerCode}/rotate-secret`, authed({}))).status).toBe(409);
  });

  it("a partner's deliveries since a time are replayed; a partner without a URL or disabled gets a 409", async () => {
    const p = await addPartner("KOTON", "62000001");
    const start = clock.now().toISOString();
    await change("KOTON", newRecipient(), "ONAY");
    await waitFor(() => delivered(p.path).length === 1);
    const replay = (body: Record<string, unknown>, code = p.retailerCode) => app.request(`/api/v1/brands/KOTON/partners/${code}/replay`, authed(body));
    const failedOnly = await replay({ since: start });
    expect(await failedOnly.json()).toMatchObject({ replayed: 0 });
    const all = await replay({ since: start, only: "all" });
    expect(all.status).toBe(202);
    expect(await all.json()).toMatchObject({ replayed: 1 });
    await waitFor(() => delivered(p.path).length === 2);
    expect(new Set(delivered(p.path).map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect((await replay({ since: "yesterday" })).status).toBe(400);
    expect((await patchPartner("KOTON", p.retailerCode, { status: "disabled" })).status).toBe(200);
    expect((await replay({ since: start, only: "all" })).status).toBe(409);
    const bare = await addPartner("KOTON", "62000002", false);
    expect((await replay({ since: start }, bare.retailerCode)).status).toBe(409);
  });

  it("a partner switched off over a refusal gets it on the replay after it is enabled again, after the consent it had", async () => {
    const p = await addPartner("KOTON", "63000001");
    const recipient = newRecipient();
    const start = clock.now().toISOString();
    await change("KOTON", recipient, "ONAY", 120);
    await waitFor(() => delivered(p.path).length === 1);
    expect((await patchPartner("KOTON", p.retailerCode, { status: "disabled" })).status).toBe(200);
    await change("KOTON", recipient, "RET", 60);
    await new Promise((r) => setTimeout(r, 500));
    expect(delivered(p.path)).toHaveLength(1);
    expect((await patchPartner("KOTON", p.retailerCode, { status: "active" })).status).toBe(200);
    // The refusal missed while disabled is there to replay (a skipped delivery), and only it.
    const res = await app.request(`/api/v1/brands/KOTON/partners/${p.retailerCode}/replay`, authed({ since: start }));
    expect(await res.json()).toMatchObject({ replayed: 1 });
    await waitFor(() => delivered(p.path).length === 2);
    expect(delivered(p.path).map((r) => data(r).data.status)).toEqual(["ONAY", "RET"]);
  });

  it("a partner asks the pre-send check with its own key, so it honours refusals made before it was registered", async () => {
    const recipient = newRecipient();
    const other = newRecipient();
    await change("LCW", recipient, "ONAY", 120);
    await change("LCW", recipient, "RET", 60);
    await change("LCW", other, "ONAY", 60);
    const p = await addPartner("LCW", "64000001");
    const check = (key: string, body: Record<string, unknown>, code = p.retailerCode) =>
      app.request(`/api/v1/partners/${code}/check`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const res = await check(p.apiKey, { brand: "LCW", type: "MESAJ", recipients: [recipient, other] });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ allowed: [other], denied: [{ recipient, reason: "refused" }] });
    // Its key is for its brand only (another brand: a 403 naming it); a wrong key, another partner's code, no key: one 401.
    expect((await check(p.apiKey, { brand: "KOTON", type: "MESAJ", recipients: [recipient] })).status).toBe(403);
    expect((await check("wrong", { brand: "LCW", type: "MESAJ", recipients: [recipient] })).status).toBe(401);
    expect((await check(p.apiKey, { brand: "LCW", type: "MESAJ", recipients: [recipient] }, "64000002")).status).toBe(401);
    expect((await app.request(`/api/v1/partners/${p.retailerCode}/check`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(401);
    // The key is checked before the body is read: without the right one, a body that is not even JSON is a 401, not a 400.
    for (const headers of [{}, { authorization: "Bearer wrong-partner-key" }] as Record<string, string>[]) {
      const res = await app.request(`/api/v1/partners/${p.retailerCode}/check`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{not json" });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/partner API key|API key for partner 64000001/);
    }
    expect((await check(p.apiKey, { brand: "LCW", type: "MESAJ", recipients: "nope" })).status).toBe(400);
    // As many recipients as the provider's check takes (a body of several MiB).
    const many = Array.from({ length: 100_000 }, (_, i) => `+90533${String(5_000_000 + i).padStart(7, "0")}`);
    const big = await check(p.apiKey, { brand: "LCW", type: "MESAJ", recipients: many });
    expect(big.status).toBe(200);
    expect(((await big.json()) as { denied: unknown[] }).denied).toHaveLength(100_000);
  });

  it("a RET by SMS reaches every partner of the brand, signed with each one's secret", async () => {
    const partners: Awaited<ReturnType<typeof addPartner>>[] = [];
    for (let i = 1; i <= 5; i++) partners.push(await addPartner("MIGROS", `5000000${i}`));
    const from = newRecipient();
    const sid = `SM${"d".repeat(24)}${String(Date.now()).slice(-8)}`;
    const params = { MessageSid: sid, SmsSid: sid, AccountSid: ACCOUNT_SID, From: from, To: "3434", Body: "RET MIGROS", NumSegments: "1" };
    const res = await app.request("/sms/twilio", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, "https://hub.example.com/sms/twilio", params),
      },
      body: new URLSearchParams(params).toString(),
    });
    expect(res.status).toBe(200);
    await waitFor(() => partners.every((p) => delivered(p.path).length === 1));
    for (const p of partners) {
      const r = delivered(p.path)[0]!;
      expect(verifyReceived(p.secret, r)).toBe(true);
      expect(data(r).data).toMatchObject({ brand: "MIGROS", recipient: from, type: "MESAJ", status: "RET", source: "HS_MESAJ" });
    }
  });
});
