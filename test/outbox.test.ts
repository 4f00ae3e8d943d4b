import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, runMigrations, type Db } from "../db/index";
import { Ledger } from "../db/ledger";
import { UnrecoverableError, type Job } from "bullmq";
import { finishOutbox, OUTBOX_LEASE_MS, pendingOutbox, recordAttemptFailure, type OutboxHandler } from "../jobs/outbox";
import { OUTBOX_RETRY_HORIZON_MS, runOutboxBatch, type WorkerDeps } from "../jobs/workers";
import { OutcomeUnknownError } from "../src/errors";
import { run as runIysReport } from "../jobs/iys-report.handler";
import type { IysReporter } from "../src/services/iys";
import { Redis } from "ioredis";
import type { OutboxRef } from "../db/ledger";
import { JobProducer } from "../jobs/producer";
import { receiptBatchJobId, receiptJobId, type QueueName } from "../jobs/registry";
import { sweep } from "../jobs/sweeper";
import { RELEASED } from "../jobs/deliver-callback.handler";
import { createBrand } from "../src/brands";
import { BusinessCalendar } from "../src/domain/calendar";
import { iysReportPlanner } from "../src/runtime";
import { deletePrefix, REDIS_URL, silentLog, TestClock, tempDir, uniquePrefix } from "./helpers";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const clock = new TestClock(Date.parse("2026-11-25T09:00:00Z"));
let db: Db;
let n = 0;
let rowId: number;

beforeEach(() => {
  db = openDatabase(join(tmp.dir, `outbox-${++n}.db`));
  runMigrations(db);
  const brandId = createBrand(db, { code: "MIGROS", name: "Migros", iysCode: "1", brandCode: "2", shortNames: [], numbers: [] }, clock.now().getTime()).id;
  const ledger = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
  const { outbox } = ledger.apply([
    { brandId, recipient: "+905321234567", recipientKind: "phone", phoneKind: "mobile", recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: clock.now().getTime() - 60_000, origin: "api" },
  ]);
  rowId = outbox[0]!.id;
});

describe("an İYS report of a refusal dated a second ahead (a recipient's RET in a consent's second)", () => {
  it("waits for its date as a scheduled time (which the sweeper honours), not as a failed attempt", async () => {
    const brandId = (db.$client.prepare("SELECT id FROM brands WHERE code = 'MIGROS'").get() as { id: number }).id;
    const ledger = new Ledger(db, { clock, calendar: new BusinessCalendar(), planners: [iysReportPlanner] });
    const t = clock.now().getTime();
    const base = { brandId, recipient: "+905329998877", recipientKind: "phone", phoneKind: "mobile", recipientType: "BIREYSEL", type: "MESAJ", source: "HS_WEB", consentDate: t, origin: "api" } as const;
    ledger.apply([{ ...base, status: "ONAY" }]);
    const { outcomes, outbox } = ledger.apply([{ ...base, status: "RET", source: "HS_MESAJ", origin: "sms", datedOnReceipt: true }]);
    expect(outcomes[0]).toMatchObject({ kind: "recorded", event: { consentDate: t + 1000 } });
    const row = pendingOutbox(db, outbox.find((o) => o.kind === "iys_report")!.id, t)!;
    const iys = { configured: true, report: () => Promise.reject(new Error("İYS must not be asked before the date")) } as unknown as IysReporter;
    expect(await runIysReport(row, { db, iys, clock, iysRetryBaseMs: 30_000, enqueueOutbox: async () => {} })).toEqual({ status: "wait", until: t + 1000 });
  });
});

describe("outbox claims", () => {
  it("a row claimed by one job cannot be claimed by another until its lease runs out", () => {
    const t = clock.now().getTime();
    expect(pendingOutbox(db, rowId, t)).toMatchObject({ id: rowId, kind: "iys_report" });
    expect(pendingOutbox(db, rowId, t + 1)).toBeNull();
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS - 1)).toBeNull();
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS)).toMatchObject({ id: rowId });
  });

  it("a failed attempt releases the lease for the retry; a finished row is never claimed again", () => {
    const t = clock.now().getTime();
    expect(pendingOutbox(db, rowId, t)).not.toBeNull();
    recordAttemptFailure(db, rowId, t + 10, "provider 500");
    expect(pendingOutbox(db, rowId, t + 20)).toMatchObject({ attempts: 1 });
    finishOutbox(db, rowId, "done", t + 30);
    expect(pendingOutbox(db, rowId, t + OUTBOX_LEASE_MS * 10)).toBeNull();
  });
});

describe("a row whose sends keep failing for a transient reason (a provider's or SMTP server's outage)", () => {
  const job = (attemptsMade: number) => ({ attemptsMade, opts: { attempts: 8 } }) as unknown as Job;
  const rowOf = () =>
    db.$client.prepare("SELECT status, attempts, next_attempt_at AS nextAttemptAt, last_error AS lastError, result FROM outbox WHERE id = ?").get(rowId) as {
      status: string;
      attempts: number;
      nextAttemptAt: number | null;
      lastError: string | null;
      result: string | null;
    };
  const run = (attemptsMade: number, handler: OutboxHandler<WorkerDeps>) => {
    const scheduled: { id: number; delayMs: number }[] = [];
    const deps = { db, clock, log: silentLog, scheduleOutbox: async (row: OutboxRef, delayMs: number) => void scheduled.push({ id: row.id, delayMs }) } as unknown as WorkerDeps;
    return { scheduled, done: runOutboxBatch(deps, job(attemptsMade), handler, [rowId]) };
  };

  it("outlives its job's retries: it waits a minute, then longer, keeping what it held, and ends exhausted only a day after it was written", async () => {
    const down: OutboxHandler<WorkerDeps> = () => Promise.reject(new Error("twilio 503: Service Unavailable"));
    db.$client.prepare("UPDATE outbox SET kind = 'confirmation', attempts = 7, result = '{\"kept\":1}' WHERE id = ?").run(rowId);
    const t = clock.now().getTime();
    // The job's last attempt: not exhausted, a job of its own a minute later.
    const first = run(7, down);
    expect(await first.done).toMatch(/1 waiting/);
    expect(first.scheduled).toEqual([{ id: rowId, delayMs: 60_000 }]);
    expect(rowOf()).toEqual({ status: "pending", attempts: 8, nextAttemptAt: t + 60_000, lastError: "twilio 503: Service Unavailable", result: '{"kept":1}' });
    // That job's own retries spent too: two minutes.
    clock.advance(60_000);
    db.$client.prepare("UPDATE outbox SET attempts = 15 WHERE id = ?").run(rowId);
    const second = run(7, down);
    await second.done;
    expect(second.scheduled).toEqual([{ id: rowId, delayMs: 120_000 }]);
    // An earlier attempt of a job is retried by the job (its backoff), as before.
    clock.advance(120_000);
    await expect(run(3, down).done).rejects.toThrow(/1 of 1 to retry/);
    expect(rowOf().status).toBe("pending");
    // A day after the row was written, the last attempt ends it.
    clock.advance(OUTBOX_RETRY_HORIZON_MS);
    expect(await run(7, down).done).toMatch(/1 ended/);
    expect(rowOf()).toMatchObject({ status: "exhausted", lastError: "twilio 503: Service Unavailable" });
  });

  it("a send whose outcome is unknown (no answer: it may have gone) is not tried past its job's attempts", async () => {
    db.$client.prepare("UPDATE outbox SET kind = 'confirmation' WHERE id = ?").run(rowId);
    const silent: OutboxHandler<WorkerDeps> = () => Promise.reject(new OutcomeUnknownError("twilio ?: timeout after 15000 ms"));
    await expect(run(3, silent).done).rejects.toThrow(/1 of 1 to retry/);
    expect(await run(7, silent).done).toMatch(/1 ended/);
    expect(rowOf()).toMatchObject({ status: "exhausted", lastError: "twilio ?: timeout after 15000 ms" });
  });

  it("a send whose outcome is unknown goes at most twice: a second unknown outcome ends the row (a slow provider got the same confirmation 8 times)", async () => {
    db.$client.prepare("UPDATE outbox SET kind = 'confirmation' WHERE id = ?").run(rowId);
    let sends = 0;
    const late: OutboxHandler<WorkerDeps> = () => (sends++, Promise.reject(new OutcomeUnknownError("twilio ?: timeout after 15000 ms")));
    // A failure known to come before sending (no connection) does not count toward the two.
    await expect(run(0, () => Promise.reject(new Error("twilio: connect ECONNREFUSED"))).done).rejects.toThrow(/1 of 1 to retry/);
    await expect(run(1, late).done).rejects.toThrow(/1 of 1 to retry/);
    expect(rowOf()).toMatchObject({ status: "pending", attempts: 2 });
    expect(await run(2, late).done).toMatch(/1 ended/);
    expect(rowOf()).toMatchObject({ status: "exhausted", attempts: 3 });
    expect(sends).toBe(2);
  });

  it("a send still running past the lease keeps its row's claim (renewed), so no other job sends it again; once answered it is not renewed", async () => {
    db.$client.prepare("UPDATE outbox SET kind = 'email_confirmation' WHERE id = ?").run(rowId);
    const t = clock.now().getTime();
    let during: { nextAttemptAt: number | null; claimedByOther: boolean } | null = null;
    // An SMTP server answering each command just within its timeout: the send outlasts the lease.
    const slow: OutboxHandler<WorkerDeps> = async () => {
      clock.advance(OUTBOX_LEASE_MS - 10_000);
      await new Promise((r) => setTimeout(r, 150)); // several renewals at 20 ms
      clock.advance(20_000); // past the first lease's end
      await new Promise((r) => setTimeout(r, 60));
      during = { nextAttemptAt: rowOf().nextAttemptAt, claimedByOther: pendingOutbox(db, rowId, clock.now().getTime()) !== null };
      return { status: "done" };
    };
    const deps = { db, clock, log: silentLog, leaseRenewMs: 20, scheduleOutbox: async () => {} } as unknown as WorkerDeps;
    await runOutboxBatch(deps, job(0), slow, [rowId]);
    expect(during!.claimedByOther).toBe(false);
    expect(during!.nextAttemptAt).toBe(t + OUTBOX_LEASE_MS + 10_000 + OUTBOX_LEASE_MS);
    expect(rowOf().status).toBe("done");
  });

  it("a report to İYS keeps being tried for İYS's 7 days, not a confirmation's one", async () => {
    const down: OutboxHandler<WorkerDeps> = () => Promise.reject(new Error("fetch failed"));
    clock.advance(2 * 86_400_000);
    expect(await run(7, down).done).toMatch(/1 waiting/);
    expect(rowOf().status).toBe("pending");
    clock.advance(6 * 86_400_000);
    expect(await run(7, down).done).toMatch(/1 ended/);
    expect(rowOf().status).toBe("exhausted");
  });

  it("a permanent refusal still ends it at once, as failed", async () => {
    expect(await run(0, () => Promise.reject(new UnrecoverableError("21211: invalid To number"))).done).toMatch(/1 ended/);
    expect(rowOf()).toMatchObject({ status: "failed", lastError: "21211: invalid To number" });
  });
});

describe("sweeper job ids", () => {
  it("re-enqueues under a tagged id (never the id of the job that left it unfinished), the same one within a grace period", async () => {
    db.$client.prepare("INSERT INTO receipts (channel, provider, provider_ref, status, received_at) VALUES ('sms', 'twilio', 'SMx', 'received', ?)").run(clock.now().getTime() - 120_000);
    const seen: string[] = [];
    const deps = {
      db,
      log: silentLog,
      now: () => clock.now().getTime(),
      graceMs: 30_000,
      enqueueReceipts: async (rows: { id: number }[], tag: string) => void seen.push(receiptBatchJobId(rows.map((r) => r.id), tag)),
      enqueueOutbox: async () => {},
    };
    await sweep(deps);
    clock.advance(1000);
    await sweep(deps);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]).not.toBe(receiptJobId(1));
    clock.advance(30_000);
    await sweep(deps);
    expect(seen[2]).not.toBe(seen[0]);
  });
});

describe("the sweeper behind a backlog (real Redis, no workers)", () => {
  const prefix = uniquePrefix();
  let redis: Redis;
  let producer: JobProducer;
  beforeAll(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    producer = new JobProducer(redis, prefix);
  });
  afterAll(async () => {
    await producer.close();
    redis.disconnect();
    await deletePrefix(prefix);
  });

  /** The sweeper as the runtime wires it, on this test's queues and a clock of its own. */
  const sweeperDeps = (real: TestClock) => ({
    db,
    log: silentLog,
    now: () => real.now().getTime(),
    graceMs: 30_000,
    enqueueReceipts: (rows: { id: number; at: number }[], tag: string) => producer.enqueueReceipts(rows, { tag, lifo: true }),
    enqueueOutbox: (rows: (OutboxRef & { at: number })[], tag: string) => producer.enqueueOutbox(rows, { single: true, tag, lifo: true }),
    oldestWaiting: (q: QueueName) => producer.oldestWaiting(q),
  });
  const insertReceipt = (ref: string, at: number) =>
    Number(db.$client.prepare("INSERT INTO receipts (channel, provider, provider_ref, status, received_at) VALUES ('sms', 'twilio', ?, 'received', ?)").run(ref, at).lastInsertRowid);
  const waitingIds = async (queue: "consent" | "iys-reports") =>
    (await producer.queues[queue].getJobs(["wait", "prioritized"])).flatMap((j) => (j.data as { receiptIds?: number[]; outboxIds?: number[] }).receiptIds ?? (j.data as { outboxIds: number[] }).outboxIds).sort((a, b) => a - b);

  it("knows when the job first in line became due, in the plain and the prioritized list", async () => {
    await producer.queues.consent.obliterate({ force: true });
    expect(await producer.oldestWaiting("consent")).toEqual({ wait: null, prioritized: null });
    await producer.enqueueReceipts([{ id: 901, priority: 100 }]);
    const first = (await producer.queues.consent.getJobs(["prioritized"]))[0]!.timestamp;
    await new Promise((r) => setTimeout(r, 5));
    await producer.enqueueReceipts([{ id: 902 }]);
    await new Promise((r) => setTimeout(r, 5));
    await producer.enqueueReceipts([{ id: 903 }]);
    const plain = await producer.queues.consent.getJobs(["wait"]);
    expect(await producer.oldestWaiting("consent")).toEqual({ wait: Math.min(...plain.map((j) => j.timestamp)), prioritized: first });
    // A job dated in the past (a swept one) and added lifo is first in line.
    await producer.enqueueReceipts([{ id: 904, at: first - 60_000 }], { tag: "s1", lifo: true });
    expect((await producer.oldestWaiting("consent")).wait).toBe(first - 60_000);
    await producer.queues.consent.obliterate({ force: true });
  });

  it("leaves receipts and outbox rows still waiting in a job to it, and sweeps what no waiting job can hold", async () => {
    await producer.queues.consent.obliterate({ force: true });
    await producer.queues["iys-reports"].obliterate({ force: true });
    const t0 = Date.now();
    const real = new TestClock(t0);
    // Two receipts taken now and enqueued at once; a third taken 40 s earlier whose job was lost.
    const queued = [insertReceipt("SMq1", t0), insertReceipt("SMq2", t0)];
    const lost = insertReceipt("SMlost", t0 - 40_000);
    await producer.enqueueReceipts(queued.map((id) => ({ id })));
    // The outbox row made in beforeEach is pending and never enqueued: dated now, it sits in a job too.
    db.$client.prepare("UPDATE outbox SET created_at = ?, updated_at = ? WHERE id = ?").run(t0, t0, rowId);
    await producer.enqueueOutbox([{ id: rowId, kind: "iys_report" }]);

    // A minute later, the grace (30 s) is long over, but nothing has worked the queues off.
    real.advance(60_000);
    const deps = sweeperDeps(real);
    expect(await sweep(deps)).toEqual({ receipts: 1, outbox: 0 });
    // The lost receipt's job is dated when it was taken and is first in line.
    expect((await producer.oldestWaiting("consent")).wait).toBe(t0 - 40_000);
    expect(await waitingIds("consent")).toEqual([...queued, lost].sort((a, b) => a - b));
    expect(await waitingIds("iys-reports")).toEqual([rowId]);
    // Sweeps in later grace periods add nothing while the jobs wait.
    real.advance(45_000);
    expect(await sweep(deps)).toEqual({ receipts: 0, outbox: 0 });
    expect((await producer.queues.consent.getJobs(["wait", "prioritized"])).length).toBe(2);

    // The jobs are gone without having applied them (a lost Redis, a crash): now they are swept.
    await producer.queues.consent.obliterate({ force: true });
    await producer.queues["iys-reports"].obliterate({ force: true });
    expect(await sweep(deps)).toEqual({ receipts: 3, outbox: 1 });
    expect(await waitingIds("consent")).toEqual([...queued, lost].sort((a, b) => a - b));
    expect(await waitingIds("iys-reports")).toEqual([rowId]);
  });

  it("a rate-limited sender's job waiting behind the plain ones holds back only rate-limited receipts", async () => {
    await producer.queues.consent.obliterate({ force: true });
    finishOutbox(db, rowId, "done", Date.now()); // beforeEach's row is not this test's business
    const t0 = Date.now();
    const real = new TestClock(t0);
    // A limited receipt's job (prioritized: worked once the plain list is empty) waits since t0 - 100 s.
    const limitedQueued = insertReceipt("SMlim0", t0 - 100_000);
    db.$client.prepare(`UPDATE receipts SET payload = '{"limited":true}' WHERE id = ?`).run(limitedQueued);
    await producer.queues.consent.add("consent.apply", { receiptIds: [limitedQueued] }, { jobId: "lim", priority: 100, timestamp: t0 - 100_000 });
    // Lost afterwards: a plain receipt and a limited one, both at t0 - 50 s.
    const plainLost = insertReceipt("SMlost-plain", t0 - 50_000);
    const limitedLost = insertReceipt("SMlost-lim", t0 - 50_000);
    db.$client.prepare(`UPDATE receipts SET payload = '{"limited":true}' WHERE id = ?`).run(limitedLost);
    const deps = sweeperDeps(real);
    // The plain one cannot be in a prioritized job: swept. The limited one might be: left to it.
    expect(await sweep(deps)).toEqual({ receipts: 1, outbox: 0 });
    expect((await producer.queues.consent.getJobs(["wait"])).flatMap((j) => (j.data as { receiptIds: number[] }).receiptIds)).toEqual([plainLost]);
    await producer.queues.consent.obliterate({ force: true });
  });

  it("a live change's callback whose job was lost is swept though an import's callbacks wait in prioritized jobs; the import's and released rows are left to them", async () => {
    await producer.queues.callbacks.obliterate({ force: true });
    finishOutbox(db, rowId, "done", Date.now());
    const t0 = Date.now();
    const real = new TestClock(t0);
    const ledger = new Ledger(db, { clock: real, calendar: new BusinessCalendar() });
    const brandId = (db.$client.prepare("SELECT id FROM brands").pluck().get() as number);
    const action = (recipient: string, origin: "import" | "api") =>
      ({ brandId, recipient, recipientKind: "phone", phoneKind: "mobile", recipientType: "BIREYSEL", type: "MESAJ", status: "ONAY", source: "HS_WEB", consentDate: t0 - 60_000, origin }) as const;
    const [imported, live, liveReleased] = [
      ledger.apply([action("+905320000001", "import")]),
      ledger.apply([action("+905320000002", "api")]),
      ledger.apply([action("+905320000003", "api")]),
    ].map((r) => r.outcomes[0]!.kind === "recorded" ? r.outcomes[0]!.event.id : 0);
    const row = (eventId: number, nextAt: number | null, claimedUntil: number | null = null) =>
      Number(
        db.$client
          .prepare("INSERT INTO outbox (kind, event_id, target, status, attempts, created_at, updated_at, next_attempt_at, claimed_until) VALUES ('callback', ?, 'ep', 'pending', 0, ?, ?, ?, ?)")
          .run(eventId, t0, t0, nextAt, claimedUntil).lastInsertRowid,
      );
    const importRow = row(imported!, null);
    // A live row held behind an earlier change (next_attempt_at = updated_at, no attempt yet) is no released row.
    const liveRow = row(live!, t0);
    const releasedRow = row(liveReleased!, t0, RELEASED); // released after an outage
    // The import's and the released rows wait in prioritized jobs; the live row's job was lost (a crash after the commit).
    await producer.enqueueOutbox([{ id: importRow, kind: "callback" }, { id: releasedRow, kind: "callback" }], { bulk: true });
    real.advance(60_000);
    const swept: number[] = [];
    const deps = { ...sweeperDeps(real), enqueueOutbox: async (rows: (OutboxRef & { at: number })[]) => void swept.push(...rows.map((r) => r.id)) };
    expect(await sweep(deps)).toEqual({ receipts: 0, outbox: 1 });
    expect(swept).toEqual([liveRow]);
    await producer.queues.callbacks.obliterate({ force: true });
  });

  it("work swept in several jobs is queued oldest first, and none of it is swept again while it waits", async () => {
    await producer.queues.consent.obliterate({ force: true });
    finishOutbox(db, rowId, "done", Date.now());
    const t0 = Date.now();
    const real = new TestClock(t0);
    // 1 500 receipts whose jobs were lost, taken one a second before t0 - 2 000 s.
    const ids = db.$client.transaction(() => Array.from({ length: 1500 }, (_, i) => insertReceipt(`SMl${i}`, t0 - 3_500_000 + i * 1000)))();
    const deps = sweeperDeps(real);
    expect((await sweep(deps)).receipts).toBe(1500);
    expect((await producer.oldestWaiting("consent")).wait).toBe(t0 - 3_500_000);
    // The job first in line (what a worker takes next) holds the oldest receipts.
    const [next] = await producer.queues.consent.getJobs(["wait"], 0, 0, true);
    expect((next!.data as { receiptIds: number[] }).receiptIds[0]).toBe(ids[0]);
    real.advance(60_000);
    expect((await sweep(deps)).receipts).toBe(0);
    expect(await waitingIds("consent")).toEqual(ids);
    await producer.queues.consent.obliterate({ force: true });
  });
});

describe("whether a failed send may have gone (Twilio's transport)", () => {
  it("no answer to a request written whole may have been sent; a connection never made sent nothing", async () => {
    const { createServer } = await import("node:http");
    const { TwilioHttpClient } = await import("../channels/sms/twilio-http");
    const { outcomeUnknown } = await import("../src/errors");
    // Takes the request and never answers.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const send = (base: string) =>
      new TwilioHttpClient(base, 300)
        .request({ method: "post", uri: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", data: { To: "+905321234567" }, headers: { "Content-Type": "application/x-www-form-urlencoded" } })
        .then(
          () => "answered",
          (err: Error) => err.message,
        );
    try {
      const timedOut = await send(`http://127.0.0.1:${port}`);
      expect(timedOut).toBe("timeout of 300ms exceeded");
      expect(outcomeUnknown(timedOut)).toBe(true);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
    // Nothing listens there any more: refused before anything was written.
    const refused = await send(`http://127.0.0.1:${port}`);
    expect(refused).toMatch(/ECONNREFUSED.*\(before the request was sent\)$/);
    expect(outcomeUnknown(refused)).toBe(false);
    expect(outcomeUnknown("connect ETIMEDOUT 10.0.0.1:443 (before the request was sent)")).toBe(false);
  });
});
